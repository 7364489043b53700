"""`calibrate --device cpu|cuda [-o PROFILE.yaml]`: time single ops on this device and write the
latency profile fitted to them (bench/calibrate.py measures, analysis/latency.py fits and predicts).
Building the parser stays torch-free; measuring imports torch."""
from __future__ import annotations

import argparse
import math
import sys

from ..bench.limits import MAX_THREADS, TIMING_BUDGET, BenchError
from .options import PROG, add_output_argument, dtype_name, emit, say

NAME = "calibrate"
HELP = "fit a latency profile to microbenchmarks of single ops on this device (needs torch)"
DESCRIPTION = ("Time every op kind of the registry on this device and torch build, across the shapes CNNs use "
               "(convolutions by kernel, stride, grouping, channels and grid; linear layers; batch norm, pools, "
               "activations, merges), fit a per-op-kind model and write the device profile as YAML. "
               "`analyze SPEC --device PROFILE.yaml` and `bench SPEC --profile PROFILE.yaml` then predict each "
               "layer's and the model's latency beside the roofline. Within about 3 minutes (the --max-seconds budget).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", type=dtype_name, default="fp32", help="the dtype to calibrate (default: fp32)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch's kernels (default: torch's own, one per core); predictions "
                        "hold for runs with the same threads")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny grid of shapes (seconds; for tests and a first look, not for predictions)")
    parser.add_argument("--name", help="the profile's name (default: DEVICE-calibrated)")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help="stop timing after S seconds, waits for a quiet machine included, and fit what was "
                        "measured (the cases are ordered so that a cut run still covers every op kind over its "
                        f"whole range; default: {TIMING_BUDGET:g}, a calibration within about three minutes)")
    parser.add_argument("--check", metavar="PROFILE.yaml",
                        help="calibrate nothing: time a few cases now (convolutions, batch norm, an activation, "
                        "the memory copy, within and beyond the cache) beside the prices PROFILE puts on them, "
                        "to see whether the machine still runs as it did when PROFILE was calibrated (seconds)")
    add_output_argument(parser, "PROFILE.yaml")


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: F401 - measuring needs torch; the parser above does not

    from ..analysis.latency_file import profile_text
    from ..bench.calibrate import calibrate, listed
    from ..build import resolve_device
    from ..bench.settings import BenchSettings, torch_settings

    if args.check:
        given = [flag for flag, value in (("-o", args.output), ("--quick", args.quick), ("--name", args.name),
                                          ("--max-seconds", args.max_seconds), ("--threads", args.threads))
                 if value not in (None, False)]
        if given:
            raise BenchError(f"--check calibrates nothing and runs as the profile was calibrated: drop {', '.join(given)}")
        return check(args.check)
    device = resolve_device(args.device)
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"calibrate times real kernels: --device cpu or cuda, not {device.type}")
    if args.max_seconds is not None and not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        raise BenchError(f"--max-seconds must be a number of seconds above 0, got {args.max_seconds:g}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise BenchError(f"--threads must be from 1 to {MAX_THREADS}, got {args.threads:,}")
    settings = BenchSettings(device=device, dtype=args.dtype, threads=args.threads)
    with torch_settings(settings):   # TF32 off for fp32, on for tf32; cuDNN autotuning; the threads asked for
        run_ = calibrate(device, args.dtype, "quick" if args.quick else "full", name=args.name,
                         max_seconds=args.max_seconds if args.max_seconds is not None or args.quick
                         else TIMING_BUDGET)
    profile = run_.profile
    emit(profile_text(profile), args.output)
    efficiency = sum(1 for e in profile.entries.values() if hasattr(e, "peak_flops"))
    looked = profile.calibration
    say(f"{PROG}: calibrated {profile.title}, {profile.dtype}: {len(run_.samples)} microbenchmarks, "
        f"{len(profile.entries)} entries ({efficiency} convolution and linear classes) in {run_.seconds:.0f} s"
        + (f"; {looked['cut_by_time_budget']} cases left untimed by the time budget (--max-seconds)"
           if looked.get("cut_by_time_budget") else "")
        + (f", every sample of {len(run_.left_out)} entries among them (no entry: their layers are priced by the "
           f"nearest entry of their kind or the fallback): {listed(list(run_.left_out), 300)}"
           if run_.left_out else "")
        + (f"; wrote {args.output}" if args.output else "") + "\n", sys.stderr)
    if "memory_gbps_lowest" in looked:
        say(f"{PROG}: meanwhile the memory copied at {looked['memory_gbps_lowest']} to "
            f"{looked['memory_gbps_highest']} GB/s (median {looked['memory_gbps_median']}, "
            f"{looked['memory_looks']} looks); the curves beyond the cache were timed at those speeds\n", sys.stderr)
    return 0


def check(path: str) -> int:
    """`calibrate --check PROFILE.yaml`: the machine now beside the profile (bench/profile_check.py),
    on the profile's device, dtype and threads."""
    from ..analysis.latency import FITTED
    from ..analysis.latency_file import read_profile
    from ..bench.machine import prediction_mismatch
    from ..bench.profile_check import check_profile
    from ..bench.settings import BenchSettings, torch_settings
    from ..build import resolve_device
    from ..render.bench import machine_check_verdict
    from ..untrusted import one_line

    profile = read_profile(path)
    device = resolve_device(profile.device)
    settings = BenchSettings(device=device, dtype=profile.dtype, threads=profile.threads)
    with torch_settings(settings):
        mismatch = prediction_mismatch(profile, settings)     # another CPU: the profile does not price it
        if mismatch:
            say(f"{PROG}: note: {mismatch}\n", sys.stderr)
        rows = check_profile(profile, device)
    lines = [f"{one_line(profile.title)}, calibrated {one_line(profile.date)}: the machine now against the profile",
             "", "| case | regime | now | profile | now / profile |", "|---|---|---|---|---|"]
    lines += [f"| {row.what} | {row.regime} | {row.measured * 1e3:,.3f} ms | {row.priced * 1e3:,.3f} ms"
              f"{' (' + row.how + ')' if row.how != FITTED else ''} | {row.ratio:.3g} |" for row in rows]
    say("\n".join(lines) + "\n\n" + machine_check_verdict(rows) + "\n")
    return 0

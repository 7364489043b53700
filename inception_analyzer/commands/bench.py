"""`bench SPEC ...`: measured throughput of the built models beside the roofline estimate and
torchvision's model. Building the parser stays torch-free; measuring imports torch."""
from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from ..analysis.roofline import MODES, profile_names
from ..bench.limits import (BENCH_FORMATS, DEFAULT_MIN_TIME, DEFAULT_WARMUP, MAX_ITERATIONS, MAX_MIN_TIME, MAX_THREADS,
                            MIN_ITERATIONS, BenchError)
from .options import add_output_argument, add_spec_arguments, dtype_name, emit, request_of

if TYPE_CHECKING:  # bench/settings.py imports torch
    from ..bench.settings import BenchSettings

NAME = "bench"
HELP = "measured throughput beside the roofline estimate (needs torch)"
DESCRIPTION = ("Time the built models (and torchvision's, when importable) and print images/s, latency "
               "p50/p90, achieved TFLOP/s and share of the device's peak beside the roofline estimate.")


def parse_batches(text: str) -> list[int]:
    """'1,32,256' -> [1, 32, 256]."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch takes sizes separated by commas, e.g. 1,32,256; got '{text}'") \
            from None
    if not batches or any(b < 1 for b in batches):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got '{text}'")
    return batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser, many=True)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    parser.add_argument("--batch", type=parse_batches, default=[1], metavar="N,N,...",
                        help="batch sizes, e.g. 1,32,256 (default: 1)")
    parser.add_argument("--dtype", type=dtype_name, default="fp32",
                        help="fp32 (TF32 off), tf32 (CUDA only), bf16 or fp16 (default: fp32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model before timing")
    parser.add_argument("--compile-mode", choices=("default", "reduce-overhead", "max-autotune"),
                        help="torch.compile mode (with --compile)")
    parser.add_argument("--mode", choices=MODES, default="inference",
                        help="inference (a forward pass) or train (a full training step; default: inference)")
    parser.add_argument("--per-layer", action="store_true",
                        help="also profile each layer's forward (torch profiler) beside its estimate")
    parser.add_argument("--profile", metavar="NAME", help="device profile for the estimate and the share of peak "
                        f"({', '.join(profile_names())}; default: matched from the device's name), or a calibrated "
                        "profile file (PROFILE.yaml, from `calibrate`): its predicted latency beside each "
                        "measurement, and measured / estimate against it")
    parser.add_argument("--no-torchvision", dest="torchvision", action="store_false",
                        help="do not time torchvision's model beside ours")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch's kernels (default: torch's own, one per core)")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="N",
                        help=f"warm-up iterations (default: {DEFAULT_WARMUP})")
    parser.add_argument("--iters", type=int, metavar="N",
                        help=f"timed iterations (default: enough for --min-time, at least {MIN_ITERATIONS})")
    parser.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME, metavar="S",
                        help=f"seconds of timed iterations per measurement (default: {DEFAULT_MIN_TIME:g})")
    parser.add_argument("--format", choices=BENCH_FORMATS, default="table", help="output format (default: table)")
    add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import run_benchmark  # torch is imported only when measuring
    from ..render.bench import render_bench

    settings = settings_from(args)
    requests = [request_of(args, spec) for spec in args.spec]
    report = run_benchmark(requests, args.batch, settings, args.profile, args.torchvision, args.per_layer)
    emit(render_bench(report, args.format), args.output, tuple(r.spec_file for r in requests))
    return 0


def settings_from(args: argparse.Namespace) -> BenchSettings:
    """The settings the command line asks for, with what argparse cannot check: the device
    exists, the options agree with each other."""
    import torch

    from ..bench.settings import BenchSettings
    from ..build import resolve_device

    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"bench times real kernels: --device cpu or cuda, not {device.type}")
    if args.compile_mode and not args.compile:
        raise BenchError("--compile-mode needs --compile")
    if args.iters is not None and not 1 <= args.iters <= MAX_ITERATIONS:
        raise BenchError(f"--iters must be from 1 to {MAX_ITERATIONS:,}, got {args.iters:,}")
    if not 0 <= args.warmup <= MAX_ITERATIONS:
        raise BenchError(f"--warmup must be from 0 to {MAX_ITERATIONS:,}, got {args.warmup:,}")
    if not (math.isfinite(args.min_time) and 0 < args.min_time <= MAX_MIN_TIME):
        raise BenchError(f"--min-time must be a number of seconds above 0 and at most {MAX_MIN_TIME:g}, "
                         f"got {args.min_time:g}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise BenchError(f"--threads must be from 1 to {MAX_THREADS}, got {args.threads:,}")
    mode = None if args.compile_mode in (None, "default") else args.compile_mode
    return BenchSettings(device=device, dtype=args.dtype, mode=args.mode, channels_last=args.channels_last,
                         compile=args.compile, compile_mode=mode, warmup=args.warmup, iterations=args.iters,
                         min_time=args.min_time, threads=args.threads)

"""How close is the calibrated latency prediction to the measurement? Every bundled spec and
imported torchvision / timm models (none of which the calibration ever ran: it times single ops),
at several batch sizes, predicted from a profile and measured with bench's timing.

    python benchmarks/latency_accuracy.py --profile PROFILE.yaml [--device cpu] [--batch 1,8,32]
        [--models all|specs|imported|NAME,...] [--results FILE.jsonl] [--rounds N] [--max-others 0.05]
    python benchmarks/latency_accuracy.py --table FILE.jsonl     # the table of results already taken
    python benchmarks/latency_accuracy.py --profile PROFILE.yaml --results FILE.jsonl --repredict NEW.jsonl
        # the measurements of FILE predicted again (this code, PROFILE), written to NEW

For each model and batch: the prediction (analysis/latency.py, timed: it is the analysis path,
no torch), then the measurement as `bench SPEC --no-torchvision` takes it (bench/runner.py's
measure_models: warm-up, iterations for --min-time, the median), one model at a time, each in a
fresh process of its own (as a user's `bench` run is): the host allocator's state (glibc's mmap
threshold only rises, the heap keeps its holes) would otherwise carry over from the models timed
before it and make a measurement depend on the order of the list (--in-process keeps one process). An
imported model is measured from the spec `import` writes for it (kept in --specs), so its
process never builds the original. On a shared machine each measurement waits until other
processes use under --max-others of the CPUs over a few seconds, and is retaken (up to
--retries times) when they used more
while it ran (bench/machine.py's OthersCpu: /proc/stat's busy time less this process's own).
Each result is appended to --results as one JSON line as soon as it exists, so a long run can
be resumed (`--resume` skips what the file holds) and printed later with --table.

A process that frees a lot of memory slows the next one down for a few seconds, on a virtual
machine at least: on the development machine efficientnet_b0 at batch 1 measured 10.9 to 11.2 ms
in a fresh process, and 14.3 to 14.4 ms in one started right after another process had touched
and freed 3 or 10 GiB (the reference convolution 0.58 to 0.64 ms against 0.55), as it did right
after mobilenet_v2's batch-8 measurement in a run of the whole list; the next measurement was
back to 11 ms. So each measurement but the first waits --settle seconds after the one before,
whose process has just ended (each row records what it waited, `settled_before`, and its
process's peak memory, `peak_rss_mib`); --in-process measurements, with no process ending
between them, do not wait.

With --rounds N every model and batch is measured N times, round after round over the whole list
(each time in a fresh process, after a reference convolution that shows the machine's speed at
that moment and the calibration's chain network that shows its speed at small layers, and
between two copies beyond the cache that show the memory's): a virtual machine's speed drifts by
up to a fifth over tens of seconds, and the rounds spread that drift over every model. The table
keeps the median of a model's rounds, and their spread, which is the noise floor any prediction
is checked against: its summary also checks each round against the median of the others as the
prediction is checked against the median of all.

Prints a Markdown table (predicted, measured, error = predicted / measured - 1) and the summary:
the median absolute error, the worst, and how many lie within +-15%. On a queue device (CUDA)
each row also holds the forward's two sides apart (queue_sides: the host's time to enqueue it,
the device's time to run it) beside the prediction's (queue_predicted), and a second table gives
each side's error on its own: which side sets a model's time, and which side a miss comes from.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPECS = ["inception_v1", "googlenet", "bn_inception", "inception_v2", "inception_v3", "inception_v4",
         "inception_resnet_v2", "resnet50", "vgg16", "vgg19", "alexnet"]
# imported with torch.fx (inception_analyzer/importer.py), never seen by the calibration
IMPORTED = ["torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:mobilenet_v3_large",
            "torchvision:efficientnet_b0", "torchvision:regnet_x_400mf", "torchvision:resnext50_32x4d",
            "torchvision:densenet121", "timm:dla34", "timm:xception41", "timm:fbnetc_100"]
TARGET = 0.15
REFERENCE_CALLS = 100
SPEC_FOLDER = Path(tempfile.gettempdir()) / "latency_accuracy_specs"


def spec_of(name: str, folder: Path) -> str:
    """What to analyse and measure for `name`: a bundled spec's name as it is, or for an imported
    model (`torchvision:NAME`, `timm:NAME`) the spec `import` writes for it, saved in `folder`.
    The measurement then builds from that spec, as a user's `import` then `bench` does, in a
    process that never built the original model, whose history (its weights made and freed) would
    otherwise come before the timing."""
    if ":" not in name:
        return name
    package, model_name = name.split(":", 1)
    path = folder / f"{package}_{model_name}.yaml"
    if path.exists():
        return str(path)
    import torch

    from inception_analyzer.importer import import_module
    from inception_analyzer.spec_writer import write_spec
    from inception_analyzer.torchvision_compat import load_torchvision

    torch.manual_seed(0)
    if package == "torchvision":
        model = getattr(load_torchvision().module.models, model_name)(weights=None)
    elif package == "timm":
        load_torchvision()   # timm imports torchvision, whose compiled ops this torch build may lack
        import timm
        model = timm.create_model(model_name, pretrained=False)
    else:
        raise SystemExit(f"unknown package in {name} (torchvision:NAME or timm:NAME)")
    imported = import_module(model.eval(), (3, 224, 224), name=f"{package}_{model_name}")
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(write_spec(imported), encoding="utf-8")
    return str(path)


def graph_of(name: str, folder: Path | None = None):
    """The analysis of a bundled spec, or of an imported model's written spec (spec_of)."""
    from inception_analyzer.pipeline import Request, analyze

    return analyze(Request(spec_of(name, folder or SPEC_FOLDER)))


def reference_ms(device) -> float:
    """The machine's speed right now: the median time of one fixed convolution (3x3, 64 -> 64
    channels, 56 x 56, batch 1), taken just before a measurement in its own process. On a shared
    or virtual machine the same model measures up to a fifth slower or faster from one minute to
    the next (docs/benchmarks.md); this figure beside each measurement shows when that happened."""
    import torch

    from inception_analyzer.bench.timing import time_iterations, warm_up

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device).eval()
    x = torch.randn(1, 64, 56, 56, device=device)
    with torch.inference_mode():
        warm_up(lambda: conv(x), 5)
        samples = time_iterations(lambda: conv(x), device, REFERENCE_CALLS)
    return 1e3 * statistics.median(samples)


# slices of the chain network timed before each measurement (their median kept): on a queue device
# one, whose time is already the best of three groups of calls (bench/calibrate.py's host_seconds),
# so the GPU suite's latency step stays within its limit
CHAIN_SLICES, CHAIN_QUEUE_SLICES = 3, 1


def chain_ms(settings) -> float:
    """The machine's speed at small layers right now: the calibration's chain network of 120
    layers on tiny maps (bench/calibrate.py's CHAIN), its time per call, the median of
    CHAIN_SLICES slices (CHAIN_QUEUE_SLICES on a queue device). The reference convolution shows
    the speed of a kernel; models of many small layers (shufflenet_v2_x1_0, mobilenet_v2) moved
    by up to a third between two runs 14 minutes apart while it held still (docs/benchmarks.md),
    and their time is mostly each layer's overhead, which the profile prices from this chain's
    slices (`chain_ms_median` in its calibration)."""
    from inception_analyzer.analysis.latency import QUEUE, SYNC

    execution = QUEUE if settings.device.type == "cuda" else SYNC
    chain = _chain(settings.device, settings.parameter_dtype, execution)
    slices = CHAIN_QUEUE_SLICES if execution == QUEUE else CHAIN_SLICES
    return 1e3 * statistics.median(chain.take() for _ in range(slices))


@functools.lru_cache(maxsize=None)
def _chain(device, dtype, execution: str):
    """The chain network built once a process (--in-process measures every model in one)."""
    from inception_analyzer.bench.calibrate import ChainTimings

    return ChainTimings(device, dtype, execution)


def queue_sides(graph, batch: int, settings) -> dict:
    """On a queue device (CUDA), the two sides of one forward the prediction models apart
    (analysis/latency.py's execution 'queue'): the host's time to enqueue it and the device's
    time to run it (bench/timing.py's host_and_device_seconds), each the median of five."""
    import torch

    from inception_analyzer.bench.timing import host_and_device_seconds, warm_up
    from inception_analyzer.bench.workload import build_ours, make_inputs

    model = build_ours(graph, settings).eval()
    images, _ = make_inputs(graph, batch, settings)
    with torch.inference_mode():
        warm_up(lambda: model(images), 3)
        host, device, ahead = host_and_device_seconds(lambda: model(images), settings.device)
    return {"host_p50": host, "device_p50": device, "host_ahead": ahead}


def measure(analysis, batch: int, settings, max_others: float, retries: int, say, quiet_window: float = 3.0
            ) -> dict:
    from inception_analyzer.bench.host_allocator import steady_allocator
    from inception_analyzer.bench.machine import MemoryProbe, OthersCpu, wait_for_quiet
    from inception_analyzer.bench.progress import Progress
    from inception_analyzer.bench.runner import measure_models
    from inception_analyzer.bench.workload import build_ours

    graph = analysis.graph
    for attempt in range(1, retries + 1):
        quiet = wait_for_quiet(max_others, window=quiet_window, say=say)
        load_before = os.getloadavg()[0]
        steady_allocator(settings.device)    # as bench holds it, before the reference too
        reference = reference_ms(settings.device)
        chain = chain_ms(settings)
        # the memory's speed just before and after (docs/benchmarks.md, "The memory's two speeds")
        memory = MemoryProbe() if settings.device.type == "cpu" else None
        before = memory() if memory else None
        with OthersCpu() as others:
            (ours,) = measure_models([("ours", lambda: build_ours(graph, settings))], graph, analysis, batch, settings,
                                     None, Progress(1, enabled=False))
        after = memory() if memory else None
        if not ours.ok:
            raise SystemExit(f"{graph.name} batch {batch}: {ours.status}")
        result = {"p50": ours.timing.median, "p90": ours.timing.p90, "n": ours.timing.iterations,
                  "others_before": quiet, "others_during": others.share, "load_before": load_before,
                  "load_after": os.getloadavg()[0], "attempt": attempt, "reference_ms": reference,
                  "chain_ms": chain,
                  **({"memory_gbps_before": before / 1e9, "memory_gbps_after": after / 1e9} if before else {}),
                  **(queue_sides(graph, batch, settings) if settings.device.type == "cuda" else {})}
        if others.share is None or others.share <= max_others:
            return result
        say(f"{graph.name} batch {batch}: others used {100 * others.share:.0f}% of the CPUs meanwhile; again")
    result["disturbed"] = True
    return result


def measure_apart(name: str, batch: int, args: argparse.Namespace, say) -> dict:
    """`measure` in a fresh process (the module docstring's reason), its result as one JSON line."""
    command = [sys.executable, __file__, "--measure-one", spec_of(name, Path(args.specs)), "--batch", str(batch),
               "--profile", str(args.profile),
               "--device", args.device, "--max-others", str(args.max_others), "--retries", str(args.retries),
               "--warmup", str(args.warmup), "--min-time", str(args.min_time), "--quiet-window", str(args.quiet_window)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"measuring {name} batch {batch} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_one(args: argparse.Namespace) -> None:
    """The child of measure_apart: one model at one batch, its measurement printed as JSON."""
    import torch

    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.settings import BenchSettings, torch_settings

    profile = read_profile(args.profile)
    settings = BenchSettings(device=torch.device(args.device), dtype=profile.dtype, warmup=args.warmup,
                             min_time=args.min_time, threads=profile.threads if args.device == "cpu" else None)

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    with torch_settings(settings):
        analysis = graph_of(args.measure_one)
        result = measure(analysis, int(args.batch), settings, args.max_others, args.retries, say, args.quiet_window)
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))


def run(args: argparse.Namespace) -> None:
    import torch

    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.machine import cpu_identity, prediction_mismatch
    from inception_analyzer.bench.settings import BenchSettings, torch_settings

    profile = read_profile(args.profile)
    names = {"all": SPECS + IMPORTED, "specs": SPECS, "imported": IMPORTED}.get(args.models) or args.models.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    done = set()
    results = Path(args.results)
    if args.resume and results.exists():
        done = {(r["model_source"], r["batch"], r.get("round", 1)) for r in read_rows(results)}

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    settings = BenchSettings(device=torch.device(args.device), dtype=profile.dtype, warmup=args.warmup,
                             min_time=args.min_time, threads=profile.threads if args.device == "cpu" else None)
    analyses = {}
    unavailable: dict[str, str] = {}      # name -> why it could not be analysed here
    with torch_settings(settings):
        # a profile of another CPU (or threads) prices another machine: nothing to check it against
        mismatch = prediction_mismatch(profile, settings)
        if mismatch:
            raise SystemExit(f"latency_accuracy: the profile does not apply here: {mismatch}")
        pending_settle = False
        # round after round over every model, so each model's measurements fall at different
        # times and the machine's slow and fast spells fall on all of them alike
        for round_number in range(1, args.rounds + 1):
            for name in names:
                if name in unavailable:
                    continue
                if name not in analyses:
                    try:
                        analyses[name] = graph_of(name, Path(args.specs))
                    except (Exception, SystemExit) as err:  # noqa: BLE001 - the rest still measured
                        unavailable[name] = f"{type(err).__name__}: {err}".splitlines()[0][:200]
                        say(f"{name}: not measured ({unavailable[name]})")
                        continue
                analysis = analyses[name]
                for batch in batches:
                    if (name, batch, round_number) in done:
                        continue
                    start = time.perf_counter()
                    prediction = analysis.predict(profile, batch, profile.dtype)
                    predict_ms = 1e3 * (time.perf_counter() - start)
                    settled = 0.0
                    if pending_settle:
                        time.sleep(args.settle)
                        settled = args.settle
                    if args.in_process:
                        measured = measure(analysis, batch, settings, args.max_others, args.retries, say,
                                           args.quiet_window)
                    else:
                        measured = measure_apart(name, batch, args, say)
                    pending_settle = args.settle > 0 and not args.in_process    # a process of its own just ended
                    measured["settled_before"] = settled
                    row = {"model_source": name, "model": analysis.name, "batch": batch, "round": round_number,
                           "imported": ":" in name, "predicted": prediction.seconds,
                           "predicted_overhead": prediction.overhead_seconds, "roofline": prediction.roofline_seconds,
                           **queue_predicted(prediction),
                           "by_how": prediction.count_by_how(), "predict_ms": predict_ms, **measured,
                           "error": prediction.seconds / measured["p50"] - 1,
                           "calibration_chain_ms": profile.calibration.get("chain_ms_median"),
                           "threads": torch.get_num_threads(), "torch": torch.__version__,
                           **({"cpu": cpu_identity()} if args.device == "cpu" else {}),
                           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "profile": str(args.profile)}
                    with results.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    say(f"round {round_number}: {analysis.name:<28} batch {batch:>3}: predicted "
                        f"{1e3 * row['predicted']:9.2f} ms, measured {1e3 * row['p50']:9.2f} ms, error "
                        f"{100 * row['error']:+6.1f}%  (reference {measured['reference_ms']:.3f} ms, others "
                        f"{100 * (row['others_during'] or 0):.1f}%, load {row['load_before']:.2f})")
    if results.exists():
        print(table(results))
    for name, why in unavailable.items():
        print(f"not measured: {name} ({why})")


def repredict(args: argparse.Namespace) -> None:
    """Each measurement of --results predicted again from --profile by the code as it is now,
    into the file --repredict names (the measurements themselves are kept as taken)."""
    from inception_analyzer.analysis.latency_file import read_profile

    profile = read_profile(args.profile)
    rows = read_rows(Path(args.results))
    analyses: dict[str, object] = {}
    with Path(args.repredict).open("w", encoding="utf-8") as handle:
        for row in rows:
            if row["model_source"] not in analyses:
                analyses[row["model_source"]] = graph_of(row["model_source"], Path(args.specs))
            analysis = analyses[row["model_source"]]
            start = time.perf_counter()
            prediction = analysis.predict(profile, row["batch"], profile.dtype)
            row.update(predicted=prediction.seconds, predicted_overhead=prediction.overhead_seconds,
                       **queue_predicted(prediction),
                       roofline=prediction.roofline_seconds, by_how=prediction.count_by_how(),
                       predict_ms=1e3 * (time.perf_counter() - start), error=prediction.seconds / row["p50"] - 1,
                       profile=str(args.profile), repredicted=time.strftime("%Y-%m-%d %H:%M:%S"))
            handle.write(json.dumps(row) + "\n")
    print(table(Path(args.repredict)))


def queue_predicted(prediction) -> dict:
    """The prediction's two sides on a queue device: what the host spends (overheads, and what a
    layer adds in a model) and what the device runs (the kernels)."""
    if prediction.profile.execution != "queue":
        return {}
    host = prediction.overhead_seconds + prediction.fresh_seconds + prediction.context_seconds
    return {"predicted_host": host, "predicted_device": prediction.kernel_seconds}


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def grouped(rows: list[dict]) -> list[dict]:
    """One entry per (model, batch): the median of its rounds' measurements (p50 each) and the
    spread between them; the prediction of its last row (every round predicts the same)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model_source"], row["batch"]), []).append(row)
    out = []
    for members in groups.values():
        measured = [r["p50"] for r in members]
        median = statistics.median(measured)
        references = [r["reference_ms"] for r in members if r.get("reference_ms")]
        speeds = [r[key] for r in members for key in ("memory_gbps_before", "memory_gbps_after") if r.get(key)]
        chains = [r["chain_ms"] for r in members if r.get("chain_ms")]
        last = members[-1]
        out.append({**last, "p50": median, "error": last["predicted"] / median - 1, "rounds": len(members),
                    "low": min(measured), "high": max(measured),
                    "reference": (min(references), max(references)) if references else None,
                    "memory": (min(speeds), max(speeds)) if speeds else None,
                    "chain": (min(chains), max(chains)) if chains else None,
                    "others_during": max((r.get("others_during") or 0) for r in members),
                    "load_before": max(r["load_before"] for r in members)})
    return out


def rounds_against_the_others(rows: list[dict]) -> list[float]:
    """Each round's measurement against the median of the other rounds of its model and batch
    (measured / others' median - 1), for every (model, batch) measured more than once: how well
    the machine predicts itself, the floor under any prediction's error on it."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["model_source"], row["batch"]), []).append(row["p50"])
    return [measured[i] / statistics.median(measured[:i] + measured[i + 1:]) - 1
            for measured in groups.values() if len(measured) > 1 for i in range(len(measured))]


def table(path: Path) -> str:
    taken = read_rows(path)
    rows = grouped(taken)
    lines = ["| model | batch | predicted | measured | error | rounds: lowest - highest | reference conv | chain network "
             "| memory copy | roofline | others' CPU share | 1-min load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["model"] + (" (imported)" if r.get("imported") else "")
        spread = (f"{r['rounds']}: {_ms(r['low'])} - {_ms(r['high'])} ({100 * (r['high'] / r['low'] - 1):.0f}%)"
                  if r["rounds"] > 1 else "1")
        reference = f"{r['reference'][0]:.2f} - {r['reference'][1]:.2f} ms" if r["reference"] else "-"
        memory = f"{r['memory'][0]:.0f} - {r['memory'][1]:.0f} GB/s" if r["memory"] else "-"
        chain = f"{r['chain'][0]:.2f} - {r['chain'][1]:.2f} ms" if r.get("chain") else "-"
        lines.append(f"| {name} | {r['batch']} | {_ms(r['predicted'])} | {_ms(r['p50'])} | {100 * r['error']:+.1f}% | "
                     f"{spread} | {reference} | {chain} | {memory} | {_ms(r['roofline'])} | "
                     f"{100 * (r.get('others_during') or 0):.1f}% "
                     f"| {r['load_before']:.2f} |")
    errors = [abs(r["error"]) for r in rows]
    if errors:
        worst = max(rows, key=lambda r: abs(r["error"]))
        within = sum(e <= TARGET for e in errors)
        lines.append("")
        lines.append(f"{len(rows)} measurements ({len({r['model'] for r in rows})} models): median absolute error "
                     f"{100 * statistics.median(errors):.1f}%, worst {100 * worst['error']:+.1f}% ({worst['model']} "
                     f"batch {worst['batch']}), {within} of {len(rows)} within +-{100 * TARGET:.0f}%; prediction "
                     f"{statistics.median(r['predict_ms'] for r in rows):.1f} ms per model and batch (median)")
        for group, label in ((False, "specs"), (True, "imported models")):
            subset = [abs(r["error"]) for r in rows if bool(r.get("imported")) == group]
            if subset:
                lines.append(f"{label}: median absolute error {100 * statistics.median(subset):.1f}%, worst "
                             f"{100 * max(subset):.1f}%")
        repeated = [r for r in rows if r["rounds"] > 1]
        if repeated:
            spreads = [r["high"] / r["low"] - 1 for r in repeated]
            widest = max(repeated, key=lambda r: r["high"] / r["low"])
            lines.append(f"the machine itself: the rounds of one model and batch differ by "
                         f"{100 * statistics.median(spreads):.0f}% "
                         f"(median), at most {100 * max(spreads):.0f}% ({widest['model']} batch {widest['batch']})")
            misses = rounds_against_the_others(taken)
            lines.append(f"each round against the median of the same model and batch's other rounds (a prediction "
                         f"as good as the machine repeats itself): {sum(abs(m) <= TARGET for m in misses)} of "
                         f"{len(misses)} within +-{100 * TARGET:.0f}%, median absolute difference "
                         f"{100 * statistics.median(abs(m) for m in misses):.1f}%")
        chains = [r for r in rows if r.get("chain") and r.get("calibration_chain_ms")]
        if chains:
            lines.append(f"the chain network of small layers ran at {min(r['chain'][0] for r in chains):.2f} to "
                         f"{max(r['chain'][1] for r in chains):.2f} ms a call before the measurements; its "
                         f"calibration's median slice, which prices every layer's overhead: "
                         f"{chains[-1]['calibration_chain_ms']:.2f} ms")
    return "\n".join(lines + queue_table(rows))


def queue_table(rows: list[dict]) -> list[str]:
    """On a queue device, each side of the prediction against its own measurement (queue_sides):
    which side sets a model's time, and which side a miss comes from."""
    queued = [r for r in rows if r.get("host_p50") is not None and r.get("predicted_host") is not None]
    if not queued:
        return []
    lines = ["", "each side on its own (host: enqueuing one forward behind a held device; device: running it "
             "with all of it enqueued; error = predicted / measured - 1):", "",
             "| model | batch | host predicted | host measured | host error | device predicted | device measured "
             "| device error |", "|---|---|---|---|---|---|---|---|"]
    for r in queued:
        waited = "" if r.get("host_ahead", True) else " (waited on the device)"
        lines.append(f"| {r['model']} | {r['batch']} | {_ms(r['predicted_host'])} | {_ms(r['host_p50'])}{waited} | "
                     f"{100 * (r['predicted_host'] / r['host_p50'] - 1):+.1f}% | {_ms(r['predicted_device'])} | "
                     f"{_ms(r['device_p50'])} | {100 * (r['predicted_device'] / r['device_p50'] - 1):+.1f}% |")
    for side in ("host", "device"):
        errors = [abs(r[f"predicted_{side}"] / r[f"{side}_p50"] - 1) for r in queued]
        lines.append(f"{side}: median absolute error {100 * statistics.median(errors):.1f}%, "
                     f"{sum(e <= TARGET for e in errors)} of {len(errors)} within +-{100 * TARGET:.0f}%")
    return lines


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", help="a calibrated profile (inception-analyzer calibrate -o PROFILE.yaml)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--models", default="all", help="all, specs, imported, or names separated by commas")
    parser.add_argument("--results", default="latency_accuracy.jsonl", help="JSON lines, one per measurement")
    parser.add_argument("--specs", default=str(SPEC_FOLDER),
                        help="where the imported models' written specs are kept (and read again when there)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every model and batch this many times, round after round (the table "
                             "keeps the median)")
    parser.add_argument("--resume", action="store_true", help="skip what --results already holds")
    parser.add_argument("--max-others", type=float, default=0.05,
                        help="the share of the CPUs other processes may use while a measurement runs")
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--quiet-window", type=float, default=3.0,
                        help="seconds over which other processes' share of the CPUs is looked at before a "
                             "measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds between one measurement and the next, for the machine to settle (default 8)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure every model in this one process (default: each in a fresh process)")
    parser.add_argument("--measure-one", metavar="NAME", help=argparse.SUPPRESS)   # measure_apart's child
    parser.add_argument("--repredict", metavar="NEW", help="predict the measurements of --results again into NEW")
    parser.add_argument("--table", metavar="FILE", help="print the table of a results file and exit")
    args = parser.parse_args(argv)
    if args.measure_one:
        measure_one(args)
        return 0
    if args.table:
        print(table(Path(args.table)))
        return 0
    if not args.profile:
        parser.error("--profile is needed (or --table FILE)")
    if args.repredict:
        repredict(args)
        return 0
    print(f"# {platform.node() or 'machine'}: {platform.platform()}, python {platform.python_version()}",
          file=sys.stderr)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

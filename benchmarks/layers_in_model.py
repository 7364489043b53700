"""Where a model's time goes against its price, layer by layer, in the model itself. Each layer
timed where it runs: the network's generated forward (build.py) with a clock read around each
layer's line, in a process of its own with glibc's malloc held steady as `bench` holds it, and
the pages it faulted counted (getrusage's ru_minflt) around the same line. Beside it, the
profile's price for it, in its parts: its entry's overhead and kernel (the layer as a
microbenchmark times it, alone and warm), what running in a model adds (analysis/latency.py's
context_seconds), and its fresh pages (the allocator simulation's).

    python benchmarks/layers_in_model.py --profile PROFILE.yaml --models NAME@BATCH,... [--passes N]
        [--rate ENTRY:LOW:HIGH]

NAME is a bundled spec or an imported model (torchvision:resnet18, as latency_accuracy.py writes
its spec). For each model and batch: the plain forward's time, the lines' sum, the prediction,
then per entry its layers measured and priced. A layer whose line faulted pages in the median
pass is left out of the per-entry rows and named apart: its time is what the heap happened to
do (the simulation prices fresh pages; benchmarks/fresh_pages.py compares the two), and where
a process's tensors land depends on all it allocated before. With --rate, the layers of ENTRY
whose elements read and written take LOW to HIGH MB (at the profile's element size): the
median, over all models, of their time in the model per byte, with its quartiles, beside the
entry's curve at those sizes and beyond the profile's cache. Inside a layer's window the
clock adds one read of itself; the reads, appends and fault counts between the layers slow the
pass as a whole (the lines' sum beside the plain pass's time says by how much), so at batch 1
small layers read high.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fresh_pages import PAGE, WARM_PASSES, faults  # noqa: E402 - benchmarks/ is on the path above

# a layer's line in the generated forward: `    name = call`, never `    a = b = None` (a tensor dropped)
LAYER_LINE = re.compile(r"^(\s+)(\w+) = (?!.* = )(?!None$)(.+)$")


def clocked_forward(model, layers: int):
    """The model's generated forward with every layer's line timed: (forward, seconds, pages), the
    lists each call appends one entry a layer to, in execution order."""
    from inception_analyzer.build import forward_namespace

    seconds: list[float] = []
    pages: list[int] = []
    lines = []
    # a network with auxiliary heads runs its inference lines under `if not self.training:`
    inference_block = any(line.strip() == "if not self.training:" for line in model.code.splitlines())
    inside = not inference_block
    for line in model.code.splitlines():
        if inference_block and line.strip() == "if not self.training:":
            inside = True
        elif inference_block and inside and line.startswith("    ") and not line.startswith("        "):
            inside = False
        match = LAYER_LINE.match(line) if inside else None
        if match:
            indent, name, call = match.groups()
            # the fault count read outside the clock's window: a system call, microseconds on a VM
            line = (f"{indent}_faults = _faults_now(); _start = _clock(); {name} = {call}; "
                    f"_seconds.append(_clock() - _start); _pages.append(_faults_now() - _faults)")
        lines.append(line)
    timed = sum(1 for line in lines if "_seconds.append" in line)
    if timed != layers:
        raise SystemExit(f"{model.spec_name}: {timed} layer lines in the forward, {layers} layers in the graph")
    namespace = {**forward_namespace(), "_clock": time.perf_counter, "_faults_now": faults, "_seconds": seconds,
                 "_pages": pages}
    exec(compile("\n".join(lines) + "\n", f"<clocked forward of {model.spec_name}>", "exec"), namespace)  # noqa: S102
    return namespace["forward"], seconds, pages


def measure_one(profile_path: str, item: str, passes: int) -> dict:
    """One model and batch in this process: each layer's median time and faults in the model,
    beside its price."""
    import math

    import torch

    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.host_allocator import steady_allocator
    from inception_analyzer.build import build_model
    from inception_analyzer.dtypes import get_dtype
    from latency_accuracy import graph_of

    name, batch_text = item.rsplit("@", 1)
    batch = int(batch_text)
    profile = read_profile(profile_path)
    analysis = graph_of(name)
    steady_allocator(torch.device("cpu"))
    if profile.threads:
        torch.set_num_threads(profile.threads)
    model = build_model(analysis.graph).eval()
    x = torch.randn(batch, *analysis.graph.input_shape)
    prediction = analysis.predict(profile, batch)
    forward, seconds, pages = clocked_forward(model, len(prediction.layers))
    with torch.inference_mode():
        for _ in range(WARM_PASSES):
            model(x)
        start = time.perf_counter()
        for _ in range(passes):
            model(x)
        plain = (time.perf_counter() - start) / passes
        seconds.clear()
        pages.clear()
        for _ in range(passes):
            forward(model, x)
    count = len(prediction.layers)
    element = get_dtype(profile.dtype).bytes
    rows = []
    for index, layer in enumerate(prediction.layers):
        node = analysis.graph.node(layer.path)
        moved = batch * element * (sum(math.prod(s) for s in node.in_shapes) + math.prod(node.out_shape))
        rows.append({"path": layer.path, "entry": layer.via or layer.entry,
                     "seconds": statistics.median(seconds[p * count + index] for p in range(passes)),
                     "faulted": PAGE * statistics.median(pages[p * count + index] for p in range(passes)),
                     "alone": layer.overhead_seconds + layer.kernel_seconds, "in_model": layer.context_seconds,
                     "fresh": layer.fresh_seconds, "bytes": moved})
    return {"model": name, "batch": batch, "plain": plain, "predicted": prediction.seconds, "layers": rows}


def entry_rows(result: dict) -> list[str]:
    groups: dict[str, list[dict]] = {}
    for row in result["layers"]:
        if not row["faulted"]:
            groups.setdefault(row["entry"], []).append(row)
    lines = []
    for entry, rows in sorted(groups.items(), key=lambda item: -sum(r["seconds"] for r in item[1])):
        measured = sum(r["seconds"] for r in rows)
        alone, in_model, fresh = (sum(r[part] for r in rows) for part in ("alone", "in_model", "fresh"))
        priced = alone + in_model + fresh
        ratio = f"{measured / priced:.2f}" if priced else "-"
        lines.append(f"| {entry} | {len(rows)} | {measured * 1e3:,.2f} ms | {alone * 1e3:,.2f} ms | "
                     f"{in_model * 1e3:,.2f} ms | {fresh * 1e3:,.2f} ms | {ratio} |")
    return lines


def rate_text(results: list[dict], spec: str, profile_path: str) -> str:
    from inception_analyzer.analysis.latency import CurveEntry
    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.dtypes import get_dtype

    entry, low, high = spec.rsplit(":", 2)
    low_bytes, high_bytes = float(low) * 1e6, float(high) * 1e6
    rates = sorted(row["seconds"] / row["bytes"] for result in results for row in result["layers"]
                   if row["entry"] == entry and not row["faulted"] and low_bytes <= row["bytes"] <= high_bytes)
    if not rates:
        return f"{entry}: no layer of {low} to {high} MB ran without faulting pages"
    quartiles = statistics.quantiles(rates, n=4) if len(rates) > 1 else [rates[0]] * 3
    text = (f"{entry}, {len(rates)} layers of {low} to {high} MB read and written, in their models: "
            f"{quartiles[1] * 1e9:.4f} ns a byte (quartiles {quartiles[0] * 1e9:.4f} and {quartiles[2] * 1e9:.4f})")
    profile = read_profile(profile_path)
    curve = profile.entries.get(entry)
    if isinstance(curve, CurveEntry):
        element = get_dtype(profile.dtype).bytes
        inside = [seconds / (x * element) for x, seconds in curve.points if low_bytes <= x * element <= high_bytes]
        if inside:
            text += f"; its curve there {min(inside) * 1e9:.4f} to {max(inside) * 1e9:.4f}"
        if profile.cache_bytes:
            beyond = curve.seconds_per_unit_beyond(profile.cache_bytes / element)
            if beyond is not None:
                text += f", beyond the {profile.cache_bytes / 2**20:g} MiB cache {beyond / element * 1e9:.4f}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, help="a calibrated CPU profile")
    parser.add_argument("--models", help="NAME@BATCH, comma-separated")
    parser.add_argument("--passes", type=int, default=5, help="timed passes (the median is shown)")
    parser.add_argument("--rate", action="append", default=[], help="ENTRY:LOW:HIGH (MB), repeatable")
    parser.add_argument("--one", help=argparse.SUPPRESS)    # NAME@BATCH, measured in this process
    options = parser.parse_args()
    if options.one:
        print(json.dumps(measure_one(options.profile, options.one, options.passes)))
        return
    if not options.models:
        parser.error("--models is required")
    results = []
    for item in options.models.split(","):
        command = [sys.executable, __file__, "--profile", options.profile, "--one", item, "--passes", str(options.passes)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{item}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        lines_sum = sum(row["seconds"] for row in result["layers"])
        faulted = [row for row in result["layers"] if row["faulted"]]
        print(f"\n{result['model']} at batch {result['batch']}: {result['plain'] * 1e3:,.2f} ms a pass, its layers' lines "
              f"{lines_sum * 1e3:,.2f} ms, predicted {result['predicted'] * 1e3:,.2f} ms")
        print("| entry | layers | in the model | priced alone | in a model | fresh pages | measured / priced |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(entry_rows(result)))
        if faulted:
            print("left out, pages faulted on their line: " + ", ".join(
                f"{row['path']} ({row['faulted'] / 2**20:,.1f} MiB, {row['seconds'] * 1e3:,.2f} ms)" for row in faulted))
    for spec in options.rate:
        print("\n" + rate_text(results, spec, options.profile))


if __name__ == "__main__":
    main()

"""Does a profile price single layers right? Every layer of a model timed alone, on warm memory, as
`calibrate` times a case (bench/calibrate.py's time_case), beside the price one or more profiles
put on it (its entry's overhead and kernel: no layer overhead, no fresh pages, nothing a model
adds around its layers).

    python benchmarks/layers_alone.py --profiles A.yaml[,B.yaml...] --models NAME@BATCH,...

NAME is a bundled spec, an imported model (torchvision:resnet18, as benchmarks/latency_accuracy.py
writes its spec) or `chain:CxS`: the calibration's 120-layer chain network (conv, batch norm,
ReLU, pool, concat; bench/calibrate.py's CHAIN) widened to C channels on S x S maps, a network no
model list holds. For each model and profile: the sum of its layers alone over the sum of their
prices. Then, per profile, the median of those ratios and their spread (the mean absolute
deviation of their logs from the median): on a machine whose speed drifts between a calibration
and this run, the drift moves every ratio alike and leaves the spread, so two profiles
calibrated at different times are compared by their spread. All layers are timed in this one
process, one model after another.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def analysis_of(name: str):
    from inception_analyzer.bench.calibrate import CHAIN
    from inception_analyzer.pipeline import Request, analyze
    from inception_analyzer.spec import load_spec_text
    from latency_accuracy import graph_of

    if not name.startswith("chain:"):
        return graph_of(name)
    channels, side = (int(v) for v in name[len("chain:"):].split("x"))
    text = CHAIN.replace("input: [8, 4, 4]", f"input: [{channels}, {side}, {side}]").replace("conv(8,", f"conv({channels},")
    return analyze(Request(load_spec_text(text, name)))


def layer_step(node, batch: int):
    """The layer's call on inputs of its shapes: its module through the registry, or its merge."""
    import torch

    inputs = [tuple(s) for s in node.in_shapes]
    tensors = [torch.randn(batch, *shape) for shape in inputs]
    if node.op.builds_module:
        module = node.op.make_module(node.args, inputs, tuple(node.out_shape)).eval()
        return lambda: module(tensors[0])
    return lambda: node.op.combine(tensors)


def main() -> None:
    import torch

    from inception_analyzer.analysis.latency import Sample
    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.calibrate import Case, Prepared, time_case
    from inception_analyzer.bench.host_allocator import warm_allocations

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", required=True, help="profile files, comma-separated")
    parser.add_argument("--models", required=True, help="NAME@BATCH, comma-separated")
    parser.add_argument("--min-time", type=float, default=0.01, help="seconds of calls per layer (default 0.01)")
    options = parser.parse_args()
    paths = options.profiles.split(",")
    profiles = [read_profile(path) for path in paths]
    device = torch.device("cpu")
    ratios: list[list[float]] = [[] for _ in profiles]
    print("| model | batch | layers alone | " + " | ".join(f"priced by {Path(p).name}" for p in paths) + " |")
    print("|---|---|---|" + "---|" * len(paths))
    with warm_allocations(device), torch.inference_mode():
        for item in options.models.split(","):
            name, batch_text = item.rsplit("@", 1)
            batch = int(batch_text)
            analysis = analysis_of(name)
            predictions = [analysis.predict(profile, batch) for profile in profiles]
            measured, priced = 0.0, [0.0] * len(profiles)
            for index, layer in enumerate(predictions[0].layers):
                step = layer_step(analysis.graph.node(layer.path), batch)
                measured += time_case(Prepared(Case(layer.op, {}, (), batch), "", "", step, Sample("", 0.0)),
                                      device, options.min_time)
                for j, prediction in enumerate(predictions):
                    priced_layer = prediction.layers[index]
                    priced[j] += priced_layer.overhead_seconds - profiles[j].layer_overhead + priced_layer.kernel_seconds
            cells = []
            for j, price in enumerate(priced):
                ratios[j].append(measured / price)
                cells.append(f"{price * 1e3:,.2f} ms ({measured / price:.2f})")
            print(f"| {name} | {batch} | {measured * 1e3:,.2f} ms | " + " | ".join(cells) + " |", flush=True)
    print()
    for path, values in zip(paths, ratios):
        logs = [math.log(v) for v in values]
        middle = statistics.median(logs)
        deviations = [abs(v - middle) for v in logs]
        print(f"{path}: alone / priced, median {math.exp(middle):.3f}; spread {100 * statistics.mean(deviations):.1f}% "
              f"(mean absolute deviation of the logs), at most {100 * max(deviations):.1f}%")


if __name__ == "__main__":
    main()

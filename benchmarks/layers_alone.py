"""Does a profile price single layers right? Every layer of a model timed alone, on warm memory, as
`calibrate` times a case (bench/calibrate.py's time_case), beside the price one or more profiles
put on it (its entry's overhead and kernel: no layer overhead, no fresh pages, nothing a model
adds around its layers).

    python benchmarks/layers_alone.py --profiles A.yaml[,B.yaml...] --models NAME@BATCH,...

NAME is a bundled spec, an imported model (torchvision:resnet18, as benchmarks/latency_accuracy.py
writes its spec), `chain:CxS`: the calibration's 120-layer chain network (conv, batch norm, ReLU,
pool, concat; bench/calibrate.py's CHAIN, every unit alike) widened to C channels on S x S maps,
or `units:C:FIRST:STEP:S`: twenty units of a 1x1 and a 3x3 convolution, each unit STEP channels
wider than the one before from FIRST, on S x S maps after a C-channel input (calibrate.py's
distinct_units, as `calibrate` fits what a layer adds in a model to). For each model: the model
timed whole, its layers alone, what the whole takes beyond them a convolution or linear layer,
and for each profile the sum of the layers' prices (their entries alone) with the ratio alone /
priced. Then, per profile, the median of those ratios and their spread (the mean absolute
deviation of their logs from the median): on a machine whose speed drifts between a calibration
and this run, the drift moves every ratio alike and leaves the spread, so two profiles
calibrated at different times are compared by their spread. Everything is timed in this one
process, each model whole and then layer by layer, back to back.
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
    from inception_analyzer.bench.calibrate import CHAIN, distinct_units
    from inception_analyzer.pipeline import Request, analyze
    from inception_analyzer.spec import load_spec_text
    from latency_accuracy import graph_of

    if name.startswith("units:"):
        channels, first, step, side = (int(v) for v in name[len("units:"):].split(":"))
        return analyze(Request(load_spec_text(distinct_units(channels, first, step, side), name)))
    if not name.startswith("chain:"):
        return graph_of(name)
    channels, side = (int(v) for v in name[len("chain:"):].split("x"))
    text = CHAIN.replace("input: [8, 4, 4]", f"input: [{channels}, {side}, {side}]").replace("conv(8,", f"conv({channels},")
    return analyze(Request(load_spec_text(text, name)))


def main() -> None:
    import torch

    from inception_analyzer.analysis.latency import Sample
    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.calibrate import Case, Prepared, node_call, time_case
    from inception_analyzer.bench.host_allocator import warm_allocations
    from inception_analyzer.build import build_model
    from inception_analyzer.ops import Category

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", required=True, help="profile files, comma-separated")
    parser.add_argument("--models", required=True, help="NAME@BATCH, comma-separated")
    parser.add_argument("--min-time", type=float, default=0.01, help="seconds of calls per layer (default 0.01)")
    parser.add_argument("--whole-time", type=float, default=0.5, help="seconds of calls of the whole model (default 0.5)")
    options = parser.parse_args()
    paths = options.profiles.split(",")
    profiles = [read_profile(path) for path in paths]
    device = torch.device("cpu")
    ratios: list[list[float]] = [[] for _ in profiles]
    print("| model | batch | whole | layers alone | whole beyond them, a conv or linear layer | "
          + " | ".join(f"layers priced by {Path(p).name}" for p in paths) + " |")
    print("|---|---|---|---|---|" + "---|" * len(paths))
    with warm_allocations(device), torch.inference_mode():
        for item in options.models.split(","):
            name, batch_text = item.rsplit("@", 1)
            batch = int(batch_text)
            analysis = analysis_of(name)
            model = build_model(analysis.graph).eval()
            x = torch.randn(batch, *analysis.graph.input_shape)
            whole = time_case(Prepared(Case("model", {}, (), batch), "", "", lambda: model(x), Sample("", 0.0)),
                              device, options.whole_time)
            predictions = [analysis.predict(profile, batch) for profile in profiles]
            measured, priced = 0.0, [0.0] * len(profiles)
            for index, layer in enumerate(predictions[0].layers):
                step = node_call(analysis.graph.node(layer.path), batch, device, torch.float32)
                measured += time_case(Prepared(Case(layer.op, {}, (), batch), "", "", step, Sample("", 0.0)),
                                      device, options.min_time)
                for j, prediction in enumerate(predictions):
                    priced[j] += prediction.layers[index].overhead_seconds + prediction.layers[index].kernel_seconds
            weighted = sum(1 for node in analysis.graph.layers() if node.op.category is Category.LINEAR
                           or node.op.geometry(node.args, list(node.in_shapes), node.out_shape) is not None)
            cells = []
            for j, price in enumerate(priced):
                ratios[j].append(measured / price)
                cells.append(f"{price * 1e3:,.2f} ms ({measured / price:.2f})")
            beyond = f"{(whole - measured) / weighted * 1e6:,.1f} us" if weighted else "-"
            print(f"| {name} | {batch} | {whole * 1e3:,.2f} ms | {measured * 1e3:,.2f} ms | {beyond} | "
                  + " | ".join(cells) + " |", flush=True)
    print()
    for path, values in zip(paths, ratios):
        logs = [math.log(v) for v in values]
        middle = statistics.median(logs)
        deviations = [abs(v - middle) for v in logs]
        print(f"{path}: alone / priced, median {math.exp(middle):.3f}; spread {100 * statistics.mean(deviations):.1f}% "
              f"(mean absolute deviation of the logs), at most {100 * max(deviations):.1f}%")


if __name__ == "__main__":
    main()

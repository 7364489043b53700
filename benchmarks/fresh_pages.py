"""Does the allocator simulation (analysis/allocator.py) find the pages a forward pass really
faults in? Each model built and run in a process of its own with glibc's malloc held steady, as
`bench` and benchmarks/latency_accuracy.py measure it, and the kernel's count of the process's
minor page faults (getrusage's ru_minflt) read around each of a few steady passes: every page
the kernel hands out anew is faulted in once, so the count times the page size is the memory
the pass touched fresh. Beside it, the simulation's fresh bytes for the same pass, which the
latency prediction prices at the profile's cost a byte.

    python benchmarks/fresh_pages.py --profile PROFILE.yaml [--models NAME,...] [--batch 1,8,32]
        [--layers]

NAME is a bundled spec or an imported model (torchvision:resnet18, as latency_accuracy.py writes
its spec). With --layers, every layer whose faults and simulated fresh bytes differ by more than
a MiB is listed, its faults read around its module's call (a concat or add the built model
computes in its parent's forward has no call of its own: its faults count in the pass, not in a
layer). Pages are taken to be 4 KiB: with transparent huge pages on 'always' a fault can map
2 MiB, and the count says less.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PAGE = 4096
MIB = 2**20
WARM_PASSES = 3     # the simulation's steady state: its passes settle within a few


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure_one(profile_path: str, item: str, passes: int, layers: bool) -> dict:
    """One model and batch in this process: the faults of each steady pass, the simulation's
    fresh bytes, and with `layers` both per layer."""
    import torch

    from inception_analyzer.analysis.allocator import fresh_bytes
    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.bench.host_allocator import steady_allocator
    from inception_analyzer.build import build_model
    from latency_accuracy import graph_of

    name, batch_text = item.rsplit("@", 1)
    batch = int(batch_text)
    profile = read_profile(profile_path)
    if profile.allocator is None:
        raise SystemExit(f"{profile_path}: the profile simulates no host allocator")
    analysis = graph_of(name)
    simulated = fresh_bytes(analysis.graph, batch, 4, profile.allocator)
    steady_allocator(torch.device("cpu"))
    model = build_model(analysis.graph).eval()
    x = torch.randn(batch, *analysis.graph.input_shape)
    per_layer: dict[str, int] = {}
    if layers:
        modules = dict(model.named_modules())
        started: dict[str, int] = {}
        for path in simulated:
            if path in modules:
                modules[path].register_forward_pre_hook(lambda module, inputs, path=path: started.__setitem__(path, faults()))
                modules[path].register_forward_hook(
                    lambda module, inputs, output, path=path: per_layer.__setitem__(
                        path, per_layer.get(path, 0) + faults() - started[path]))
    counts = []
    with torch.inference_mode():
        for _ in range(WARM_PASSES):
            model(x)
        for _ in range(passes):
            per_layer.clear()
            before = faults()
            model(x)
            counts.append(faults() - before)
    row = {"model": name, "batch": batch, "simulated_bytes": sum(simulated.values()),
           "faulted_bytes": [PAGE * count for count in counts], "torch": torch.__version__}
    if layers:
        row["layers"] = [(path, PAGE * per_layer.get(path, 0), simulated[path]) for path in simulated
                         if path in per_layer or simulated[path]]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, help="a calibrated CPU profile (its allocator settings)")
    parser.add_argument("--models", default="inception_v3,resnet50,torchvision:mobilenet_v2,torchvision:efficientnet_b0")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--passes", type=int, default=3, help="steady passes counted (the median is shown)")
    parser.add_argument("--layers", action="store_true", help="list the layers where the two differ")
    parser.add_argument("--one", help=argparse.SUPPRESS)    # NAME@BATCH, measured in this process
    options = parser.parse_args()
    if options.one:
        print(json.dumps(measure_one(options.profile, options.one, options.passes, options.layers)))
        return
    print("| model | batch | simulated fresh | faulted in a pass (4 KiB pages) | simulated / faulted |")
    print("|---|---|---|---|---|")
    ratios = []
    for name in options.models.split(","):
        for batch in (int(b) for b in options.batch.split(",")):
            command = [sys.executable, __file__, "--profile", options.profile, "--one", f"{name}@{batch}",
                       "--passes", str(options.passes)] + (["--layers"] if options.layers else [])
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"| {name} | {batch} | failed: {done.stderr.strip().splitlines()[-1:]} | | |", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            faulted = statistics.median(row["faulted_bytes"])
            simulated = row["simulated_bytes"]
            ratio = f"{simulated / faulted:.2f}" if faulted else ("-" if not simulated else "inf")
            if faulted:
                ratios.append(simulated / faulted)
            spread = f"{min(row['faulted_bytes']) / MIB:,.1f} - {max(row['faulted_bytes']) / MIB:,.1f}"
            print(f"| {name} | {batch} | {simulated / MIB:,.1f} MiB | {faulted / MIB:,.1f} MiB ({spread}) | {ratio} |",
                  flush=True)
            for path, real, simulated_layer in row.get("layers", []):
                if abs(real - simulated_layer) > MIB:
                    print(f"    {path}: faulted {real / MIB:,.1f} MiB, simulated {simulated_layer / MIB:,.1f} MiB")
    if ratios:
        print(f"\nsimulated / faulted where pages were faulted: median {statistics.median(ratios):.2f}, "
              f"{min(ratios):.2f} to {max(ratios):.2f} over {len(ratios)} cases")


if __name__ == "__main__":
    main()

"""How fast is `analyze`, against the usual way of getting the same numbers, in the same run?

    ./dev bench analyze_speed            # or: .venv/bin/python benchmarks/analyze_speed.py
    ./dev bench analyze_speed --quick    # fewer repeats, smaller scaling series

1. Whole process: `python -m inception_analyzer analyze specs/inception_v3.yaml` (table output)
   against two peers: a process that builds our own model of the spec (build_model) and runs
   fvcore's FlopCountAnalysis on it, and one doing the same with torchvision's inception_v3
   (skipped when torch, torchvision or fvcore cannot be imported). Medians of repeated runs; the
   ratio is peer / ours.
2. In process: load + expand + analyze, against model construction + FlopCountAnalysis.total().
3. Scaling: generated specs of 1,250 ... 10,000 Inception-style blocks (3 convs, BN, ReLU and a
   concat each) through `inception_analyzer.analyze` (costs, receptive fields and the design
   review); time per block should stay flat if the analysis is linear.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SPEC = str(ROOT / "specs" / "inception_v3.yaml")

PEER_SETUP = textwrap.dedent("""
    import torch
    try:
        import torchvision
    except Exception:  # no CPU build of torchvision's ops for torch 2.13: define the schemas it needs
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(op + "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    from fvcore.nn import FlopCountAnalysis
""")
PEERS = {
    "our build_model + fvcore": textwrap.dedent(f"""
        import inception_analyzer
        model = inception_analyzer.build_model({SPEC!r}).eval()
    """),
    "torchvision inception_v3 + fvcore": textwrap.dedent("""
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).eval()
    """),
}
COUNT = textwrap.dedent("""
    flops = FlopCountAnalysis(model, torch.zeros(1, 3, 299, 299))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = flops.total()
""")


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peer_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", PEER_SETUP], capture_output=True, cwd=ROOT)
    return probe.returncode == 0


def whole_process(repeats: int) -> None:
    ours = median_seconds([sys.executable, "-m", "inception_analyzer", "analyze", SPEC], repeats)
    print(f"whole process, {'analyze inception_v3 (table):':40} {ours * 1000:8.1f} ms   (median of {repeats})")
    if not peer_available():
        print("peer (torchvision + fvcore) not importable: ratio not measured")
        return
    for name, build in PEERS.items():
        peer = median_seconds([sys.executable, "-c", PEER_SETUP + build + COUNT], max(3, repeats // 3))
        print(f"whole process, {name + ':':40} {peer * 1000:8.1f} ms   ratio peer / ours {peer / ours:6.1f} x")


def in_process(repeats: int) -> None:
    import inception_analyzer as ia

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ia.analyze(SPEC)
        times.append(time.perf_counter() - start)
    ours = statistics.median(times)
    print(f"in process, {'load + expand + analyze + RF + review:':43} {ours * 1000:8.2f} ms")
    if not peer_available():
        return
    namespace: dict = {}
    exec(PEER_SETUP, namespace)  # noqa: S102 - our own constant benchmark code
    for name, build in PEERS.items():
        times = []
        for _ in range(max(3, repeats // 5)):
            start = time.perf_counter()
            exec(build + COUNT, namespace)  # noqa: S102
            times.append(time.perf_counter() - start)
        peer = statistics.median(times)
        print(f"in process, {name + ':':43} {peer * 1000:8.2f} ms   ratio peer / ours {peer / ours:6.1f} x")


def generated_spec(blocks: int) -> str:
    rows = "\n".join(f"  - block{i}: Block" for i in range(blocks))
    return textwrap.dedent("""
        name: generated
        input: [3, 32, 32]
        modules:
          ConvBN:
            args: [out, kernel, padding: 0]
            layers:
              - conv: conv(out, kernel, padding=padding, bias=false)
              - bn: bn(eps=0.001)
              - relu
          Block:
            concat:
              - b1: ConvBN(16, 1)
              - - b2a: ConvBN(8, 1)
                - b2b: ConvBN(16, 3, padding=1)
        layers:
          - stem: ConvBN(32, 3, padding=1)
        """) + rows + "\n  - adaptive_avgpool(1)\n  - flatten\n  - fc: linear(10)\n"


def scaling(sizes: list[int]) -> None:
    import inception_analyzer as ia

    print(f"\n{'blocks':>8} {'ops':>8} {'seconds':>9} {'us/block':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for blocks in sizes:
            path = Path(tmp) / f"gen{blocks}.yaml"
            path.write_text(generated_spec(blocks))
            start = time.perf_counter()
            report = ia.analyze(str(path))
            seconds = time.perf_counter() - start
            print(f"{blocks:>8} {len(report.layers):>8} {seconds:>9.3f} {seconds / blocks * 1e6:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a shorter series")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    print(f"python {sys.version.split()[0]}, {Path('/proc/cpuinfo').read_text().count('processor') if Path('/proc/cpuinfo').exists() else '?'} cpus\n")
    whole_process(repeats)
    print()
    in_process(repeats * 2)
    scaling([1250, 2500] if args.quick else [1250, 2500, 5000, 10000])


if __name__ == "__main__":
    main()

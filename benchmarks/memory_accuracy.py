"""Predicted against measured: the memory analysis's peak beside the allocator's, and the training
FLOPs beside torch's FlopCounterMode, for every bundled spec.

    python benchmarks/memory_accuracy.py                       # every spec, inference and train, batch 1 and 16
    python benchmarks/memory_accuracy.py --specs googlenet,vgg16 --batches 1,16 --modes train --dtype fp32

Memory: each spec is built and run as `bench` runs it (bench/workload.py: our model, the bench's
inputs, a forward pass under inference_mode or a training step of the paper's recipe); one warm
step, then one step under torch's profiler, whose allocator events give the CPU peak
(bench/memory.py). On CUDA, max_memory_allocated over the same step. The prediction is
`analyze SPEC --mode M --batch B --dtype D` (analysis/memory.py) for the device's backend.

FLOPs: one training step at batch 2 under FlopCounterMode, whose total (it counts convolutions and
matrix products, forward and backward) must equal batch x the conv and linear training FLOPs.

It prints one Markdown table per check, with the ratios, and the machine.
"""
from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import inception_analyzer as ia  # noqa: E402
from inception_analyzer import catalog  # noqa: E402
from inception_analyzer.bench.machine import cpu_name, cpu_identity  # noqa: E402
from inception_analyzer.bench.memory import step_peak_bytes  # noqa: E402
from inception_analyzer.bench.runner import memory_settings  # noqa: E402
from inception_analyzer.bench.settings import BenchSettings, torch_settings  # noqa: E402
from inception_analyzer.bench.workload import build_ours, make_inputs, make_step  # noqa: E402

FLOPS_BATCH = 2


def measured_peak(analysis, batch: int, settings: BenchSettings) -> int:
    torch.manual_seed(0)
    model = build_ours(analysis.graph, settings)
    images, labels = make_inputs(analysis.graph, batch, settings)
    step = make_step(model, images, labels, settings)
    cuda = settings.device.type == "cuda"
    with torch.inference_mode() if settings.mode == "inference" else torch.enable_grad():
        step()                      # warm: the optimizer's state, oneDNN's and cuDNN's first calls
        if not cuda:
            return step_peak_bytes(step)
        step.clear_gradients()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()


def counted_flops(analysis, settings: BenchSettings) -> int:
    torch.manual_seed(0)
    model = build_ours(analysis.graph, settings)
    step = make_step(model, *make_inputs(analysis.graph, FLOPS_BATCH, settings), settings)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def gib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default=",".join(catalog.bundled_names()), help="bundled specs (default: all)")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--modes", default="inference,train")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FlopCounterMode check")
    args = parser.parse_args()
    device = torch.device(args.device)
    specs = args.specs.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    modes = args.modes.split(",")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()} ({cpu_identity()})"
    print(f"machine: {where}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}, device {device}, {args.dtype}\n")
    print("| spec | mode | batch | predicted | measured | predicted / measured | peak at |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    started = time.perf_counter()
    for spec in specs:
        analysis = ia.analyze(spec)
        for mode in modes:
            settings = BenchSettings(device, dtype=args.dtype, mode=mode)
            with torch_settings(settings):
                for batch in batches:
                    memory = analysis.memory(memory_settings(batch, settings))
                    try:
                        measured = measured_peak(analysis, batch, settings)
                    except (RuntimeError, ValueError) as err:   # torch refuses (batch norm over one value)
                        reason = str(err).splitlines()[0][:70]
                        print(f"| {spec} | {mode} | {batch} | {gib(memory.peak_bytes)} | torch refuses: {reason} "
                              "| - | - |", flush=True)
                        continue
                    finally:
                        gc.collect()
                    ratio = memory.peak_bytes / measured
                    ratios.append(ratio)
                    where = memory.peak_phase + ("" if memory.peak_phase == "optimizer step" else
                                                 f" of {memory.peak_at}")
                    print(f"| {spec} | {mode} | {batch} | {gib(memory.peak_bytes)} | {gib(measured)} | {ratio:.4f} | "
                          f"{where} |", flush=True)
    if ratios:
        print(f"\n{len(ratios)} runs: predicted / measured from {min(ratios):.4f} to {max(ratios):.4f}; "
              f"{sum(abs(r - 1) <= 0.10 for r in ratios)} within 10% ({time.perf_counter() - started:.0f} s)\n")
    if not args.flops:
        return 0
    print(f"| spec | FlopCounterMode (training step, batch {FLOPS_BATCH}) | ours: its count x batch | equal | "
          "ours: conv + linear training FLOPs x batch | equal |")
    print("|---|---|---|---|---|---|")
    equal = same = 0
    for spec in specs:
        analysis = ia.analyze(spec)
        settings = BenchSettings(device, mode="train")
        with torch_settings(settings):
            counted = counted_flops(analysis, settings)
        compatible, ours = analysis.training.flop_counter * FLOPS_BATCH, analysis.training.matmul * FLOPS_BATCH
        equal += counted == compatible
        same += counted == ours
        print(f"| {spec} | {counted:,} | {compatible:,} | {'yes' if counted == compatible else 'NO'} | {ours:,} | "
              f"{'yes' if counted == ours else f'no: {ours / counted:.4f}'} |", flush=True)
        gc.collect()
    print(f"\n{equal} of {len(specs)} specs equal FlopCounterMode's count; {same} equal it with our convention "
          "(FlopCounterMode counts a grouped conv's weight gradient groups times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

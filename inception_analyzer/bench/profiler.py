"""--per-layer: each leaf module's forward time under the torch profiler, beside its estimate."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any, Iterator

import torch
from torch import nn

from ..analysis.cost import CostReport
from ..analysis.latency import LatencyPrediction
from ..analysis.roofline import ModelEstimate
from ..graph import Graph
from .records import LayerTiming
from .settings import BenchSettings
from .timing import synchronize
from .workload import build_ours, make_inputs

PROFILED_ITERATIONS = 3         # forward passes under the torch profiler
LAYER_RANGE = "layer:"          # prefix of the profiler ranges around leaf modules
# what torch's profiler (kineto, in C++) writes straight to the process's stderr as a profile
# warms up, starts and stops: "USDT:2026-11-29 12:21:55 21881:21881 SyncActivityProfilerHandler.cpp:52]
# profiler_start"; KINETO_LOG_LEVEL does not silence the USDT lines (torch 2.13)
KINETO_CHATTER = ("USDT:", "STAGE:")


@contextlib.contextmanager
def without_kineto_chatter() -> Iterator[None]:
    """Run the block with the process's stderr (file descriptor 2, where kineto writes, past
    Python's sys.stderr) captured; afterwards every line captured is passed on but kineto's
    KINETO_CHATTER lines. Where descriptor 2 cannot be duplicated, the block runs as it is."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith(KINETO_CHATTER)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def layer_ranges(model: nn.Module) -> Iterator[list[str]]:
    """Wrap every leaf module's forward in a profiler range named after its path."""
    open_ranges: dict[int, Any] = {}
    handles, names = [], []

    def enter(name):
        def hook(module, inputs):
            open_ranges[id(module)] = torch.profiler.record_function(LAYER_RANGE + name).__enter__()
        return hook

    def leave(module, inputs, output):
        open_ranges.pop(id(module)).__exit__(None, None, None)

    for name, module in model.named_modules():
        if name and not list(module.children()):
            names.append(name)
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
    try:
        yield names
    finally:
        for handle in handles:
            handle.remove()


def profile_layers(model: nn.Module, images: torch.Tensor, iterations: int = PROFILED_ITERATIONS
                   ) -> tuple[dict[str, float], float]:
    """Mean seconds per forward of every leaf module, and of the whole forward, under the torch
    profiler (eager; device time of the kernels launched inside each range on CUDA, wall time on
    the CPU). Profiler overhead is included: compare layers with each other, not with the
    unprofiled figures."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, record_function

    device = images.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    model.eval()
    with torch.inference_mode(), layer_ranges(model):
        model(images)  # warm-up outside the profile
        synchronize(device)
        with without_kineto_chatter(), profile(activities=activities) as prof:
            for _ in range(iterations):
                with record_function(LAYER_RANGE + "(model)"):
                    model(images)
            synchronize(device)
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    for event in prof.events():
        # the CPU-side range; on CUDA the profiler also records a GPU-side copy of each range,
        # which must not be counted twice
        if event.device_type != DeviceType.CPU or not event.name.startswith(LAYER_RANGE):
            continue
        name = event.name[len(LAYER_RANGE):]
        # on CUDA the device time of the kernels launched inside the range, on the CPU its wall time
        microseconds = event.device_time_total if device.type == "cuda" else event.cpu_time_total
        totals[name] = totals.get(name, 0.0) + microseconds
        calls[name] = calls.get(name, 0) + 1
    times = {name: total / 1e6 / calls[name] for name, total in totals.items()}
    return times, times.pop("(model)", 0.0)


def profile_forward(graph: Graph, batch: int, settings: BenchSettings) -> tuple[dict[str, float], float]:
    """profile_layers of our model, built afresh, on one batch of the benchmark's inputs."""
    model = build_ours(graph, settings)
    images, _ = make_inputs(graph, batch, settings)
    return profile_layers(model, images)


def layer_timings(estimate: ModelEstimate | None, report: CostReport, measured: dict[str, float],
                  prediction: LatencyPrediction | None = None) -> list[LayerTiming]:
    estimates = {layer.path: layer for layer in estimate.layers} if estimate else {}
    predicted = {layer.path: layer.seconds for layer in prediction.layers} if prediction else {}
    rows = []
    for record in report.layers:
        if record.role != "main":
            continue  # the forward pass at inference runs no auxiliary head
        layer = estimates.get(record.path)
        rows.append(LayerTiming(record.path, record.op, layer.seconds if layer else None,
                                layer.bound if layer else "-", measured.get(record.path), predicted.get(record.path)))
    return rows

"""Peak memory of one step, measured: the CPU allocator's peak from torch's profiler, CUDA's from its
caching allocator.

On CUDA, `torch.cuda.max_memory_allocated` is the caching allocator's own statistic: the most bytes
its live blocks held at once (each request rounded up to its block size), weights and everything
resident included. The runner reads it around the timed iterations.

The CPU has no such statistic: torch's CPU allocator keeps no counters. It does report every
allocation and every free to the profiler, with the requested size, when the profiler runs with
`profile_memory=True`; so one extra call of the step runs under the profiler, the memory events are
put in time order and summed, and the largest running sum is the most bytes the step allocated on
top of what existed when it started. What existed then is known exactly: the tensors the step
holds (weights, buffers, optimizer state, the images and labels), counted by storage, once each.
Gradients are set to None before the profiled call, so the step frees nothing it did not allocate
under the profiler (the profiler cannot size the free of a block allocated before it started).

    peak = bytes of the storages held at the start + the largest running sum of the events

This is exact for everything that goes through torch's allocator: every tensor, oneDNN's reordered
copies and scratch buffers (torch hands oneDNN its allocator), autograd's saved tensors, the
optimizer's temporaries. It does not see memory outside torch's allocator: the Python objects, the
oneDNN primitive cache, the threads' stacks, glibc's own rounding; `ru_maxrss` would, and with them
everything the process ever touched, so it is no measure of one step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch

if TYPE_CHECKING:
    from .workload import Step

MEMORY_EVENT = "[memory]"


def storage_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct storages behind `tensors` (a view or a tied weight counted once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        if tensor is None or tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def allocation_trace(run: Callable[[], Any]) -> list[int]:
    """The CPU allocator's events during one call of `run`, in time order: +bytes for an allocation,
    -bytes for a free, as torch's profiler records them (profile_memory=True)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from .profiler import without_kineto_chatter

    with without_kineto_chatter(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    results = getattr(prof.profiler, "kineto_results", None)
    if results is None:  # pragma: no cover - torch without kineto
        raise RuntimeError("this torch's profiler records no memory events (no kineto)")
    events = [(event.start_ns(), event.nbytes()) for event in results.events()
              if event.name() == MEMORY_EVENT and event.device_type() == DeviceType.CPU]
    events.sort(key=lambda item: item[0])   # stable: events of one instant keep their recorded order
    return [nbytes for _, nbytes in events]


def peak_of(trace: list[int]) -> tuple[int, int]:
    """(largest running sum, final sum) of an allocation trace; the peak is never below 0."""
    running = peak = 0
    for nbytes in trace:
        running += nbytes
        peak = max(peak, running)
    return peak, running


def cpu_peak_bytes(run: Callable[[], Any], resident: Iterable[torch.Tensor | None]) -> int:
    """The most bytes torch's CPU allocator held during one call of `run`: the storages of `resident`
    (what exists at the start and stays) plus the peak of the allocations `run` made on top of them."""
    held = storage_bytes(resident)
    peak, _ = peak_of(allocation_trace(run))
    return held + peak


def step_peak_bytes(step: Step) -> int:
    """The CPU allocator's peak during one call of a benchmark step, its gradients cleared first (the
    training step clears them itself: this only moves that free ahead of the profiled call)."""
    step.clear_gradients()
    return cpu_peak_bytes(step, step.resident())

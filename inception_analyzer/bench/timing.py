"""Timing a step: CUDA events on CUDA, perf_counter on the CPU; warm-up, sizing a run to a
minimum time, and splitting a run into the blocks that interleave two models."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from .limits import DEFAULT_MIN_TIME, DEFAULT_WARMUP, MAX_ITERATIONS, MIN_ITERATIONS
from .stats import TimingStats


def iterations_for(seconds_per_iteration: float, min_time: float) -> int:
    """Iterations that fill `min_time` seconds, within [MIN_ITERATIONS, MAX_ITERATIONS]."""
    if seconds_per_iteration <= 0:
        return MAX_ITERATIONS
    return max(MIN_ITERATIONS, min(MAX_ITERATIONS, math.ceil(min_time / seconds_per_iteration)))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iterations(step: Callable[[], Any], device: torch.device, iterations: int,
                    on_iteration: Callable[[int], None] | None = None) -> list[float]:
    """Seconds of each of `iterations` calls of `step`: CUDA events on CUDA, perf_counter on the CPU."""
    if device.type == "cuda":
        return _time_cuda(step, device, iterations, on_iteration)
    samples = []
    for index in range(iterations):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
        if on_iteration:
            on_iteration(index + 1)
    return samples


def _time_cuda(step, device, iterations, on_iteration) -> list[float]:
    with torch.cuda.device(device):
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        torch.cuda.synchronize(device)  # nothing from the warm-up may leak into the first pair
        for index in range(iterations):
            starts[index].record()
            step()
            ends[index].record()
            if on_iteration:
                on_iteration(index + 1)
        torch.cuda.synchronize(device)  # elapsed_time needs both events completed
        return [start.elapsed_time(end) / 1000 for start, end in zip(starts, ends)]


def warm_up(step: Callable[[], Any], iterations: int) -> None:
    for _ in range(max(1, iterations)):
        step()


def seconds_per_iteration(step: Callable[[], Any], device: torch.device) -> float:
    """One synchronised iteration, to size a run."""
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


def measure(step: Callable[[], Any], device: torch.device, warmup: int = DEFAULT_WARMUP,
            iterations: int | None = None, min_time: float = DEFAULT_MIN_TIME,
            on_iteration: Callable[[int, int], None] | None = None) -> TimingStats:
    """Warm up, size the run from one synchronised iteration, then time every iteration."""
    warm_up(step, warmup)
    total = iterations or iterations_for(seconds_per_iteration(step, device), min_time)
    samples = time_iterations(step, device, total, (lambda done: on_iteration(done, total)) if on_iteration else None)
    return TimingStats(tuple(samples))


def block_sizes(iterations: int, rounds: int) -> list[int]:
    """`iterations` split into `rounds` blocks as evenly as possible: 10, 4 -> [3, 3, 2, 2]."""
    return [iterations // rounds + (1 if index < iterations % rounds else 0) for index in range(rounds)]

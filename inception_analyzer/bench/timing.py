"""Timing a step: CUDA events on CUDA, perf_counter on the CPU; warm-up, sizing a run to a
minimum time, and splitting a run into the blocks that interleave two models."""
from __future__ import annotations

import math
import statistics
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


# On a queue device (CUDA) the host enqueues a call and goes on; the device runs it when it gets
# there. Timed back to back with events (time_iterations), a call the host takes longer to enqueue
# than the device takes to run measures the host: on the H200 of docs/benchmarks.md a batch norm
# of inception_v3 at batch 1 came out at about 30 us a call, which priced the model's 94 batch
# norms at 2.8 ms of device time while the whole model ran in 5.6 ms. Timed behind a hold (a
# kernel that spins while the host enqueues the calls), a group of calls between two events
# measures the device running each with the next one already waiting, as in a model whose host
# runs ahead.
QUEUED_CALLS = 64       # calls behind one hold: a call's few kernels each stay well within the
                        # about 1000 launches CUDA queues before the host has to wait
HOLD_MARGIN = 2.0       # a hold lasts this many times the host's time to enqueue its calls ...
HOLD_SLACK = 100e-6     # ... plus this
HOLD_RETRIES = 3        # a group the host outran its hold for is timed again, the hold longer
_SLEEP_CYCLES_PER_SECOND: dict[int, float] = {}


def can_hold(device: torch.device) -> bool:
    return device.type == "cuda" and hasattr(torch.cuda, "_sleep")


def _cycles_per_second(device: torch.device) -> float:
    """How many of torch.cuda._sleep's cycles the device spins a second, measured once a device."""
    index = torch.cuda.current_device() if device.index is None else device.index
    if index not in _SLEEP_CYCLES_PER_SECOND:
        cycles = 2**22
        torch.cuda._sleep(cycles)               # its first launch loads the kernel
        seconds = []
        for _ in range(3):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.cuda._sleep(cycles)
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        _SLEEP_CYCLES_PER_SECOND[index] = cycles / min(seconds)
    return _SLEEP_CYCLES_PER_SECOND[index]


def hold_device(device: torch.device, seconds: float) -> None:
    """Keep the device busy for about `seconds` (a spinning kernel), so that the host enqueues what
    follows while the device is still behind it."""
    torch.cuda._sleep(max(1, int(seconds * _cycles_per_second(device))))


def _held_calls(step: Callable[[], Any], device: torch.device, calls: int, hold: float) -> tuple[float, float]:
    """`calls` calls of `step` enqueued between two events, behind a hold of `hold` seconds (none
    for 0): (the host's seconds to enqueue them, the device's seconds from the first event to
    the second)."""
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    synchronize(device)
    if hold:
        hold_device(device, hold)
    start = time.perf_counter()
    begin.record()
    for _ in range(calls):
        step()
    end.record()
    enqueued = time.perf_counter() - start
    synchronize(device)
    return enqueued, begin.elapsed_time(end) / 1000


def time_on_device(step: Callable[[], Any], device: torch.device, iterations: int) -> tuple[list[float], float]:
    """The seconds a call of `step` takes on the device itself, the host kept ahead, once per
    group of calls (the group's time on the device over its calls); and the host's seconds to
    enqueue one call (the median over the groups). The calls are enqueued in groups of
    QUEUED_CALLS between two events, each group behind a hold of HOLD_MARGIN times the host's
    time to enqueue it, unless the group before ran longer on the device than that (the host
    stays ahead of such calls by itself). No event between the calls: an event recorded costs
    the host time of its own (on the H200 of docs/benchmarks.md, with two a call, each entry's
    host time lay a median 13.9 us above its overhead timed without them, at every size).
    Where the host cannot be kept ahead (a CPU, which runs each call itself; a torch without
    the spinning kernel): each call as time_iterations times it, and no host time (0)."""
    if not can_hold(device):
        return time_iterations(step, device, iterations), 0.0
    samples: list[float] = []
    hosts: list[float] = []
    with torch.cuda.device(device):
        synchronize(device)
        start = time.perf_counter()
        step()
        host = time.perf_counter() - start      # one call's enqueue (the device may still run it)
        held, done = True, 0
        while done < iterations:
            calls = min(QUEUED_CALLS, iterations - done)
            for _ in range(HOLD_RETRIES):
                hold = HOLD_MARGIN * calls * host + HOLD_SLACK if held else 0.0
                enqueued, on_device = _held_calls(step, device, calls, hold)
                host = enqueued / calls
                if not held or enqueued < hold:     # the device waited on nothing: these are its times
                    break
            samples.append(on_device / calls)
            hosts.append(host)
            done += calls
            held = samples[-1] < HOLD_MARGIN * host
    return samples, statistics.median(hosts)


def host_and_device_seconds(step: Callable[[], Any], device: torch.device, calls: int = 5
                            ) -> tuple[float, float, bool]:
    """A whole call's two sides on a queue device, each the median of `calls`: the host's time to
    enqueue it (behind a hold, so that nothing it does waits on the device), and the device's
    time to run it with all of it already enqueued. The flag is False where the hold did not
    last while the host enqueued (a call of more launches than CUDA queues, whose host then
    waits on the device): its host time includes waiting."""
    if not can_hold(device):
        raise ValueError(f"a {device.type} device runs what its host calls: no queue to split")
    with torch.cuda.device(device):
        hold = HOLD_MARGIN * seconds_per_iteration(step, device) + HOLD_SLACK
        sides = [_held_calls(step, device, 1, hold) for _ in range(calls)]
    hosts, devices = [host for host, _ in sides], [on_device for _, on_device in sides]
    return statistics.median(hosts), statistics.median(devices), all(host < hold for host in hosts)


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

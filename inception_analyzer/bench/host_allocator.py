"""The host's memory allocator while a CPU is timed: glibc's malloc, held in one state.

glibc maps a block of at least its mmap threshold from the kernel on its own, and unmaps it when
freed; memory the kernel hands out anew is faulted in and cleared page by page on its first
touch, which costs about a quarter of a nanosecond a byte here, far more than writing warm
memory. By default the threshold starts at 128 KiB and rises to the size of each mapped block
freed (up to 32 MiB), and the heap's top is given back to the kernel whenever more than twice the
threshold lies free there. So where a process's tensors land, and what a forward pass pays for
fresh pages, depends on what the process happened to allocate and free before: measured in
fresh processes that differed only in what ran before the timing, torchvision's mobilenet_v2 at
batch 1 took 7.9 ms in one (`bench`) and 12 to 14 ms in another (docs/benchmarks.md).

`steady_allocator` sets both parameters once, to where glibc's own rule takes them after a 32 MiB
block has been freed (threshold 32 MiB, trim threshold 64 MiB). Setting them turns the rule off,
so every measurement in the process starts from that one state whatever ran before it: a
long-running process's state, in which only blocks of 32 MiB and more are mapped on their own.
analysis/allocator.py simulates the same state for the prediction. `warm_allocations` is
calibration's: nothing mapped on its own and no trimming at all, so microbenchmarks run on warm
memory and the fresh-page cost is measured apart (`measure_allocator`).
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch

from ..analysis.allocator import MMAP_THRESHOLD_MAX, Allocator
from ..analysis.latency import rounded

# glibc's mallopt parameters (malloc.h) and their defaults
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
DEFAULT_MMAP_MAX = 65536
STEADY_MMAP_THRESHOLD = MMAP_THRESHOLD_MAX                 # 32 MiB: the most glibc's rule raises it to
STEADY_TRIM_THRESHOLD = 2 * STEADY_MMAP_THRESHOLD           # what the rule sets beside it


def _glibc():
    """The C library, where it is glibc (whose allocator analysis/allocator.py simulates); else None."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def steady_allocator(device: torch.device) -> str | None:
    """Hold glibc's malloc in its steady state for the rest of the process (module docstring),
    when `device` is a CPU and the C library is glibc. Returns what was set, for the report, or
    None where nothing was."""
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        return None
    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
    libc.mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)
    return (f"glibc malloc held steady: blocks of {STEADY_MMAP_THRESHOLD // 2**20} MiB and more mapped on their "
            f"own, the heap trimmed past {STEADY_TRIM_THRESHOLD // 2**20} MiB free")


@contextlib.contextmanager
def warm_allocations(device: torch.device) -> Iterator[bool]:
    """While calibrating on a CPU with glibc: no block mapped on its own and no heap trimmed, so
    every op runs on warm memory, as a microbenchmark's repeated calls mostly do anyway; what
    fresh pages cost is measured apart (measure_allocator) and added per layer by the prediction's
    simulation. Yields whether it could. Afterwards the steady state (steady_allocator) is set."""
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield True
    finally:
        steady_allocator(device)


def measure_allocator(device: torch.device, size: int = 64 * 2**20, repeats: int = 5) -> Allocator:
    """What a fresh page costs: filling memory just mapped from the kernel (each page faulted in
    and cleared on its first touch) less filling it again, per byte, with torch's threads; the
    median of a few mappings. Plus whether convolutions compute on layout copies (oneDNN) and the
    channel block those round to (16 where the CPU has AVX-512, else 8), and
    the steady state the measurements run in (its threshold, from the start)."""
    import mmap

    costs = []
    for _ in range(repeats):
        mapping = mmap.mmap(-1, size)
        tensor = torch.frombuffer(mapping, dtype=torch.float32)
        start = time.perf_counter()
        tensor.fill_(1.0)
        fresh = time.perf_counter() - start
        start = time.perf_counter()
        tensor.fill_(2.0)
        warm = time.perf_counter() - start
        costs.append(max(fresh - warm, 0.0) / size)
        del tensor
        mapping.close()
    costs.sort()
    return Allocator(fault_seconds_per_byte=rounded(costs[len(costs) // 2]), mmap_threshold=STEADY_MMAP_THRESHOLD,
                     layout_copies=device.type == "cpu" and torch.backends.mkldnn.is_available(),
                     channel_block=onednn_channel_block())


def onednn_channel_block() -> int:
    """The channels oneDNN's blocked layouts round up to on this CPU: 16 where torch's kernels use
    AVX-512, 8 where they use AVX2 only (ops.base.Execution)."""
    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8

"""The machine a run measures: its environment lines for the report, and the device profile the
estimate and the share of peak use (matched from a GPU's name, or measured on the spot on a CPU)."""
from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..analysis.latency import LatencyProfile
from ..analysis.latency_file import looks_like_profile_file, read_profile
from ..analysis.roofline import CpuMeasurement, DeviceProfile, device_profile, profile_matching, profile_names
from ..build import resolve_dtype
from ..untrusted import one_line
from .peers import torchvision_version
from .settings import BenchSettings
from .timing import time_iterations


PEAK_RUNS = 10            # a peak is the best of this many runs: one quiet moment is enough on a busy machine
PEAK_RUN_BUDGET = 1.0     # seconds of runs at one size, after which fewer runs do
SLOW_RUN = 0.1            # seconds of one run beyond which a larger size is not tried


def best_seconds(run: Callable[[], Any], runs: int = PEAK_RUNS, budget: float | None = None) -> float:
    """The fastest of up to `runs` runs, after one to warm up, stopping early once `budget`
    seconds (PEAK_RUN_BUDGET when not given) have gone (one timed run at least)."""
    budget = PEAK_RUN_BUDGET if budget is None else budget
    run()
    best, spent = math.inf, 0.0
    for _ in range(runs):
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        best, spent = min(best, seconds), spent + seconds
        if spent > budget:
            break
    return best


def growing_peak(sizes: tuple[int, ...], work: Callable[[int], tuple[float, Callable[[], Any]]]) -> float:
    """The best FLOP/s of `work` (size -> its FLOPs and a run) over `sizes`, smallest first, up to
    the first size whose run takes over SLOW_RUN: a dtype the CPU has no instructions for (bf16
    without AVX-512 BF16) runs a 2048 x 2048 matmul for a minute, where AVX-512 takes 50 ms."""
    best = 0.0
    for size in sizes:
        flops, run = work(size)
        seconds = best_seconds(run)
        best = max(best, flops / seconds)
        if seconds > SLOW_RUN:
            break
    return best


@functools.cache
def measure_cpu_with_torch(dtypes: tuple[str, ...] = ("fp32",), matmul_size: int = 2048,
                           copy_bytes: int = 256 * 2**20) -> CpuMeasurement:
    """Peak FLOP/s per dtype and copy bandwidth of this CPU, with torch's own kernels and threads
    as the benchmark uses them, each the best of up to PEAK_RUNS runs; cached for the run. The
    peak is the better of a square matmul (up to `matmul_size`) and a 3x3 convolution (256 -> 256
    channels on 28x28, up to 8 images), counted at 2 FLOPs per multiply-add: on some CPUs torch's
    convolutions run well above its matmul. Sizes grow from small ones while a run stays short
    (growing_peak), so a dtype the CPU computes slowly costs seconds, not minutes."""
    flops = {}
    for name in dict.fromkeys(("fp32", *dtypes)):
        dtype = resolve_dtype(name)  # tf32 is fp32 storage, and plain fp32 on a CPU

        def matmul(size: int) -> tuple[float, Callable[[], Any]]:
            a = torch.randn(size, size).to(dtype)
            b = torch.randn(size, size).to(dtype)
            return 2 * size**3, lambda: torch.mm(a, b)

        def convolution(images: int) -> tuple[float, Callable[[], Any]]:
            conv = nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dtype)
            x = torch.randn(images, 256, 28, 28).to(dtype)
            return 2 * (images * 256 * 28 * 28) * 256 * 9, lambda: conv(x)

        matmul_sizes = tuple(sorted({min(size, matmul_size) for size in (256, 512, 1024, matmul_size)}))
        with torch.inference_mode():
            flops[name] = max(growing_peak(matmul_sizes, matmul), growing_peak((1, 8), convolution))
    source = torch.ones(copy_bytes // 4)
    target = torch.empty_like(source)
    bandwidth = 2 * copy_bytes / best_seconds(lambda: target.copy_(source))  # read + write
    return CpuMeasurement(flops, bandwidth, f"torch {torch.__version__}, {torch.get_num_threads()} threads")


MEMORY_PROBE_BYTES = 64 * 2**20    # twice the development machine's last-level cache: its copy runs from memory


class MemoryProbe:
    """The memory's speed now: a copy of MEMORY_PROBE_BYTES (or of twice the last-level cache,
    when larger) with torch's threads, read + written bytes over the median of three copies, in
    bytes/s. Built once (its two tensors stay), called as often as needed: 4 to 10 ms a call on
    the development machine, whose memory copies at about 45 or about 80 GB/s for minutes at a
    time (docs/benchmarks.md, "The memory's two speeds")."""

    def __init__(self) -> None:
        size = max(MEMORY_PROBE_BYTES, 2 * (last_level_cache_bytes() or 0))
        self.source = torch.ones(size // 4)
        self.target = torch.empty_like(self.source)
        self.target.copy_(self.source)      # every page touched before the first timing

    def __call__(self) -> float:
        times = sorted(time_iterations(lambda: self.target.copy_(self.source), torch.device("cpu"), 3))
        return 2 * self.source.numel() * self.source.element_size() / times[1]


def resolve_profile(name: str | None, settings: BenchSettings) -> tuple[DeviceProfile | None, str]:
    """(profile or None, a note on where it came from)."""
    measure_cpu = functools.partial(measure_cpu_with_torch, ("fp32", settings.dtype))
    if name and looks_like_profile_file(name):
        calibrated = read_profile(name)
        return calibrated.device_profile(), f"calibrated profile {name} (--profile), its measured roofs"
    if name:
        profile = device_profile(name, measure_cpu)
        return profile, f"device profile '{name}' (--profile)"
    if settings.device.type == "cpu":
        return device_profile("cpu", measure_cpu), "device profile 'cpu', measured on the spot"
    device_name = torch.cuda.get_device_name(settings.device)
    matched = profile_matching(device_name)
    if matched is None:
        return None, (f"no device profile matches '{device_name}': no estimate or share of peak "
                      f"(choose one with --profile: {', '.join(profile_names())})")
    return device_profile(matched), f"device profile '{matched}' (matches '{device_name}')"


def environment(device: torch.device) -> dict[str, str]:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision_version() or "not importable (no peer measured)",
            "threads": str(torch.get_num_threads())}
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
        info["cudnn"] = str(torch.backends.cudnn.version())
    else:
        info["device"] = cpu_name()
        info["cpu"] = cpu_identity()
    with contextlib.suppress(OSError, AttributeError):  # other work on the machine skews every figure
        info["load average at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} (CPU)"
    return platform.processor() or "CPU"


def cpu_identity() -> str:
    """Which CPU this is, as far as its kernels' speed goes: the vendor, family, model and stepping
    (/proc/cpuinfo) and the widest vector instructions torch's kernels use here. The model name
    alone does not tell two CPUs apart: the development machine, "AMD EPYC" both days, ran torch's
    fp32 matmul at 470 GFLOP/s with AVX-512 one day and at 150 to 180 with AVX2 the next."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():            # the first processor's lines are enough
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    if "cpu family" in fields:
        what = (f"{fields.get('vendor_id', 'unknown vendor')} family {fields['cpu family']} "
                f"model {fields.get('model', '?')} stepping {fields.get('stepping', '?')}")
    else:
        what = platform.processor() or platform.machine() or "unknown CPU"
    return f"{what}, {torch.backends.cpu.get_cpu_capability()}"


def calibrated_profile(name: str | None) -> LatencyProfile | None:
    """The calibrated latency profile `--profile` names (a file), or None for a named datasheet profile."""
    return read_profile(name) if name and looks_like_profile_file(name) else None


def prediction_mismatch(profile: LatencyProfile, settings: BenchSettings) -> str | None:
    """Why a calibrated profile's prediction does not apply to a run (None: it does). A profile
    is fitted to eager, contiguous inference in one dtype on one kind of device (and, on a CPU,
    one number of threads) on one CPU (cpu_identity, where the profile records it)."""
    threads = torch.get_num_threads()
    differences = []
    if settings.device.type != profile.device:
        differences.append(f"the device is {settings.device.type}, not {profile.device}")
    if settings.dtype != profile.dtype:
        differences.append(f"the dtype is {settings.dtype}, not {profile.dtype}")
    if settings.mode != "inference":
        differences.append("a training step is timed, not an inference batch")
    if settings.compile:
        differences.append("the model is compiled (the profile is eager)")
    if settings.channels_last:
        differences.append("channels_last (the profile is contiguous)")
    if profile.device == "cpu" and profile.threads is not None and threads != profile.threads:
        differences.append(f"torch runs {threads} threads, the profile {profile.threads}")
    calibrated_on, here = profile.machine.get("cpu"), cpu_identity()
    if profile.device == "cpu" == settings.device.type and calibrated_on and calibrated_on != here:
        differences.append(f"this CPU is {here}, the profile's {one_line(str(calibrated_on))} "
                           "(calibrate on this one)")
    return "; ".join(differences) or None


class OthersCpu:
    """How much of the machine other processes used while a block ran: the busy time of every CPU
    (/proc/stat: user, nice, system, irq, softirq, and steal, the time a hypervisor gave to other
    guests) less this process's own CPU time, over the wall time times the cores. 0 on a quiet
    machine; None where /proc/stat cannot be read. Unlike the load average, it does not count
    this process's own threads, nor what ran before the block.

        with OthersCpu() as others:
            measure()
        others.share     # e.g. 0.02: other work held 2% of the CPUs meanwhile
    """

    def __init__(self):
        self.share: float | None = None

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = handle.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def __enter__(self) -> OthersCpu:
        self._start = (time.monotonic(), self._busy_seconds(), self._own_seconds())
        return self

    def __exit__(self, *exc) -> None:
        wall0, busy0, own0 = self._start
        busy1 = self._busy_seconds()
        wall = time.monotonic() - wall0
        if busy0 is None or busy1 is None or wall <= 0:
            return
        others = (busy1 - busy0) - (self._own_seconds() - own0)
        self.share = max(others, 0.0) / (wall * (os.cpu_count() or 1))


def wait_for_quiet(threshold: float = 0.05, window: float = 3.0, give_up: float = 1800.0,
                   say=None) -> float | None:
    """Sleep until other processes use under `threshold` of the CPUs over a `window` of seconds
    (this process idle meanwhile); give up after `give_up` seconds. Returns the last share seen."""
    deadline = time.monotonic() + give_up
    while True:
        with OthersCpu() as others:
            time.sleep(window)
        if others.share is None or others.share < threshold or time.monotonic() > deadline:
            return others.share
        if say:
            say(f"others use {100 * others.share:.0f}% of the CPUs; waiting for a quiet machine")
        time.sleep(min(30.0, max(deadline - time.monotonic(), 0.0)))


def last_level_cache_bytes() -> int | None:
    """The largest data cache of CPU 0, as Linux's sysfs tells it (None where it does not)."""
    largest = None
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        digits = size[:-1] if size[-1:] in "KMG" else size
        if kind in ("Data", "Unified") and digits.isdigit():
            largest = max(largest or 0, int(digits) * scale)
    return largest

"""What a benchmark run found: one Measurement per model and setting, a BenchRow per model and
batch, the BenchReport of a run. Torch-free, so the renderer imports them as they are.

The records carry figures, never sentences: why a model has no timing is its status, and the
renderer words it from the row's figures (the memory needed and free).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..analysis.latency import LatencyPrediction
from ..analysis.roofline import DeviceProfile, ModelEstimate
from .stats import TimingStats, ratio_interval

if TYPE_CHECKING:  # settings.py imports torch
    from .settings import BenchSettings

# Measurement.status
OK = "ok"
DOES_NOT_FIT = "does not fit"        # the predicted peak memory exceeds the free memory: not run
OUT_OF_MEMORY = "out of memory"      # it ran out of memory anyway
NOT_COMPARABLE = "not comparable"    # torchvision's model has other parameters than the spec's
# CheckRow.regime: what a check case exercises
CONVOLUTIONS, IN_CACHE, BEYOND_CACHE = "convolutions", "in cache", "beyond cache"


@dataclass
class Measurement:
    """One model at one setting: its timing, or the status that says why there is none."""

    implementation: str                  # "ours" or "torchvision"
    status: str                          # OK, DOES_NOT_FIT, OUT_OF_MEMORY or NOT_COMPARABLE
    batch: int = 0
    timing: TimingStats | None = None
    model_flops: float = 0.0             # per batch (or training step)
    peak_flops: float | None = None      # the device profile's matmul peak for the dtype
    peak_memory_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK and self.timing is not None

    @property
    def images_per_second(self) -> float | None:
        return self.batch / self.timing.median if self.ok else None

    @property
    def achieved_flops(self) -> float | None:
        return self.model_flops / self.timing.median if self.ok else None

    @property
    def peak_share(self) -> float | None:
        return self.achieved_flops / self.peak_flops if self.ok and self.peak_flops else None


@dataclass
class LayerTiming:
    """--per-layer: one leaf's profiled forward time beside its estimate (None: not measured)."""

    path: str
    op: str
    estimate_seconds: float | None
    bound: str
    measured_seconds: float | None
    predicted_seconds: float | None = None   # with a calibrated profile


@dataclass
class BenchRow:
    spec: str
    model: str
    batch: int
    estimate: ModelEstimate | None
    memory_needed: int                   # bytes: the predicted peak (analysis/memory.py) on the device's backend
    free_bytes: int | None               # the device's free memory before the row ran (None: unknown)
    ours: Measurement
    torchvision: Measurement | None
    layers: list[LayerTiming] = field(default_factory=list)
    profiled_total_seconds: float | None = None   # the whole forward pass under the profiler
    prediction: LatencyPrediction | None = None   # with a calibrated profile (--profile FILE) that applies

    @property
    def ratio(self) -> float | None:
        """ours / torchvision in images/s (> 1: ours is faster)."""
        if self.torchvision is None or not (self.ours.ok and self.torchvision.ok):
            return None
        return self.ours.images_per_second / self.torchvision.images_per_second

    @functools.cached_property
    def ratio_interval(self) -> tuple[float, float] | None:
        """The 95% bootstrap interval of `ratio` (stats.ratio_interval); above 1 at its low end: ours
        is faster beyond the noise, below 1 at its high end: slower."""
        if self.ratio is None:
            return None
        return ratio_interval(self.ours.timing.samples, self.torchvision.timing.samples)

    @property
    def memory_measured_over_predicted(self) -> float | None:
        """Our model's measured peak memory over the predicted peak (None: not measured)."""
        if self.ours.peak_memory_bytes is None or not self.memory_needed:
            return None
        return self.ours.peak_memory_bytes / self.memory_needed

    @property
    def measured_over_estimate(self) -> float | None:
        """p50 over the calibrated prediction when there is one, else over the roofline estimate."""
        if self.prediction is not None:
            return self.ours.timing.median / self.prediction.seconds if self.ours.ok and self.prediction.seconds \
                else None
        return self.measured_over_roofline

    @property
    def measured_over_roofline(self) -> float | None:
        if self.estimate is None or not self.ours.ok or not self.estimate.seconds:
            return None
        return self.ours.timing.median / self.estimate.seconds


@dataclass
class BenchReport:
    settings: BenchSettings
    environment: dict[str, str]
    profile: DeviceProfile | None
    profile_note: str
    rows: list[BenchRow]
    load: MachineLoad | None = None
    prediction_note: str = ""        # a calibrated profile given: why its prediction does not apply, if it does not
    machine_check: list[CheckRow] | None = None   # a calibrated profile's cases timed after the rows (profile_check)


@dataclass(frozen=True)
class CheckRow:
    """One case of `calibrate --check` (bench/profile_check.py): timed now, and the profile's price."""

    what: str              # the case, in words
    regime: str            # CONVOLUTIONS, IN_CACHE or BEYOND_CACHE
    measured: float        # seconds a call now
    priced: float          # seconds the profile prices it at
    how: str               # how the profile priced it (FITTED, NEAREST, FALLBACK)

    @property
    def ratio(self) -> float:
        return self.measured / self.priced if self.priced > 0 else math.inf


@dataclass
class MachineLoad:
    """The machine's 1-minute load average, sampled before the run and after each row: other work
    competing for the cores skews every figure (a run at load 3.3 on 2 cores had p90 = 2.4 x p50)."""

    cores: int
    own_threads: int                 # what the run itself keeps busy: torch's threads on a CPU, one for CUDA
    samples: list[float] = field(default_factory=list)

    @property
    def others(self) -> float:
        """The most load that was not the run's own."""
        return max(self.samples, default=0.0) - self.own_threads

    @property
    def busy(self) -> bool:
        """Other work held more than half a core at some point of the run."""
        return self.others > 0.5

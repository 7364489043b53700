"""Statistics of timed iterations: percentiles, TimingStats, and the bootstrap interval of a ratio.

Torch-free at import, as the records that use it: the renderer reads them without torch.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

RATIO_CONFIDENCE = 0.95
RATIO_RESAMPLES = 2000


def percentile(samples: list[float] | tuple[float, ...], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class TimingStats:
    """Per-iteration times in seconds, in the order they were taken."""

    samples: tuple[float, ...]

    @property
    def iterations(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def spread(self) -> float:
        """p90 / p50 - 1: how much slower the slow tenth of iterations is than the typical one."""
        return self.p90 / self.median - 1


def ratio_interval(ours: tuple[float, ...], theirs: tuple[float, ...], confidence: float = RATIO_CONFIDENCE,
                   resamples: int = RATIO_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """A bootstrap confidence interval for ours / theirs in images/s, i.e. median(theirs) / median(ours)
    of the per-iteration times at the same batch size.

    Percentile bootstrap: both sample sets are resampled with replacement `resamples` times and
    the ratio of the resampled medians taken; the interval is the middle `confidence` share of
    those ratios. Fixed seed, so a report is reproducible from its samples. It treats the
    iterations as independent; the interleaved blocks keep a slow drift of the machine off the
    ratio, not out of the spread, so on a noisy machine the interval is wide, as it should be."""
    # torch's generator fixes the published intervals; imported here, when a ratio is asked for,
    # so that this module and the records stay importable without torch
    import torch

    if not ours or not theirs:
        raise ValueError("no samples")
    generator = torch.Generator().manual_seed(seed)

    def resampled_medians(samples: tuple[float, ...]) -> torch.Tensor:
        values = torch.tensor(samples, dtype=torch.float64)
        picks = torch.randint(len(samples), (resamples, len(samples)), generator=generator)
        return values[picks].quantile(0.5, dim=1)     # interpolated, as statistics.median

    ratios = resampled_medians(theirs) / resampled_medians(ours)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(ratios, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high

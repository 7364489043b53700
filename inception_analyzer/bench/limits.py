"""The bench settings' defaults and bounds, its output formats and its error type. Torch-free:
the command's parser reads them at start-up (`analyze` starts fast and runs where torch is absent)."""
from __future__ import annotations

from ..errors import AnalyzerError

MIN_ITERATIONS = 5
MAX_ITERATIONS = 1000
DEFAULT_WARMUP = 3
DEFAULT_MIN_TIME = 2.0          # seconds of timed iterations per measurement
BENCH_FORMATS = ("table", "markdown", "csv", "json")


class BenchError(AnalyzerError):
    """A benchmark that cannot run as asked (printed as one line, exit 2)."""

    kind = "bench error"

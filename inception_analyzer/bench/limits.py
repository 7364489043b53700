"""The bench settings' defaults and bounds, its output formats and its error type. Torch-free:
the command's parser reads them at start-up (`analyze` starts fast and runs where torch is absent)."""
from __future__ import annotations

from ..errors import AnalyzerError

MIN_ITERATIONS = 5
MAX_ITERATIONS = 1000
DEFAULT_WARMUP = 3
DEFAULT_MIN_TIME = 2.0          # seconds of timed iterations per measurement
MAX_MIN_TIME = 3600.0           # an hour of timed iterations per measurement is already a lot
MAX_THREADS = 1024              # CPU threads torch may be asked for
BENCH_FORMATS = ("table", "markdown", "csv", "json")


class BenchError(AnalyzerError):
    """A benchmark that cannot run as asked (printed as one line, exit 2)."""

    kind = "bench error"

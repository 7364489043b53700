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
# calibrate's timing budget for the full grid unless one is asked for: with the fits and the
# in-model costs after it (about 10 s on a 2-core Zen 3), a calibration within three minutes. On
# that machine a quiet spell times the whole grid in 150 to 195 s; a busier one is cut (the cases'
# order keeps a cut run balanced) rather than made to wait, and the profile counts the cases cut
TIMING_BUDGET = 160.0
BENCH_FORMATS = ("table", "markdown", "csv", "json")


class BenchError(AnalyzerError):
    """A benchmark that cannot run as asked (printed as one line, exit 2)."""

    kind = "bench error"

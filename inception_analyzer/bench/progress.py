"""The status line a run keeps on stderr while it measures."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """One status line on stderr, rewritten in place; silent unless stderr is a terminal."""

    def __init__(self, runs: int, enabled: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.runs, self.run, self.label, self._last = runs, 0, "", 0.0

    def start(self, label: str) -> None:
        self.run += 1
        self.label = label
        self._write(f"{label}: warm-up")

    def iteration(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # a terminal need not redraw faster than that
            return
        self._last = now
        filled = round(20 * done / total)
        self._write(f"{self.label}: [{'#' * filled}{'.' * (20 - filled)}] {done}/{total}")

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\033[K[{self.run}/{self.runs}] {text}")
            self.stream.flush()

"""The status line a run keeps on stderr while it measures: which row of how many (model, batch,
the setting), how far its timed iterations are, and when the whole run should end."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """One status line on stderr, rewritten in place; silent unless stderr is a terminal."""

    def __init__(self, runs: int, setting: str = "", enabled: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.runs, self.run, self.setting, self.label, self._last = runs, 0, setting, "", 0.0
        self._started = time.monotonic()

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

    def eta(self) -> str:
        """The rest of the run at the pace of the rows done so far ('' before the first is done)."""
        done = self.run - 1
        if done < 1:
            return ""
        seconds = (time.monotonic() - self._started) / done * (self.runs - done)
        return f", about {int(seconds // 60)}:{int(seconds % 60):02d} left"

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _write(self, text: str) -> None:
        if self.enabled:
            setting = f" ({self.setting}{self.eta()})" if self.setting or self.eta() else ""
            self.stream.write(f"\r\033[K[{self.run}/{self.runs}]{setting} {text}")
            self.stream.flush()

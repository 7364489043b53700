"""Errors of our own, each carrying where in the spec it happened.

The CLI turns every `AnalyzerError` into one line on stderr and exit code 2; nothing else
in the package prints or exits.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A position in a spec file; line and column are 1-based as editors show them."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


MAX_LINE = 1000  # characters of one line of an error message


class AnalyzerError(Exception):
    """Base of every error the user caused; carries location and node path when known."""

    kind = "error"

    def __init__(self, message: str, location: SourceLocation | None = None,
                 node_path: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.node_path = node_path
        self.hint = hint

    def located(self, location: SourceLocation | None = None, node_path: str | None = None) -> "AnalyzerError":
        """Fill in location and node path where they are still missing, keeping the innermost."""
        if self.location is None and location is not None:
            self.location = location
        if self.node_path is None and node_path:
            self.node_path = node_path
        return self

    def __str__(self) -> str:
        text = f"{self.location}: " if self.location else ""
        text += f"{self.kind}: {self.message}"
        if self.node_path:
            text += f" (at {self.node_path})"
        if self.hint:
            text += f"; {self.hint}"
        # a value from the input can be a megabyte long: no line of a message is
        return "\n".join(line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]}... ({len(line):,} characters)"
                         for line in text.split("\n"))


class SpecSyntaxError(AnalyzerError):
    kind = "YAML syntax error"


class SpecError(AnalyzerError):
    kind = "spec error"


class ShapeError(AnalyzerError):
    kind = "shape error"


class OverrideError(AnalyzerError):
    kind = "override error"


def did_you_mean(word: str, choices) -> str | None:
    """A 'did you mean' hint for an unknown name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def shown(value, limit: int = 60) -> str:
    """A value from a spec or a command line as a message shows it: its repr (control characters
    escaped), abridged past `limit` characters; an integer too long to print says how long it is
    (Python refuses to print 4,300 digits or more)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        if value.bit_length() < 14_000:  # within what Python prints (4,300 digits)
            text = f"a number of {len(str(abs(value))):,} digits"
        else:
            text = f"a number of about {math.floor(value.bit_length() * math.log10(2)) + 1:,} digits"
    elif isinstance(value, (list, tuple)):
        items = [shown(item, limit) for item in value[:8]] + (["..."] if len(value) > 8 else [])
        text = "[" + ", ".join(items) + "]"
    elif isinstance(value, dict):
        items = [f"{shown(k, limit)}: {shown(v, limit)}" for k, v in list(value.items())[:8]]
        text = "{" + ", ".join(items + (["..."] if len(value) > 8 else [])) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"

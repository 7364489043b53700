"""Errors of our own, each carrying where in the spec it happened.

The CLI turns every `AnalyzerError` into one line on stderr and exit code 2; nothing else
in the package prints or exits.
"""
from __future__ import annotations

import difflib
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
        return text


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

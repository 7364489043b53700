"""What the design review reports: findings and their severities, in one place.

A severity is one of SEVERITIES, least serious first; everything that orders, counts, filters or
names severities asks this module, so a new level (or a new order) is one change here.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

SEVERITIES = ("info", "warning", "error")          # least serious first
MOST_SERIOUS_FIRST = tuple(reversed(SEVERITIES))   # the order readers want
_PLURALS = {"error": "errors", "warning": "warnings", "info": "info"}


@dataclass
class Finding:
    check: str                   # e.g. "P1.grid_reduction"
    principle: str               # "P1".."P4" or a paper section: "§3.1", "§3.2", "§4", "§5"
    severity: str                # one of SEVERITIES
    path: str                    # the layer or block it concerns
    message: str                 # readable without the paper at hand
    figures: dict = field(default_factory=dict)
    suggestion: str | None = None
    effect: dict | None = None   # computed effect of the suggestion: params, macs (deltas), rf


def severity_rank(severity: str) -> int:
    """0 for the most serious severity, growing towards info; an unknown one sorts last."""
    return MOST_SERIOUS_FIRST.index(severity) if severity in MOST_SERIOUS_FIRST else len(MOST_SERIOUS_FIRST)


def most_serious_first(findings: Iterable[Finding]) -> list[Finding]:
    """The findings ordered by severity, most serious first, keeping their order within a level."""
    return sorted(findings, key=lambda f: severity_rank(f.severity))


def worst_severity(findings: Iterable[Finding]) -> str | None:
    ranked = most_serious_first(findings)
    return ranked[0].severity if ranked else None


def severity_at_least(findings: Iterable[Finding], level: str) -> list[Finding]:
    """The findings of `level` or more serious."""
    return [f for f in findings if severity_rank(f.severity) <= severity_rank(level)]


def counts_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each severity, most serious first (zero counts included)."""
    counts = Counter(f.severity for f in findings)
    return {severity: counts[severity] for severity in MOST_SERIOUS_FIRST}


def counts_text(counts: dict[str, int]) -> str:
    """{'error': 0, 'warning': 2, 'info': 18} -> '20 (2 warnings, 18 info)'; '0' when empty."""
    parts = [f"{n} {_PLURALS.get(severity, severity) if n > 1 else severity}" for severity, n in counts.items() if n]
    return f"{sum(counts.values())} ({', '.join(parts)})" if parts else "0"


def summary_counts(findings: Iterable[Finding]) -> str:
    """'2 warnings, 18 infos' (the review's one-line summary), or 'no findings'."""
    counts = counts_by_severity(findings)
    parts = [f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items() if n]
    return ", ".join(parts) if parts else "no findings"

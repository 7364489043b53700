"""Every record the diagram, compare and report commands draw on, gathered for one spec.

The renderers take these records and never compute a figure themselves; `analyze` runs the
analyzers (cost, receptive fields, design review) and this keeps the graph and the spec's path
beside what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import analyze, load_graph
from ..analysis import principles
from ..analysis.cost import CostReport
from ..graph import Graph

SEVERITIES = tuple(reversed(principles.SEVERITIES))  # most serious first, the order readers want
PLURALS = {"error": "errors", "warning": "warnings", "info": "info"}


@dataclass
class ReviewedModel:
    spec: str                  # the spec file as given on the command line (or resolved from a name)
    graph: Graph
    cost: CostReport           # with `receptive_fields` and `findings` filled in

    @property
    def name(self) -> str:
        return self.cost.model

    @property
    def findings(self) -> list:
        return self.cost.findings


def review_spec(spec: str | Path) -> ReviewedModel:
    """Load a spec and run every analyzer on it: cost, receptive fields, design review."""
    graph = load_graph(spec)
    return ReviewedModel(str(spec), graph, analyze(graph))


def findings_by_severity(findings) -> dict[str, int]:
    """How many findings of each severity, most serious first (zero counts included)."""
    return {severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITIES}


def counts_text(counts: dict[str, int]) -> str:
    """{'error': 0, 'warning': 2, 'info': 18} -> '20 (2 warnings, 18 info)'; '0' when empty."""
    parts = [f"{n} {PLURALS.get(severity, severity) if n > 1 else severity}" for severity, n in counts.items() if n]
    return f"{sum(counts.values())} ({', '.join(parts)})" if parts else "0"

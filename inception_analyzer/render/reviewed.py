"""Every record the diagram, compare and report commands draw on, gathered for one spec.

The renderers take these records and never compute a figure themselves; this is the one place
that runs the analyzers for them (cost with receptive fields, then the design review).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import analyze, load_graph
from ..analysis.cost import CostReport
from ..graph import Graph

if TYPE_CHECKING:  # the review's record type, for annotations only
    from ..analysis.principles import Finding

SEVERITIES = ("error", "warning", "info")  # most serious first


@dataclass
class ReviewedModel:
    spec: str                  # the spec file as given on the command line
    graph: Graph
    cost: CostReport           # with `receptive_fields` filled in
    findings: list["Finding"]  # the design review, in the order the review gives them

    @property
    def name(self) -> str:
        return self.cost.model


def review_spec(spec: str | Path) -> ReviewedModel:
    """Load a spec and run every analyzer on it: cost, receptive fields, design review."""
    from ..analysis.principles import review

    graph = load_graph(spec)
    cost = analyze(graph)
    return ReviewedModel(str(spec), graph, cost, list(review(graph, cost)))


def findings_by_severity(findings) -> dict[str, int]:
    """How many findings of each severity, most serious first (zero counts included)."""
    return {severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITIES}

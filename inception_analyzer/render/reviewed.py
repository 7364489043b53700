"""Every record the diagram, compare and report commands draw on, gathered for one spec.

The renderers take these records and never compute a figure themselves; `analyze` runs the
analyzers (cost, receptive fields, design review) and this keeps the graph and the spec's path
beside what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import analyze, load_graph
from ..analysis.cost import CostReport
from ..graph import Graph



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

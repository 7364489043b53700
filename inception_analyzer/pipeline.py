"""One request -> one analysis, computed once: what every command, renderer, the builder and
bench read.

A `Request` names what to analyse (a spec file, a bundled spec's name, a loaded Spec, or an
already expanded Graph, e.g. an imported model) with the spec arguments to override and the
input size. `analyze` expands it into the graph IR and runs the pure analyzers on it once: the
cost records, the receptive fields and the design review's findings. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import catalog
from .catalog import CatalogError
from .analysis.cost import CostReport, analyze_cost
from .analysis.findings import Finding
from .analysis.principles import review
from .analysis.receptive_field import ReceptiveField, receptive_fields
from .analysis.latency import LatencyPrediction, LatencyProfile, predict
from .analysis.roofline import DeviceProfile, ModelEstimate, estimate
from .errors import OverrideError
from .graph import Graph, build_graph
from .spec import Spec, load_spec


@dataclass(frozen=True)
class Request:
    """What to analyse: `source` with `overrides` of its spec arguments at `input_size`."""

    source: str | Path | Spec | Graph
    overrides: Mapping[str, Any] = field(default_factory=dict)
    input_size: int | None = None

    @property
    def spec_file(self) -> str | None:
        """The spec file this request reads (a bundled spec's name resolved), or None for a
        loaded Spec or Graph. Commands protect it from being overwritten by their output."""
        if isinstance(self.source, (Spec, Graph)):
            return None
        return catalog.resolve(self.source)


def load_graph(request: Request) -> Graph:
    """The request's spec expanded into the shape-inferred graph IR."""
    source = request.source
    if isinstance(source, Graph):
        if request.overrides or request.input_size is not None:
            raise OverrideError("spec arguments and the input size apply to a spec, not to an already "
                                "expanded graph (an imported model: import it again at that size)")
        return source
    spec = source if isinstance(source, Spec) else load_spec(request.spec_file)
    return build_graph(spec, dict(request.overrides), request.input_size)


@dataclass
class ModelAnalysis:
    """Everything the analyzers say about one model; renderers, build and bench read it."""

    request: Request
    graph: Graph
    cost: CostReport
    receptive_fields: dict[str, ReceptiveField]
    findings: list[Finding]

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def spec(self) -> str:
        """Where the model came from, as a reader wants it: the spec file, or the graph's own file."""
        return self.request.spec_file or self.graph.spec.file

    # the cost report's records, for readers that want the figures without `.cost`
    @property
    def model(self) -> str:
        return self.cost.model

    @property
    def input(self) -> list[int]:
        return self.cost.input

    @property
    def arguments(self) -> dict:
        return self.cost.arguments

    @property
    def metadata(self) -> dict:
        return self.cost.metadata

    @property
    def layers(self):
        return self.cost.layers

    @property
    def totals(self):
        return self.cost.totals

    @property
    def blocks(self):
        return self.cost.blocks

    @property
    def stages(self):
        return self.cost.stages

    def estimate(self, profile: DeviceProfile, dtype: str = "fp32", batch: int = 1, mode: str = "inference",
                 optimizer_states: int = 1) -> ModelEstimate:
        """The roofline estimate of one batch (or training step) on a device profile."""
        return estimate(self.cost, profile, dtype, batch, mode, optimizer_states)

    def predict(self, profile: LatencyProfile, batch: int = 1, dtype: str | None = None) -> LatencyPrediction:
        """The calibrated latency of one inference batch on a device (analysis/latency.py)."""
        return predict(self.graph, self.cost, profile, batch, dtype)


def analyze(request: Request) -> ModelAnalysis:
    """Expand the request and run every analyzer once: cost, receptive fields, design review."""
    graph = load_graph(request)
    cost = analyze_cost(graph)
    fields = receptive_fields(graph)
    return ModelAnalysis(request, graph, cost, fields, review(graph, cost, fields))


def analyze_with_baseline(sources: list[str], baseline: str) -> tuple[list[ModelAnalysis], ModelAnalysis]:
    """Analyse every source once for a comparison (a spec given twice, by name and by path alike,
    is one model). The baseline is the compared model of that name or spec file, or else a spec
    (file or bundled name) analysed on its own."""
    models: list[ModelAnalysis] = []
    seen: set[Path] = set()
    for source in sources:
        file = Path(catalog.resolve(source)).resolve()
        if file not in seen:
            seen.add(file)
            models.append(analyze(Request(source)))
    for model in models:
        if model.name == baseline or _same_file(model, baseline):
            return models, model
    return models, analyze(Request(baseline))


def _same_file(model: ModelAnalysis, source: str) -> bool:
    if model.request.spec_file is None:
        return False
    try:
        return Path(model.request.spec_file).resolve() == Path(catalog.resolve(source)).resolve()
    except CatalogError:
        return False  # not a spec the catalog knows: the name alone decides

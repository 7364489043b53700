"""One request -> one analysis, computed once: what every command, renderer, the builder and
bench read.

A `Request` names what to analyse (a spec file, a bundled spec's name, a loaded Spec, or an
already expanded Graph, e.g. an imported model) with the spec arguments to override and the
input size. `analyze` expands it into the graph IR and runs the pure analyzers on it once: the
cost records, the receptive fields and the design review's findings. What depends on a run's
settings (the training FLOPs, the memory of a batch, the roofline on a device) is computed when
first asked for, once per settings. Torch-free.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import catalog
from .catalog import CatalogError
from .analysis.cost import CostReport, analyze_cost
from .analysis.findings import Finding
from .analysis.memory import MemoryReport, MemorySettings, analyze_memory, largest_batch
from .analysis.principles import review
from .analysis.receptive_field import ReceptiveField, receptive_fields
from .analysis.latency import LatencyPrediction, LatencyProfile, predict
from .analysis.roofline import DeviceProfile, ModelEstimate, check_settings, estimate
from .analysis.training import DEFAULT_OPTIMIZER, OPTIMIZERS, TrainingFlops, training_flops
from .errors import OverrideError
from .graph import Graph, MainLayer, build_graph, main_layers
from .spec import Spec, load_spec
from .transform import scale_widths


@dataclass(frozen=True)
class Request:
    """What to analyse: `source` with `overrides` of its spec arguments at `input_size`, every
    channel count scaled by `width` (rounded to a multiple of `width_round`; transform.py)."""

    source: str | Path | Spec | Graph
    overrides: Mapping[str, Any] = field(default_factory=dict)
    input_size: int | None = None
    width: float | None = None
    width_round: int = 8

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
        graph = source
    else:
        spec = source if isinstance(source, Spec) else load_spec(request.spec_file)
        graph = build_graph(spec, dict(request.overrides), request.input_size)
    return graph if request.width is None else scale_widths(graph, request.width, request.width_round)


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
    def width(self) -> float | None:
        """The width multiplier the request applied (None: the spec's widths as written)."""
        return self.graph.width

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

    @functools.cached_property
    def training(self) -> TrainingFlops:
        """FLOPs of a training step per image: forward, backward to the inputs and to the weights."""
        return training_flops(self.graph)

    def memory(self, settings: MemorySettings | None = None) -> MemoryReport:
        """The memory of one run (analysis/memory.py), computed once per settings."""
        settings = settings or MemorySettings()
        cache = self.__dict__.setdefault("_memory", {})
        if settings not in cache:
            cache[settings] = analyze_memory(self.graph, settings)
        return cache[settings]

    def largest_batch(self, settings: MemorySettings, capacity_bytes: int) -> int:
        """The largest batch of these settings whose peak fits in `capacity_bytes` (0: none)."""
        return largest_batch(self.graph, settings, capacity_bytes)

    def estimate(self, profile: DeviceProfile, dtype: str = "fp32", batch: int = 1, mode: str = "inference",
                 optimizer: str = DEFAULT_OPTIMIZER) -> ModelEstimate:
        """The roofline estimate of one batch (or training step) on a device profile, with the
        memory it needs on that device's backend and the largest batch its memory holds."""
        check_settings(dtype, batch, mode)
        settings = MemorySettings(batch=batch, dtype=dtype, mode=mode, backend=profile.backend, optimizer=optimizer)
        memory = self.memory(settings).estimate
        most = (self.largest_batch(dataclasses.replace(settings, batch=1), profile.memory_bytes)
                if profile.memory_bytes else None)
        return estimate(self.cost, profile, dtype, batch, mode, OPTIMIZERS[optimizer].states, memory, most)

    @functools.cached_property
    def main_path(self) -> list[MainLayer]:
        """The graph's main-path layers (graph.main_layers), worked out once for the model's every
        prediction (a sweep's, bench's at each batch): worked out anew each time, they took
        Inception-ResNet-v2's prediction at batch 32 from 13.80 to 17.20 ms on the development
        machine (the fastest of five each)."""
        return main_layers(self.graph)

    def predict(self, profile: LatencyProfile, batch: int = 1, dtype: str | None = None) -> LatencyPrediction:
        """The calibrated latency of one inference batch on a device (analysis/latency.py)."""
        return predict(self.graph, self.cost, profile, batch, dtype, self.main_path)


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

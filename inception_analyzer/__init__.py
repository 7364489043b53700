"""inception-analyzer: CNN architectures as YAML specs -> exact costs, checks and pictures.

The analysis path (load_spec, load_graph, analyze) never imports torch; `build_model` does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import pipeline
from .analysis.cost import CostReport
from .analysis.findings import Finding
from .analysis.memory import MemorySettings
from .analysis.receptive_field import ReceptiveField
from .errors import AnalyzerError
from .graph import Graph
from .pipeline import ModelAnalysis, Request
from .spec import Spec, load_spec, load_spec_text
from .version import __version__


def load_graph(spec: str | Path | Spec | Graph, overrides: dict[str, Any] | None = None,
               input_size: int | None = None) -> Graph:
    """A spec (a file, a bundled spec's name, or loaded) expanded into the shape-inferred graph IR."""
    return pipeline.load_graph(Request(spec, overrides or {}, input_size))


def analyze(spec: str | Path | Spec | Graph, overrides: dict[str, Any] | None = None,
            input_size: int | None = None) -> ModelAnalysis:
    """Per-layer and total cost of a spec (params, MACs, other FLOPs, activations) with the
    receptive field of every layer and the design review's findings."""
    return pipeline.analyze(Request(spec, overrides or {}, input_size))


__all__ = ["AnalyzerError", "CostReport", "Finding", "Graph", "MemorySettings", "ModelAnalysis", "ReceptiveField",
           "Request", "Spec",
           "analyze", "build_model", "from_module", "load_graph", "load_spec", "load_spec_text", "__version__"]


def __getattr__(name: str):
    # build_model needs torch: import it only when asked for, so the analysis path stays torch-free
    if name in ("build_model", "SpecNetwork", "SpecOutputs"):
        from . import build
        return getattr(build, name)
    if name == "from_module":  # torch.fx import, likewise
        from .importer import from_module
        return from_module
    raise AttributeError(f"module 'inception_analyzer' has no attribute '{name}'")

"""One variant of a spec -> its figures (what `compare` shows for a model, and the peak memory and
predicted latency), or the located one-line reason it is not a network at all."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..analysis.cost import last_feature_map
from ..analysis.latency import LatencyProfile
from ..analysis.findings import counts_by_severity
from ..errors import AnalyzerError
from ..pipeline import Request, analyze
from ..spec import Spec
from .space import Variant


@dataclass(frozen=True)
class Prediction:
    """What a sweep predicts latency with: a calibrated device profile and the batch it is asked for
    (plain data, so a worker process or a cluster task can carry it)."""

    profile: LatencyProfile
    batch: int = 1


@dataclass
class VariantResult:
    index: int                        # the variant's place in the sweep (results keep this order)
    variant: Variant
    params: int = 0
    macs: int = 0
    activations: int = 0
    peak_memory_bytes: int = 0        # an inference pass, batch 1, fp32 (analysis/memory.py)
    receptive_field: int | None = None  # of the last feature map, largest path, px (the larger axis)
    findings: dict[str, int] = field(default_factory=dict)   # count per severity, most serious first
    latency_seconds: float | None = None  # predicted for one batch (--batch) on the --profile device
    partial: bool = False             # some op not modelled: MACs are a lower bound
    error: str | None = None          # why the variant is invalid (one located line)

    @property
    def ok(self) -> bool:
        return self.error is None


def evaluate(spec: Spec, index: int, variant: Variant, multiple: int = 8,
             prediction: Prediction | None = None) -> VariantResult:
    """The variant analysed; an error the variant causes (a grid that collapses, widths that no
    longer divide the groups) is its result, never an exception."""
    result = VariantResult(index, variant)
    try:
        analysis = analyze(Request(spec, dict(variant.arguments), variant.input_size, variant.width, multiple))
        totals = analysis.totals
        at = last_feature_map(analysis.cost)
        field_ = analysis.receptive_fields.get(at) if at else None
        result.params, result.macs, result.activations = totals.params, totals.macs, totals.activations
        result.peak_memory_bytes = analysis.memory().peak_bytes
        result.receptive_field = max(field_.size) if field_ else None
        result.findings = counts_by_severity(analysis.findings)
        result.partial = totals.status == "partial"
        if prediction is not None:
            result.latency_seconds = analysis.predict(prediction.profile, prediction.batch).seconds
    except AnalyzerError as err:
        result.error = str(err).split("\n")[0]
    return result

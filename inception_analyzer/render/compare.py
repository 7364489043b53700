"""Several models side by side: one row each, with ratios against a baseline model.

Every figure comes from a model's records (cost totals, the receptive field of its last feature
map, the review's findings) or its spec's metadata (published accuracy with its source); the only
arithmetic here is the ratio of a figure to the baseline's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


from ..analysis.cost import last_feature_map
from ..analysis.findings import MOST_SERIOUS_FIRST, counts_by_severity, counts_text
from ..numbers import human, shape_text
from ..pipeline import ModelAnalysis
from ..untrusted import markdown_text
from . import html as html_doc
from .text import csv_text, json_text, tabulated

FORMATS = ("table", "markdown", "csv", "json", "html")
RATIO_FIGURES = ("params", "macs", "activations")
JSON_SCHEMA_VERSION = 1
CONVENTIONS = {
    "params": "learnable parameters, aux heads included (docs/conventions.md)",
    "macs": "multiply-accumulates of conv and linear layers per image, inference path",
    "activations": "output elements of every inference op per image",
    "depth": "conv + linear layers on the longest inference path",
    "receptive_field": "receptive field [h, w] in input pixels of the last feature map (largest path)",
    "published": "the spec's first single-crop published result (its metadata), with its source",
    "ratios": "figure / the baseline's figure",
}


@dataclass
class Published:
    top1: float | None
    top5: float | None
    source: str
    kind: str = "paper"          # "paper": the paper's own network; "weights": released weights


@dataclass
class ComparisonRow:
    model: str
    spec: str
    input: list[int]                        # [C, H, W]
    params: int
    macs: int
    activations: int
    depth: int
    receptive_field: list[int] | None       # [h, w] of the last feature map
    receptive_field_at: str | None          # that feature map's layer
    published: Published | None
    findings: dict[str, int]                # count per severity, most serious first
    ratios: dict[str, float]                # figure / baseline's figure
    baseline: bool
    partial: bool = False                   # some ops not modelled: macs is a lower bound


def primary_published(metadata: dict) -> Published | None:
    """The first single-crop result the spec lists (specs list their main figure first)."""
    entries = [e for e in metadata.get("published", []) if isinstance(e, dict)]
    single = [e for e in entries if e.get("crops", 1) == 1] or entries
    if not single:
        return None
    entry = single[0]
    return Published(entry.get("top1"), entry.get("top5"), str(entry.get("source", "")), entry.get("kind", "paper"))


def comparison_rows(models: list[ModelAnalysis], baseline: ModelAnalysis) -> list[ComparisonRow]:
    """One row per model, the baseline among them or appended last."""
    if all(m is not baseline for m in models):
        models = [*models, baseline]
    base = baseline.cost.totals
    rows = []
    for model in models:
        t = model.cost.totals
        at = last_feature_map(model.cost)
        field = model.receptive_fields.get(at) if at else None
        rows.append(ComparisonRow(
            model=model.name, spec=model.spec, input=model.cost.input, params=t.params, macs=t.macs,
            partial=t.status == "partial",
            activations=t.activations, depth=t.depth, receptive_field=list(field.size) if field else None,
            receptive_field_at=at if field else None, published=primary_published(model.cost.metadata),
            findings=counts_by_severity(model.findings),
            ratios={name: getattr(t, name) / getattr(base, name) if getattr(base, name) else float("nan")
                    for name in RATIO_FIGURES},
            baseline=model is baseline))
    return rows


# ----------------------------------------------------------------------------- text
def _ratio(value: float) -> str:
    return f"{value:#.3g}x"


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def _field_text(row: ComparisonRow) -> str:
    if row.receptive_field is None:
        return "-"
    h, w = row.receptive_field
    return str(h) if h == w else f"{h}x{w}"


def _sources(rows: list[ComparisonRow]) -> list[str]:
    """The distinct sources of the published figures, numbered in order of appearance."""
    sources: list[str] = []
    for row in rows:
        if row.published and row.published.source and row.published.source not in sources:
            sources.append(row.published.source)
    return sources


HEADERS = ["model", "input", "params", "MACs", "activations", "depth", "RF (px)", "top-1", "top-5", "source",
           "findings", "params ratio", "MACs ratio", "act. ratio"]
NUMERIC = [False, False, True, True, True, True, True, True, True, False, False, True, True, True]


def table_rows(rows: list[ComparisonRow]) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, text rows and the numbered source notes the rows refer to."""
    sources = _sources(rows)
    text_rows = []
    for row in rows:
        published = row.published or Published(None, None, "")
        source = f"[{sources.index(published.source) + 1}]" if published.source else "-"
        text_rows.append([
            row.model + (" (baseline)" if row.baseline else ""), shape_text(row.input), human(row.params),
            (">=" if row.partial else "") + human(row.macs), human(row.activations), str(row.depth), _field_text(row), _accuracy(published.top1),
            _accuracy(published.top5), source, counts_text(row.findings),
            *(_ratio(row.ratios[name]) for name in RATIO_FIGURES)])
    notes = [f"[{i}] {source}" for i, source in enumerate(sources, 1)]
    return HEADERS, text_rows, notes


LEGEND = ("params, MACs (multiply-accumulates, conv + linear, inference) and activations (output elements) "
          "per image; depth: conv + linear layers on the longest path; RF: receptive field of the last "
          "feature map in input pixels; top-1/top-5: the spec's first single-crop published result; "
          "ratios: against the baseline.")


def render_text(rows: list[ComparisonRow], tablefmt: str = "simple") -> str:
    headers, text_rows, notes = table_rows(rows)
    align = ["right" if n else "left" for n in NUMERIC]
    body = tabulated(text_rows, headers, tablefmt=tablefmt, colalign=align)
    if tablefmt == "github":
        notes = [f"- {markdown_text(note)}" for note in notes]  # a Markdown list, not one run-on paragraph
    return body + "\n\n" + LEGEND + "\n\n" + "\n".join(notes) + "\n"


def render_csv(rows: list[ComparisonRow]) -> str:
    fields = ["model", "spec", "input", "params", "macs", "activations", "depth", "rf_h", "rf_w", "rf_at", "top1",
              "top5", "published_source", *(f"findings_{s}" for s in MOST_SERIOUS_FIRST),
              *(f"{name}_ratio" for name in RATIO_FIGURES), "baseline", "published_kind"]
    return csv_text(fields, (_csv_row(row) for row in rows))


def _csv_row(row: ComparisonRow) -> list:
    published = row.published or Published(None, None, "")
    field = row.receptive_field or ["", ""]
    return [row.model, row.spec, "x".join(map(str, row.input)), row.params, row.macs, row.activations, row.depth,
            *field, row.receptive_field_at or "", _blank(published.top1), _blank(published.top5), published.source,
            *(row.findings[s] for s in MOST_SERIOUS_FIRST), *(f"{row.ratios[name]:.6g}" for name in RATIO_FIGURES),
            str(row.baseline).lower(), published.kind if row.published else ""]


def _blank(value) -> str:
    return "" if value is None else f"{value:g}"


def comparison_dict(rows: list[ComparisonRow]) -> dict:
    baseline = next(row.model for row in rows if row.baseline)
    return {"schema_version": JSON_SCHEMA_VERSION, "baseline": baseline, "conventions": CONVENTIONS,
            "models": [asdict(row) for row in rows]}


def comparison_table_html(rows: list[ComparisonRow]) -> str:
    """The comparison as an HTML table with its legend and source notes (a page fragment)."""
    headers, text_rows, notes = table_rows(rows)
    classes = ["baseline" if row.baseline else "" for row in rows]
    notes_html = "".join(f"<li>{html_doc.escape(note)}</li>" for note in notes)
    return (html_doc.table(headers, text_rows, NUMERIC, classes)
            + f'\n<p class="muted">{html_doc.escape(LEGEND)}</p>\n<ul class="muted">{notes_html}</ul>')


def render(rows: list[ComparisonRow], fmt: str = "table") -> str:
    if fmt == "json":
        return json_text(comparison_dict(rows))
    if fmt == "csv":
        return render_csv(rows)
    if fmt == "markdown":
        return render_text(rows, "github")
    if fmt == "html":
        names = ", ".join(row.model for row in rows)
        return html_doc.page(f"Comparison: {names}", f"<h1>Comparison: {html_doc.escape(names)}</h1>\n"
                             + comparison_table_html(rows))
    return render_text(rows)

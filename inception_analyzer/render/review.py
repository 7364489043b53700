"""The design review as text: a table for the terminal, Markdown, or JSON."""
from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import asdict


from ..analysis.cost import AUX, CostReport
from ..analysis.findings import Finding, summary_counts
from ..pipeline import ModelAnalysis
from ..numbers import human
from ..untrusted import markdown_text
from .text import json_text, tabulated

REVIEW_FORMATS = ("table", "markdown", "json")


def summary_line(findings: list[Finding]) -> str:
    return f"design review: {summary_counts(findings)} (inception-analyzer review SPEC for details)"


def stage_balance(report: CostReport) -> list[dict]:
    """P4's figures: each stage's share of MACs, parameters and weighted layers (inference path)."""
    main = [s for s in report.stages if s.role != AUX]
    params = sum(s.params for s in main) or 1
    by_stage = Counter(r.stage for r in report.layers if r.role != AUX and r.weighted)
    depth = sum(by_stage.values()) or 1
    return [{"stage": s.name, "macs_share": round(s.macs_share, 4), "params_share": round(s.params / params, 4),
             "weighted_layers": by_stage[s.name], "depth_share": round(by_stage[s.name] / depth, 4)} for s in main]


def _signed(value: int) -> str:
    return ("+" if value > 0 else "-" if value < 0 else "±") + human(abs(value))


def figure_value(value) -> str:
    """A measured figure as a reader wants it: 1,382,976; 0.3691; nested records spelled out."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {figure_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(figure_value(v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _field(size) -> str:
    return "x".join(str(v) for v in size)


def effect_text(effect: dict, totals) -> str:
    """A suggestion's computed effect in words: params and MACs deltas with their share of the
    model, the share of the changed layer's MACs saved, the receptive field before and after. The
    JSON keeps the raw keys (docs/review.md); any other key is spelled out with its value."""
    parts = []
    for key, total in (("params", totals.params), ("macs", totals.macs)):
        if key in effect:
            label = "MACs" if key == "macs" else key
            share = f" ({100 * effect[key] / total:+.2f}% of the model)" if total else ""  # a model of no params
            parts.append(f"{label} {_signed(effect[key])}{share}")
    if "macs_saved_share" in effect:
        parts.append(f"{100 * effect['macs_saved_share']:.1f}% fewer MACs in the layer it changes")
    if "rf" in effect:
        before, after = effect["rf"], effect.get("rf_after", effect["rf"])
        parts.append(f"same {_field(before)} receptive field" if list(before) == list(after)
                     else f"receptive field {_field(before)} -> {_field(after)}")
    parts += [f"{key.replace('_', ' ')} {figure_value(value)}" for key, value in effect.items()
              if key not in ("params", "macs", "macs_saved_share", "rf", "rf_after")]
    return "; ".join(parts)


def render_review(analysis: ModelAnalysis, fmt: str = "table") -> str:
    """The design review of one analysed model: a table, Markdown, or JSON (docs/review.md)."""
    report, findings = analysis.cost, analysis.findings
    if fmt == "json":
        return json_text({"model": report.model, "input": report.input,
                          "summary": dict(Counter(f.severity for f in findings)),
                          "findings": [asdict(f) for f in findings], "stage_balance": stage_balance(report)})
    markdown = fmt == "markdown"
    wrap = (lambda text, width: text) if markdown else (lambda text, width: textwrap.fill(text, width))
    rows = [[f.severity, f.principle, f.path, wrap(f.message, 70),
             wrap((f.suggestion or "") + (f" [{effect_text(f.effect, report.totals)}]" if f.effect else ""), 48)]
            for f in findings]
    table = tabulated(rows, ["severity", "rule", "where", "finding", "suggested change [effect]"],
                     tablefmt="github" if markdown else "grid")
    balance = tabulated([[b["stage"], f"{100 * b['macs_share']:.1f}%", f"{100 * b['params_share']:.1f}%",
                         b["weighted_layers"]] for b in stage_balance(report)],
                       ["stage", "MACs", "params", "conv+linear layers"],
                       tablefmt="github" if markdown else "simple")
    title = f"design review of {report.model} (docs/review.md explains every rule)"
    head = f"## {markdown_text(title)}" if markdown else title
    return f"{head}\n\n{summary_line(findings)}\n\n{table}\n\nstage balance (P4)\n\n{balance}\n"

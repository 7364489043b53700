"""Cost reports as text: a terminal table, Markdown, CSV and the JSON contract.

Renderers only format records made by the analyzers; they never recompute a figure.
The JSON layout is a contract other tools read (docs/json-format.md): keys are only added.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

from tabulate import tabulate

from ..analysis.cost import AUX, CostReport, GroupCost, LayerCost

FORMATS = ("table", "markdown", "csv", "json")
DEPTHS = ("layer", "block", "stage")
JSON_SCHEMA_VERSION = 1

CONVENTIONS = {
    "params": "learnable parameters (elements), aux heads included: sum(p.numel()) of the built model",
    "buffers": "non-learnable tensors (BN running statistics), elements",
    "macs": "multiply-accumulates of conv and linear layers per image, inference path only",
    "macs_aux": "multiply-accumulates of auxiliary heads per image (training only)",
    "other_flops": "FLOPs of the other ops per image (BN, pooling, activations, merges); rules in docs",
    "fvcore_flops": "fvcore FlopCountAnalysis(model.eval(), image).total() for the built model",
    "activations": "output elements of every op per image; activation_bytes at fp32",
    "peak_activation_bytes": "largest live set of tensors during inference at fp32, no in-place ops",
}


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; keeps three significant figures, SI prefixes."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:#.3g}".rstrip(".") + f"{prefix}{unit}"
    return f"{n:g}{unit}"


def shape_text(shape: list[int]) -> str:
    if len(shape) == 3:
        return f"{shape[1]}x{shape[2]}x{shape[0]}"  # the papers' HxWxC order
    return "x".join(map(str, shape))


def _layer_rows(report: CostReport) -> tuple[list[str], list[list]]:
    headers = ["layer", "op", "args", "output HxWxC", "params", "MACs", "activations"]
    rows = [[(r.path + "  (aux)") if r.role == AUX else r.path, r.op, r.args, shape_text(r.output_shape),
             f"{r.params:,}", human(r.macs), human(r.activations)] for r in report.layers]
    return headers, rows


def _group_rows(groups: list[GroupCost], label: str) -> tuple[list[str], list[list]]:
    headers = [label, "layers", "output HxWxC", "params", "MACs", "MACs share", "activations"]
    rows = [[(g.name + "  (aux)") if g.role == AUX and g.name != AUX else g.name, g.layers, shape_text(g.output_shape),
             f"{g.params:,}", human(g.macs), "-" if g.role == AUX else f"{100 * g.macs_share:.1f}%",
             human(g.activations)] for g in groups]
    return headers, rows


def _totals_rows(report: CostReport) -> list[list[str]]:
    t = report.totals
    rows = [["params", f"{t.params:,}" + (f"  (aux heads: {t.params_aux:,})" if t.params_aux else "")],
            ["MACs (inference, conv+linear)", f"{t.macs:,}  ({human(t.macs)})"]]
    if t.macs_aux:
        rows.append(["MACs of aux heads (training only)", f"{t.macs_aux:,}  ({human(t.macs_aux)})"])
    rows += [["other FLOPs (BN, pool, act, merge)", f"{t.other_flops:,}  ({human(t.other_flops)})"],
             ["fvcore-compatible FLOP count", f"{t.fvcore_flops:,}  ({human(t.fvcore_flops)})"],
             ["activations (elements, fp32 bytes)", f"{t.activations:,}  ({human(t.activation_bytes, 'B')})"],
             ["peak activation memory (fp32)", human(t.peak_activation_bytes, "B")],
             ["buffers (BN statistics)", f"{t.buffers:,}"],
             ["depth (conv+linear on longest path)", f"{t.depth}  ({t.weighted_layers} conv+linear layers)"]]
    return rows


def _table_for(report: CostReport, depth: str) -> tuple[list[str], list[list]]:
    if depth == "block":
        return _group_rows(report.blocks, "block")
    if depth == "stage":
        return _group_rows(report.stages, "stage")
    return _layer_rows(report)


def _title(report: CostReport) -> str:
    c, h, w = report.input
    return f"{report.model}  (input {h}x{w}x{c}, per image)"


def render_table(report: CostReport, depth: str = "layer", tablefmt: str = "simple") -> str:
    headers, rows = _table_for(report, depth)
    align = ["left", "left", "left", "right", "right", "right", "right"]
    body = tabulate(rows, headers, tablefmt=tablefmt, colalign=align[: len(headers)], disable_numparse=True)
    totals = tabulate(_totals_rows(report), ["total", ""], tablefmt=tablefmt, disable_numparse=True)
    if tablefmt == "github":
        return f"## {_title(report)}\n\n{body}\n\n{totals}\n"
    return f"{_title(report)}\n\n{body}\n\n{totals}\n"


def render_csv(report: CostReport, depth: str = "layer") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if depth == "layer":
        fields = ["path", "op", "args", "role", "block", "stage", "output_shape", "params", "buffers",
                  "macs", "other_flops", "fvcore_flops", "activations"]
        writer.writerow(fields)
        for r in report.layers:
            row = asdict(r)
            row["output_shape"] = "x".join(map(str, r.output_shape))
            writer.writerow([row[f] for f in fields])
    else:
        groups = report.blocks if depth == "block" else report.stages
        fields = ["name", "role", "output_shape", "layers", "params", "macs", "macs_share", "other_flops",
                  "activations"]
        writer.writerow([depth if f == "name" else f for f in fields])
        for g in groups:
            row = asdict(g)
            row["output_shape"] = "x".join(map(str, g.output_shape))
            row["macs_share"] = f"{g.macs_share:.6f}"
            writer.writerow([row[f] for f in fields])
    return out.getvalue()


def report_dict(report: CostReport) -> dict:
    """The JSON contract: one record per leaf op in `layers`, totals, roll-ups, conventions."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "model": report.model,
        "input": report.input,
        "arguments": report.arguments,
        "metadata": report.metadata,
        "totals": asdict(report.totals),
        "conventions": CONVENTIONS,
        "layers": [asdict(r) for r in report.layers],
        "blocks": [asdict(g) for g in report.blocks],
        "stages": [asdict(g) for g in report.stages],
    }


def render(report: CostReport, fmt: str = "table", depth: str = "layer") -> str:
    if fmt == "json":
        return json.dumps(report_dict(report), indent=1) + "\n"
    if fmt == "csv":
        return render_csv(report, depth)
    if fmt == "markdown":
        return render_table(report, depth, "github")
    return render_table(report, depth)

"""Cost reports as text: a terminal table, Markdown, CSV and the JSON contract.

Renderers only format records made by the analyzers (a ModelAnalysis: the cost analysis, the
receptive fields and the findings); they never recompute a figure.
The JSON layout is a contract other tools read (docs/json-format.md): keys are only added.
"""
from __future__ import annotations

from dataclasses import asdict


from ..analysis.cost import AUX, CostReport, GroupCost
from ..pipeline import ModelAnalysis
from ..numbers import human, shape_text
from ..untrusted import markdown_text
from .review import summary_line
from .text import csv_text, json_records_text, tabulated

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
    "receptive_field": "per axis [h, w] in input pixels: size = largest over paths, size_min = smallest, "
                       "stride = effective stride, padding = effective padding (unit 0 starts at -padding), "
                       "center = centre of unit 0, aligned = all paths share centre and stride",
}


def _label(name: str, role: str) -> str:
    return f"{name}  (aux)" if role == AUX and name != AUX else name


def _pair(values) -> str:
    return f"{values[0]}x{values[1]}" if values[0] != values[1] else str(values[0])


def _rf_text(analysis: ModelAnalysis, path: str) -> str:
    field = analysis.receptive_fields.get(path)
    return _pair(field.size) if field else "-"


def _layer_rows(analysis: ModelAnalysis) -> tuple[list[str], list[list]]:
    headers = ["layer", "op", "args", "output HxWxC", "params", "MACs", "activations", "RF"]
    rows = [[_label(r.path, r.role), r.op, r.args, shape_text(r.output_shape), f"{r.params:,}",
             human(r.macs) if r.modelled else "unknown", human(r.activations), _rf_text(analysis, r.path)]
            for r in analysis.layers]
    return headers, rows


def _group_rows(analysis: ModelAnalysis, groups: list[GroupCost], label: str) -> tuple[list[str], list[list]]:
    headers = [label, "layers", "output HxWxC", "params", "MACs", "MACs share", "activations", "RF"]
    rows = [[_label(g.name, g.role), g.layers, shape_text(g.output_shape), f"{g.params:,}", human(g.macs),
             "-" if g.role == AUX else f"{100 * g.macs_share:.1f}%", human(g.activations),
             _rf_text(analysis, g.output_path)] for g in groups]
    return headers, rows


def rf_table(analysis: ModelAnalysis, depth: str) -> tuple[list[str], list[list]]:
    """How the receptive field grows: per layer (or per block/stage output) on the inference path."""
    if depth == "layer":
        items = [(r.path, r.path, r.output_shape) for r in analysis.layers if r.role != AUX]
    else:
        groups = analysis.blocks if depth == "block" else analysis.stages
        items = [(g.name, g.output_path, g.output_shape) for g in groups if g.role != AUX]
    headers = [depth, "output HxWxC", "RF (largest path)", "RF (smallest path)", "grows by", "eff. stride",
               "eff. padding", "centre of unit 0", "aligned"]
    rows, previous = [], (1, 1)
    for name, path, shape in items:
        field = analysis.receptive_fields[path]
        growth = (field.size[0] - previous[0], field.size[1] - previous[1])
        previous = field.size
        rows.append([name, shape_text(shape), _pair(field.size), _pair(field.size_min),
                     _pair(growth) if growth != (0, 0) else "", _pair(field.stride), _pair(field.padding),
                     _pair([f"{c:g}" for c in field.center]), "yes" if field.aligned else "NO"])
    return headers, rows


def totals_table(analysis: ModelAnalysis) -> list[list[str]]:
    t = analysis.totals
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
    if t.unmodelled:
        listed = ", ".join(t.unmodelled[:5]) + (f" and {len(t.unmodelled) - 5} more" if len(t.unmodelled) > 5 else "")
        rows.append(["status", f"PARTIAL: {len(t.unmodelled)} op(s) not modelled, their MACs and FLOPs unknown "
                               f"(MACs and FLOPs above are lower bounds): {listed}"])
    return rows


def cost_table(analysis: ModelAnalysis, depth: str, rf_view: bool) -> tuple[list[str], list[list]]:
    if rf_view:
        return rf_table(analysis, depth)
    if depth == "block":
        return _group_rows(analysis, analysis.blocks, "block")
    if depth == "stage":
        return _group_rows(analysis, analysis.stages, "stage")
    return _layer_rows(analysis)


def _title(analysis: ModelAnalysis) -> str:
    c, h, w = analysis.input
    return f"{analysis.model}  (input {h}x{w}x{c}, per image)"


def render_table(analysis: ModelAnalysis, depth: str = "layer", tablefmt: str = "simple", rf_view: bool = False) -> str:
    headers, rows = cost_table(analysis, depth, rf_view)
    align = ["left"] + ["right"] * (len(headers) - 1) if rf_view else \
        ["left", "left", "left", "right", "right", "right", "right", "right"][: len(headers)]
    body = tabulated(rows, headers, tablefmt=tablefmt, colalign=align)
    title = f"## {markdown_text(_title(analysis))}" if tablefmt == "github" else _title(analysis)
    if rf_view:
        note = ("RF: receptive field in input pixels (h x w when they differ); eff. padding P: unit 0 "
                "starts at pixel -P; not aligned: merged paths are centred on different pixels")
        return f"{title}\n\n{body}\n\n{note}\n"
    totals = tabulated(totals_table(analysis), ["total", ""], tablefmt=tablefmt)
    return f"{title}\n\n{body}\n\n{totals}\n\n{summary_line(analysis.findings)}\n"


def _rf_columns(analysis: ModelAnalysis, path: str) -> list:
    field = analysis.receptive_fields.get(path)
    if field is None:
        return [""] * 9
    return [*field.size, *field.size_min, *field.stride, *field.padding, str(field.aligned).lower()]


RF_CSV_FIELDS = ["rf_h", "rf_w", "rf_min_h", "rf_min_w", "rf_stride_h", "rf_stride_w", "rf_padding_h",
                 "rf_padding_w", "rf_aligned"]


def render_csv(analysis: ModelAnalysis, depth: str = "layer") -> str:
    if depth == "layer":
        fields = ["path", "op", "args", "role", "block", "stage", "output_shape", "params", "buffers",
                  "macs", "other_flops", "fvcore_flops", "activations"]
        rows = ([*(getattr(r, f) for f in fields[:6]), "x".join(map(str, r.output_shape)),
                 *(getattr(r, f) for f in fields[7:]), *_rf_columns(analysis, r.path)] for r in analysis.layers)
        return csv_text(fields + RF_CSV_FIELDS, rows)
    groups = analysis.blocks if depth == "block" else analysis.stages
    fields = ["name", "role", "output_shape", "layers", "params", "macs", "macs_share", "other_flops", "activations"]
    rows = ([g.name, g.role, "x".join(map(str, g.output_shape)), g.layers, g.params, g.macs, f"{g.macs_share:.6f}",
             g.other_flops, g.activations, *_rf_columns(analysis, g.output_path)] for g in groups)
    return csv_text([depth if f == "name" else f for f in fields] + RF_CSV_FIELDS, rows)


def report_dict(analysis: ModelAnalysis) -> dict:
    """The JSON contract: one record per leaf op in `layers`, totals, roll-ups, conventions."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "model": analysis.model,
        "input": analysis.input,
        "arguments": analysis.arguments,
        "metadata": analysis.metadata,
        "totals": asdict(analysis.totals),
        "conventions": CONVENTIONS,
        # shallow copies of the records (asdict's deep copy costs seconds at 100,000 layers)
        "layers": [_with_rf(analysis, dict(vars(r)), r.path) for r in analysis.layers],
        "blocks": [_with_rf(analysis, dict(vars(g)), g.output_path) for g in analysis.blocks],
        "stages": [_with_rf(analysis, dict(vars(g)), g.output_path) for g in analysis.stages],
        "findings": [asdict(f) for f in analysis.findings],
    }


def _with_rf(analysis: ModelAnalysis, record: dict, path: str) -> dict:
    field = analysis.receptive_fields.get(path)
    if field is not None:
        record["receptive_field"] = field.as_dict()
    return record


def render(analysis: ModelAnalysis, fmt: str = "table", depth: str = "layer", rf_view: bool = False) -> str:
    """`rf_view` turns tables into the receptive-field growth view (CSV and JSON always have it)."""
    if fmt == "json":
        return json_records_text(report_dict(analysis))
    if fmt == "csv":
        return render_csv(analysis, depth)
    if fmt == "markdown":
        return render_table(analysis, depth, "github", rf_view)
    return render_table(analysis, depth, rf_view=rf_view)


def build_summary(cost: CostReport) -> str:
    """`build --summary`: the module tree's blocks with output shape, params and MACs."""
    rows = [[g.name + ("  (aux)" if g.role == AUX else ""), shape_text(g.output_shape), f"{g.params:,}",
             human(g.macs)] for g in cost.blocks]
    return tabulated(rows, ["module", "output HxWxC", "params", "MACs"], tablefmt="simple")

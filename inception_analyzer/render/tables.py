"""Cost reports as text: a terminal table, Markdown, CSV and the JSON contract.

Renderers only format records made by the analyzers (a ModelAnalysis: the cost analysis, the
receptive fields and the findings); they never recompute a figure.
The JSON layout is a contract other tools read (docs/json-format.md): keys are only added.
"""
from __future__ import annotations

from dataclasses import asdict


from ..analysis.cost import AUX, CostReport, GroupCost
from ..analysis.memory import KINDS, LayerMemory, MemoryReport
from ..pipeline import ModelAnalysis
from ..numbers import human, shape_text
from ..untrusted import markdown_text
from .review import summary_line
from .text import Records, csv_text, json_records_text, tabulated

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
# the keys `analyze` adds with a run's memory (docs/json-format.md)
MEMORY_CONVENTIONS = {
    "memory": "one run (memory.settings: batch, dtype, mode, backend, optimizer), bytes for the whole batch: "
              "the peak of eager execution as analysis/memory.py walks it, what it is made of (at_peak), and per "
              "layer (layers[].memory); docs/conventions.md",
    "training_flops": "FLOPs of a training step per image: forward (2 x MACs + other FLOPs), backward to the "
                      "inputs (grad_input) and to the weights (grad_weight); conv and linear backward = 2 x MACs "
                      "each, no input gradient where no input needs one (the first layer); matmul = the conv and "
                      "linear part; flop_counter = torch's FlopCounterMode's total (a grouped conv's weight "
                      "gradient counted groups times)",
}


def _label(name: str, role: str) -> str:
    return f"{name}  (aux)" if role == AUX and name != AUX else name


def _pair(values) -> str:
    return f"{values[0]}x{values[1]}" if values[0] != values[1] else str(values[0])


def _rf_text(analysis: ModelAnalysis, path: str) -> str:
    field = analysis.receptive_fields.get(path)
    return _pair(field.size) if field else "-"


def _bytes(value: int | None) -> str:
    return "-" if not value else human(value, "B")


def _memory_of(memory: MemoryReport | None) -> dict[str, LayerMemory]:
    return {} if memory is None else {m.path: m for m in memory.layers}


def _layer_rows(analysis: ModelAnalysis, memory: MemoryReport | None = None) -> tuple[list[str], list[list]]:
    per_layer = _memory_of(memory)
    if memory is not None and memory.settings.training:
        flops = {f.path: f for f in analysis.training.layers}
        headers = ["layer", "op", "args", "output HxWxC", "params", "fwd FLOPs", "bwd FLOPs in", "bwd FLOPs w",
                   "activation mem", "forward mem", "backward mem"]
        rows = []
        for r in analysis.layers:
            f, m = flops[r.path], per_layer[r.path]
            unknown = not r.modelled
            rows.append([_label(r.path, r.role), r.op, r.args, shape_text(r.output_shape), f"{r.params:,}",
                         *("unknown" if unknown else human(v) for v in (f.forward, f.grad_input, f.grad_weight)),
                         _bytes(m.activation_bytes), _bytes(m.forward_bytes), _bytes(m.backward_bytes)])
        return headers, rows
    headers = ["layer", "op", "args", "output HxWxC", "params", "MACs", "activations", "RF"]
    rows = [[_label(r.path, r.role), r.op, r.args, shape_text(r.output_shape), f"{r.params:,}",
             human(r.macs) if r.modelled else "unknown", human(r.activations), _rf_text(analysis, r.path)]
            for r in analysis.layers]
    if memory is not None:    # at inference the aux heads do not run: no memory of their own
        headers += ["activation mem", "forward mem"]
        for r, row in zip(analysis.layers, rows):
            m = per_layer.get(r.path)
            row += [_bytes(m.activation_bytes), _bytes(m.forward_bytes)] if m else ["-", "-"]
    return headers, rows


def _group_memory(analysis: ModelAnalysis, memory: MemoryReport, depth: str) -> dict[tuple[str, str], list[int]]:
    """(group, role) -> [activation bytes, kept bytes] summed over the group's layers."""
    per_layer = _memory_of(memory)
    sums: dict[tuple[str, str], list[int]] = {}
    for r in analysis.layers:
        m = per_layer.get(r.path)
        if m is not None:
            entry = sums.setdefault((r.block if depth == "block" else r.stage, r.role), [0, 0])
            entry[0] += m.activation_bytes
            entry[1] += m.kept_bytes
    return sums


def _group_rows(analysis: ModelAnalysis, groups: list[GroupCost], label: str,
                memory: MemoryReport | None = None) -> tuple[list[str], list[list]]:
    headers = [label, "layers", "output HxWxC", "params", "MACs", "MACs share", "activations", "RF"]
    rows = [[_label(g.name, g.role), g.layers, shape_text(g.output_shape), f"{g.params:,}", human(g.macs),
             "-" if g.role == AUX else f"{100 * g.macs_share:.1f}%", human(g.activations),
             _rf_text(analysis, g.output_path)] for g in groups]
    if memory is not None:
        sums = _group_memory(analysis, memory, label)
        training = memory.settings.training
        headers += ["activation mem"] + (["kept for bwd"] if training else [])
        for g, row in zip(groups, rows):
            activation, kept = sums.get((g.name, g.role), (None, None))
            row += [_bytes(activation)] + ([_bytes(kept)] if training else [])
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


def memory_rows(analysis: ModelAnalysis, memory: MemoryReport) -> list[list[str]]:
    """The run's peak and what it is made of; in training the training FLOPs too."""
    parts = " + ".join(f"{kind} {human(memory.at_peak[kind], 'B')}" for kind in KINDS if memory.at_peak[kind])
    rows = [[f"peak memory ({memory.settings.describe()})",
             f"{memory.peak_bytes:,} B  ({human(memory.peak_bytes, 'B')}), {memory.peak_phase} of {memory.peak_at}"],
            ["  made of", parts]]
    if memory.settings.training:
        t = analysis.training
        rows += [["  activations kept for the backward pass", human(memory.kept_bytes, "B")],
                 ["training FLOPs per image", f"forward {human(t.forward)} + backward to inputs {human(t.grad_input)}"
                                              f" + to weights {human(t.grad_weight)} = {t.total:,}  ({human(t.total)})"],
                 ["  of which conv + linear", f"{t.matmul:,}  ({human(t.matmul)})"]]
        if t.flop_counter != t.matmul:
            rows.append(["  torch's FlopCounterMode counts", f"{t.flop_counter:,}  ({human(t.flop_counter)}): it "
                                                              "counts a grouped conv's weight gradient groups times"])
    return rows


def totals_table(analysis: ModelAnalysis, memory: MemoryReport | None = None) -> list[list[str]]:
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
    if memory is not None:
        rows += memory_rows(analysis, memory)
    if t.unmodelled:
        listed = ", ".join(t.unmodelled[:5]) + (f" and {len(t.unmodelled) - 5} more" if len(t.unmodelled) > 5 else "")
        rows.append(["status", f"PARTIAL: {len(t.unmodelled)} op(s) not modelled, their MACs and FLOPs unknown "
                               f"(MACs and FLOPs above are lower bounds): {listed}"])
    return rows


def cost_table(analysis: ModelAnalysis, depth: str, rf_view: bool,
               memory: MemoryReport | None = None) -> tuple[list[str], list[list]]:
    if rf_view:
        return rf_table(analysis, depth)
    if depth == "block":
        return _group_rows(analysis, analysis.blocks, "block", memory)
    if depth == "stage":
        return _group_rows(analysis, analysis.stages, "stage", memory)
    return _layer_rows(analysis, memory)


def _title(analysis: ModelAnalysis, memory: MemoryReport | None = None, rf_view: bool = False) -> str:
    c, h, w = analysis.input
    run = "" if memory is None or rf_view else f"; memory: {memory.settings.describe()}"
    flops = "FLOPs " if memory is not None and memory.settings.training and not rf_view else ""
    width = "" if analysis.width is None else f" at width x{analysis.width:g}"
    return f"{analysis.model}{width}  (input {h}x{w}x{c}, {flops}per image{run})"


def render_table(analysis: ModelAnalysis, depth: str = "layer", tablefmt: str = "simple", rf_view: bool = False,
                 memory: MemoryReport | None = None) -> str:
    headers, rows = cost_table(analysis, depth, rf_view, memory)
    align = ["left"] + ["right"] * (len(headers) - 1) if rf_view else \
        (["left", "left", "left"] + ["right"] * len(headers))[: len(headers)]
    body = tabulated(rows, headers, tablefmt=tablefmt, colalign=align)
    title = _title(analysis, memory, rf_view)
    title = f"## {markdown_text(title)}" if tablefmt == "github" else title
    if rf_view:
        note = ("RF: receptive field in input pixels (h x w when they differ); eff. padding P: unit 0 "
                "starts at pixel -P; not aligned: merged paths are centred on different pixels")
        return f"{title}\n\n{body}\n\n{note}\n"
    totals = tabulated(totals_table(analysis, memory), ["total", ""], tablefmt=tablefmt)
    legend = f"\n\n{MEMORY_LEGEND if depth == 'layer' else GROUP_MEMORY_LEGEND}" if memory is not None else ""
    return f"{title}\n\n{body}\n\n{totals}{legend}\n\n{summary_line(analysis.findings)}\n"


MEMORY_LEGEND = ("memory, for the batch: activation = the output a layer writes (- : none, a view or in place); "
                 "forward = what its forward call adds at its peak (output, tensors kept for the backward, "
                 "workspace); backward = what its backward call adds (gradients of its inputs and weights, "
                 "workspace)")
GROUP_MEMORY_LEGEND = ("memory, for the batch: activation = the outputs its layers write (- : none run); kept for "
                       "bwd = what of it is still alive when the forward pass ends (training)")


def _rf_columns(analysis: ModelAnalysis, path: str) -> list:
    field = analysis.receptive_fields.get(path)
    if field is None:
        return [""] * 9
    return [*field.size, *field.size_min, *field.stride, *field.padding, str(field.aligned).lower()]


RF_CSV_FIELDS = ["rf_h", "rf_w", "rf_min_h", "rf_min_w", "rf_stride_h", "rf_stride_w", "rf_padding_h",
                 "rf_padding_w", "rf_aligned"]


# the columns `analyze` adds with a run's memory (after the receptive field's, so none moves)
MEMORY_CSV_FIELDS = ["activation_bytes", "forward_bytes", "backward_bytes", "kept_bytes", "workspace_bytes",
                     "forward_flops", "backward_input_flops", "backward_weight_flops"]
GROUP_MEMORY_CSV_FIELDS = ["activation_bytes", "kept_bytes"]


def _memory_columns(memory: LayerMemory | None, flops) -> list:
    figures = ["", "", "", "", ""] if memory is None else [
        memory.activation_bytes, memory.forward_bytes, memory.backward_bytes if memory.live_after_backward_bytes
        is not None else "", memory.kept_bytes, memory.workspace_bytes]
    return figures + [flops.forward, flops.grad_input, flops.grad_weight]


def render_csv(analysis: ModelAnalysis, depth: str = "layer", memory: MemoryReport | None = None) -> str:
    extra = memory is not None
    if depth == "layer":
        per_layer, flops = _memory_of(memory), ({f.path: f for f in analysis.training.layers} if extra else {})
        fields = ["path", "op", "args", "role", "block", "stage", "output_shape", "params", "buffers",
                  "macs", "other_flops", "fvcore_flops", "activations"]
        rows = ([*(getattr(r, f) for f in fields[:6]), "x".join(map(str, r.output_shape)),
                 *(getattr(r, f) for f in fields[7:]), *_rf_columns(analysis, r.path),
                 *(_memory_columns(per_layer.get(r.path), flops[r.path]) if extra else ())] for r in analysis.layers)
        return csv_text(fields + RF_CSV_FIELDS + (MEMORY_CSV_FIELDS if extra else []), rows)
    groups = analysis.blocks if depth == "block" else analysis.stages
    sums = _group_memory(analysis, memory, depth) if extra else {}
    fields = ["name", "role", "output_shape", "layers", "params", "macs", "macs_share", "other_flops", "activations"]
    rows = ([g.name, g.role, "x".join(map(str, g.output_shape)), g.layers, g.params, g.macs, f"{g.macs_share:.6f}",
             g.other_flops, g.activations, *_rf_columns(analysis, g.output_path),
             *(sums.get((g.name, g.role), ("", "")) if extra else ())] for g in groups)
    return csv_text([depth if f == "name" else f for f in fields] + RF_CSV_FIELDS
                    + (GROUP_MEMORY_CSV_FIELDS if extra else []), rows)


def report_dict(analysis: ModelAnalysis, memory: MemoryReport | None = None) -> dict:
    """The JSON contract: one record per leaf op in `layers`, totals, roll-ups, conventions; with a
    run's memory, `memory` and `training_flops` at the top and in each layer (keys only added)."""
    per_layer = _memory_of(memory) if memory is not None else None
    flops = {f.path: f for f in analysis.training.layers} if memory is not None else None
    data = {
        "schema_version": JSON_SCHEMA_VERSION,
        "model": analysis.model,
        "input": analysis.input,
        "arguments": analysis.arguments,
        "width": analysis.width,
        "metadata": analysis.metadata,
        "totals": asdict(analysis.totals),
        "conventions": CONVENTIONS if memory is None else {**CONVENTIONS, **MEMORY_CONVENTIONS},
        # shallow copies of the records (asdict's deep copy costs seconds at 100,000 layers), each
        # made as it is written
        "layers": Records(lambda: (_layer_record(analysis, r, per_layer, flops) for r in analysis.layers)),
        "blocks": [_with_rf(analysis, dict(vars(g)), g.output_path) for g in analysis.blocks],
        "stages": [_with_rf(analysis, dict(vars(g)), g.output_path) for g in analysis.stages],
        "findings": [asdict(f) for f in analysis.findings],
    }
    if memory is not None:
        data["memory"] = memory_dict(memory)
        t = analysis.training
        data["training_flops"] = {"forward": t.forward, "grad_input": t.grad_input, "grad_weight": t.grad_weight,
                                  "total": t.total, "matmul": t.matmul, "flop_counter": t.flop_counter,
                                  "status": t.status,
                                  "unmodelled": t.unmodelled}
    return data


def _layer_record(analysis: ModelAnalysis, layer, per_layer: dict | None, flops: dict | None) -> dict:
    record = _with_rf(analysis, dict(vars(layer)), layer.path)
    if per_layer is not None:
        m = per_layer.get(layer.path)
        record["memory"] = None if m is None else {k: v for k, v in vars(m).items() if k not in ("path", "role")}
        f = flops[layer.path]
        record["training_flops"] = {"forward": f.forward, "grad_input": f.grad_input, "grad_weight": f.grad_weight}
    return record


def memory_dict(memory: MemoryReport) -> dict:
    """A run's memory as plain data: its settings, the peak and what it is made of, the totals."""
    return {"settings": asdict(memory.settings), "peak_bytes": memory.peak_bytes, "peak_phase": memory.peak_phase,
            "peak_at": memory.peak_at, "at_peak": dict(memory.at_peak), "weights_bytes": memory.weights_bytes,
            "gradient_bytes": memory.gradient_bytes, "optimizer_state_bytes": memory.optimizer_state_bytes,
            "input_bytes": memory.input_bytes, "kept_bytes": memory.kept_bytes}


def _with_rf(analysis: ModelAnalysis, record: dict, path: str) -> dict:
    field = analysis.receptive_fields.get(path)
    if field is not None:
        record["receptive_field"] = field.as_dict()
    return record


def render(analysis: ModelAnalysis, fmt: str = "table", depth: str = "layer", rf_view: bool = False,
           memory: MemoryReport | None = None) -> str:
    """`rf_view` turns tables into the receptive-field growth view (CSV and JSON always have it);
    `memory` (a run's MemoryReport) adds the memory columns and totals, and in training the
    training FLOPs."""
    if fmt == "json":
        return json_records_text(report_dict(analysis, memory))
    if fmt == "csv":
        return render_csv(analysis, depth, memory)
    if fmt == "markdown":
        return render_table(analysis, depth, "github", rf_view, memory)
    return render_table(analysis, depth, rf_view=rf_view, memory=memory)


def build_summary(cost: CostReport) -> str:
    """`build --summary`: the module tree's blocks with output shape, params and MACs."""
    rows = [[g.name + ("  (aux)" if g.role == AUX else ""), shape_text(g.output_shape), f"{g.params:,}",
             human(g.macs)] for g in cost.blocks]
    return tabulated(rows, ["module", "output HxWxC", "params", "MACs"], tablefmt="simple")

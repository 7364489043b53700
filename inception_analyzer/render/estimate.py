"""The roofline estimate as text: `analyze SPEC --device h100 [--dtype bf16] [--batch 256]`.

Formats a ModelEstimate (analysis/roofline.py) per layer, block or stage, with the device's roofs
and the memory a run needs, and beside it, given a calibrated profile (`analyze --device FILE`),
the LatencyPrediction (analysis/latency.py): each layer's predicted time and how it was priced.
It estimates nothing itself. Torch-free, like the analysis path.
"""
from __future__ import annotations

from dataclasses import dataclass


from ..analysis.cost import AUX
from ..analysis.latency import FALLBACK, FITTED, NEAREST, LatencyPrediction, LayerPrediction
from ..analysis.roofline import LayerEstimate, ModelEstimate
from ..numbers import human
from ..untrusted import markdown_text
from .text import csv_text, json_text, tabulated

JSON_SCHEMA_VERSION = 1


def duration_text(seconds: float | None) -> str:
    """0.0123 -> '12.3 ms'; three significant figures in s, ms or us."""
    if seconds is None:
        return "-"
    if seconds >= 1000:
        return f"{seconds:,.0f} s"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:#.3g}".rstrip(".") + f" {unit}"
    return f"{seconds * 1e9:.3g} ns"


def gib_text(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**30:.2f} GiB"


def memory_need(needed: int, available: int | None, what: str = "free") -> str:
    """'needs X GiB, Y GiB free'."""
    if available is None:
        return f"needs {gib_text(needed)}, available memory unknown"
    return f"needs {gib_text(needed)}, {gib_text(available)} {what}"


def memory_verdict(needed: int, available: int | None, what: str = "free") -> str:
    """'fits (needs X GiB, Y GiB free)' or 'does not fit (needs X GiB, Y GiB free)'."""
    if available is None:
        return memory_need(needed, available, what)
    verdict = "fits" if needed <= available else "does not fit"
    return f"{verdict} ({memory_need(needed, available, what)})"


@dataclass
class _Row:
    name: str
    detail: str          # op, or the number of layers of a group
    flops: float
    bytes: float
    seconds: float
    compute_seconds: float
    bound: str
    predicted: float | None = None      # the calibrated prediction (None: no calibrated profile)
    how: str = ""


def _layer_rows(model: ModelEstimate, prediction: LatencyPrediction | None) -> list[_Row]:
    predicted = {l.path: l for l in prediction.layers} if prediction else {}
    rows = []
    for l in model.layers:
        p = predicted.get(l.path)
        rows.append(_Row(_label(l), l.op, l.flops, l.bytes, l.seconds, l.seconds if l.bound == "compute" else 0.0,
                         l.bound, p.seconds if p else None, p.how_text if p else ""))
    return rows


def _label(layer: LayerEstimate) -> str:
    return f"{layer.path}  (aux)" if layer.role == AUX else layer.path


def _group_rows(model: ModelEstimate, depth: str, prediction: LatencyPrediction | None) -> list[_Row]:
    groups: dict[str, list[LayerEstimate]] = {}
    for layer in model.layers:
        key = layer.block if depth == "block" else layer.stage
        groups.setdefault(key + ("  (aux)" if layer.role == AUX and key != AUX else ""), []).append(layer)
    predicted = {l.path: l for l in prediction.layers} if prediction else {}
    rows = []
    for name, layers in groups.items():
        seconds = sum(l.seconds for l in layers)
        compute = sum(l.seconds for l in layers if l.bound == "compute")
        bound = f"compute {100 * compute / seconds:.0f}%" if seconds else "-"
        mine = [predicted[l.path] for l in layers if l.path in predicted]
        rows.append(_Row(name, str(len(layers)), sum(l.flops for l in layers), sum(l.bytes for l in layers),
                         seconds, compute, bound, sum(p.seconds for p in mine) if mine else None, _how_counts(mine)))
    return rows


def _how_counts(layers: list[LayerPrediction]) -> str:
    """'fitted', or '12 fitted, 1 fallback' when a group's layers were priced in several ways."""
    counts = {how: sum(1 for l in layers if l.how == how) for how in (FITTED, NEAREST, FALLBACK)}
    present = {how: n for how, n in counts.items() if n}
    if len(present) <= 1:
        return next(iter(present), "")
    return ", ".join(f"{n} {how}" for how, n in present.items())


def _rows(model: ModelEstimate, depth: str, prediction: LatencyPrediction | None = None) -> list[_Row]:
    return _layer_rows(model, prediction) if depth == "layer" else _group_rows(model, depth, prediction)


def _summary(model: ModelEstimate, free_bytes: int | None) -> list[list[str]]:
    p, dtype = model.profile, model.dtype
    memory = model.memory
    # the free memory when measured (bench), else the device's whole memory as the datasheet gives it
    available, what = (free_bytes, "free") if free_bytes is not None else (p.memory_bytes, "on the device")
    rows = [
        ["device profile", f"{p.name}: {p.title}"],
        [f"roofs ({dtype})", f"matmul {human(p.peak_flops(dtype), 'FLOP/s')}, element-wise "
                             f"{human(p.vector_flops, 'FLOP/s')}, memory {human(p.memory_bandwidth, 'B/s')}; "
                             f"ridge point {p.ridge_point(dtype):.0f} FLOP/byte"],
        ["run", f"{model.mode}, batch {model.batch}, {dtype}"],
        ["estimated time", f"{duration_text(model.seconds)} per {'step' if model.mode == 'train' else 'batch'}  "
                           f"({model.images_per_second:,.0f} images/s)"],
        ["model FLOPs (2 x MACs x batch" + (" x 3" if model.mode == "train" else "") + ")",
         f"{human(model.model_flops, 'FLOP')}  ({100 * model.peak_share:.1f}% of the {dtype} matmul peak at the "
         "estimated time)"],
        ["time in compute-bound layers", f"{100 * model.compute_bound_share:.0f}%"],
        ["bytes moved", human(model.bytes, "B")],
    ]
    if memory is not None:
        rows += [
            ["memory at the peak", f"weights {gib_text(memory.weights_bytes)}"
                                   + (f" + gradients and optimizer state {gib_text(memory.training_state_bytes)}"
                                      if model.mode == "train" else "")
                                   + f" + activations and workspace {gib_text(memory.activation_bytes)} = "
                                   f"{gib_text(memory.total)}"],
            ["fits the device", memory_verdict(memory.total, available, what)],
        ]
    if model.largest_batch is not None:
        rows.append(["largest batch that fits", f"{model.largest_batch:,} ({model.mode}, {dtype}, in the "
                                                f"{gib_text(p.memory_bytes)} of the device; the memory "
                                                "analysis's peak, found by doubling and bisection)"])
    return rows + [["assumes", note] for note in model.notes]


def _prediction_summary(prediction: LatencyPrediction) -> list[list[str]]:
    p = prediction.profile
    counts = prediction.count_by_how()
    how = ", ".join(f"{counts[h]} {h}" for h in (FITTED, NEAREST, FALLBACK) if counts.get(h))
    where = f"{p.source}: " if p.source else ""
    rows = [
        ["calibrated profile", f"{where}{p.title}; {p.dtype}, calibrated {p.date or 'at an unknown date'}"],
        ["predicted time", f"{duration_text(prediction.seconds)} per batch  ({prediction.images_per_second:,.1f} images/s)"],
        ["of which", f"overheads {duration_text(prediction.overhead_seconds)} (dispatch, {len(prediction.layers)} "
                     f"layers and the forward call), kernels {duration_text(prediction.kernel_seconds)}"
                     + (f", fresh pages {duration_text(prediction.fresh_seconds)} "
                        f"({human(sum(l.fresh_bytes for l in prediction.layers), 'B')})" if p.allocator else "")
                     + f", running among other layers {duration_text(prediction.context_seconds)}"],
        ["roofline bound beside it", f"{duration_text(prediction.roofline_seconds)} per batch on the profile's "
                                     "measured roofs"],
        ["layers priced", how + f" (fallback: overhead {duration_text(p.fallback.overhead)} + roofline / "
                                f"{p.fallback.efficiency:.3g})"],
    ]
    return rows + [["predicts", note] for note in prediction.notes]


def format_estimate(model: ModelEstimate, fmt: str = "table", depth: str = "layer",
                    free_bytes: int | None = None, prediction: LatencyPrediction | None = None) -> str:
    """Render an estimate; `free_bytes` (when known) replaces the profile's memory in the fit check;
    `prediction` (from a calibrated profile) adds each layer's predicted time beside its bound."""
    if fmt == "json":
        return _json(model, depth, prediction) + "\n"
    rows = _rows(model, depth, prediction)
    if fmt == "csv":
        return _csv(rows, depth, prediction is not None)
    tablefmt = "github" if fmt == "markdown" else "simple"
    headers = [depth, "op" if depth == "layer" else "layers", "FLOPs", "bytes moved", "FLOP/byte", "bound",
               "est. time"]
    align = ["left", "left", "right", "right", "right", "left", "right"]
    if prediction is None:
        total = model.seconds or 1.0
        body = [[*_cells(r), f"{100 * r.seconds / total:.1f}%"] for r in rows]
        headers, align = headers + ["share"], align + ["right"]
    else:
        total = prediction.seconds or 1.0
        body = [[*_cells(r), duration_text(r.predicted), r.how,
                 "-" if r.predicted is None else f"{100 * r.predicted / total:.1f}%"] for r in rows]
        headers, align = headers + ["predicted", "how", "share"], align + ["right", "left", "right"]
    table = tabulated(body, headers, tablefmt=tablefmt, colalign=align)
    summary = tabulated(_summary(model, free_bytes), ["roofline estimate", ""], tablefmt=tablefmt)
    title = f"{model.model}: roofline estimate on {model.profile.name}, {model.mode}, batch {model.batch}, {model.dtype}"
    if prediction is not None:
        summary = tabulated(_prediction_summary(prediction), ["calibrated prediction", ""], tablefmt=tablefmt) \
            + "\n\n" + summary
        title = (f"{model.model}: predicted latency on {model.profile.name} (calibrated) beside the roofline, "
                 f"{model.mode}, batch {model.batch}, {model.dtype}")
    title = f"## {markdown_text(title)}" if fmt == "markdown" else title
    return f"{title}\n\n{table}\n\n{summary}\n"


def _cells(r: _Row) -> list[str]:
    return [r.name, r.detail, human(r.flops), human(r.bytes, "B"), f"{r.flops / r.bytes:.1f}" if r.bytes else "-",
            r.bound, duration_text(r.seconds)]


def _csv(rows: list[_Row], depth: str, predicted: bool = False) -> str:
    extra = ["predicted_seconds", "how"] if predicted else []
    return csv_text([depth, "op" if depth == "layer" else "layers", "flops", "bytes", "seconds",
                     "compute_bound_seconds", "bound", *extra],
                    ([r.name, r.detail, f"{r.flops:.0f}", f"{r.bytes:.0f}", f"{r.seconds:.6e}",
                      f"{r.compute_seconds:.6e}", r.bound,
                      *([("" if r.predicted is None else f"{r.predicted:.6e}"), r.how] if predicted else [])]
                     for r in rows))


def estimate_record(model: ModelEstimate) -> dict:
    """The estimate's totals as plain data (also embedded in `bench --format json`)."""
    p = model.profile
    return {
        "profile": {"name": p.name, "title": p.title, "matmul_flops": p.matmul_flops, "vector_flops": p.vector_flops,
                    "memory_bandwidth": p.memory_bandwidth, "memory_bytes": p.memory_bytes, "measured": p.measured},
        "mode": model.mode, "batch": model.batch, "dtype": model.dtype,
        "seconds": model.seconds, "images_per_second": model.images_per_second,
        "model_flops": model.model_flops, "peak_share": model.peak_share,
        "compute_bound_share": model.compute_bound_share, "bytes": model.bytes,
        "memory": None if model.memory is None else {
            "weights_bytes": model.memory.weights_bytes, "training_state_bytes": model.memory.training_state_bytes,
            "activation_bytes": model.memory.activation_bytes, "total_bytes": model.memory.total},
        "largest_batch": model.largest_batch,
        "notes": model.notes,
    }


def prediction_record(prediction: LatencyPrediction) -> dict:
    """The calibrated prediction's totals as plain data (also embedded in `bench --format json`)."""
    p = prediction.profile
    return {"profile": {"name": p.name, "title": p.title, "file": p.source, "device": p.device, "dtype": p.dtype,
                        "execution": p.execution, "date": p.date, "threads": p.threads},
            "batch": prediction.batch, "seconds": prediction.seconds,
            "images_per_second": prediction.images_per_second, "overhead_seconds": prediction.overhead_seconds,
            "kernel_seconds": prediction.kernel_seconds, "fresh_page_seconds": prediction.fresh_seconds,
            "in_model_seconds": prediction.context_seconds,
            "fresh_page_bytes": sum(l.fresh_bytes for l in prediction.layers),
            "roofline_seconds": prediction.roofline_seconds,
            "layers_by_how": prediction.count_by_how(), "notes": prediction.notes}


def _json(model: ModelEstimate, depth: str, prediction: LatencyPrediction | None = None) -> str:
    rows = []
    for r in _rows(model, depth, prediction):
        row = {"name": r.name, "detail": r.detail, "flops": r.flops, "bytes": r.bytes, "seconds": r.seconds,
               "compute_bound_seconds": r.compute_seconds, "bound": r.bound}
        if prediction is not None:
            row.update(predicted_seconds=r.predicted, how=r.how)
        rows.append(row)
    data = {"schema_version": JSON_SCHEMA_VERSION, "model": model.model, **estimate_record(model),
            "units": {"flops": "FLOP per batch (1 MAC = 2 FLOP)", "bytes": "bytes per batch",
                      "seconds": "seconds per batch", "bandwidth": "bytes/s"},
            depth + "s": rows}
    if prediction is not None:
        data["prediction"] = prediction_record(prediction)
    return json_text(data, indent=2).rstrip("\n")

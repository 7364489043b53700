"""The roofline estimate as text: `analyze SPEC --device h100 [--dtype bf16] [--batch 256]`.

Formats a ModelEstimate (analysis/roofline.py) per layer, block or stage, with the device's roofs
and the memory a run needs; it estimates nothing itself. Torch-free, like the analysis path.
"""
from __future__ import annotations

from dataclasses import dataclass


from ..analysis.cost import AUX
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


def _layer_rows(model: ModelEstimate) -> list[_Row]:
    return [_Row(_label(l), l.op, l.flops, l.bytes, l.seconds, l.seconds if l.bound == "compute" else 0.0, l.bound)
            for l in model.layers]


def _label(layer: LayerEstimate) -> str:
    return f"{layer.path}  (aux)" if layer.role == AUX else layer.path


def _group_rows(model: ModelEstimate, depth: str) -> list[_Row]:
    groups: dict[str, list[LayerEstimate]] = {}
    for layer in model.layers:
        key = layer.block if depth == "block" else layer.stage
        groups.setdefault(key + ("  (aux)" if layer.role == AUX and key != AUX else ""), []).append(layer)
    rows = []
    for name, layers in groups.items():
        seconds = sum(l.seconds for l in layers)
        compute = sum(l.seconds for l in layers if l.bound == "compute")
        bound = f"compute {100 * compute / seconds:.0f}%" if seconds else "-"
        rows.append(_Row(name, str(len(layers)), sum(l.flops for l in layers), sum(l.bytes for l in layers),
                         seconds, compute, bound))
    return rows


def _rows(model: ModelEstimate, depth: str) -> list[_Row]:
    return _layer_rows(model) if depth == "layer" else _group_rows(model, depth)


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


def format_estimate(model: ModelEstimate, fmt: str = "table", depth: str = "layer",
                    free_bytes: int | None = None) -> str:
    """Render an estimate; `free_bytes` (when known) replaces the profile's memory in the fit check."""
    if fmt == "json":
        return _json(model, depth) + "\n"
    rows = _rows(model, depth)
    total = model.seconds or 1.0
    if fmt == "csv":
        return _csv(rows, depth)
    tablefmt = "github" if fmt == "markdown" else "simple"
    headers = [depth, "op" if depth == "layer" else "layers", "FLOPs", "bytes moved", "FLOP/byte", "bound",
               "est. time", "share"]
    body = [[r.name, r.detail, human(r.flops), human(r.bytes, "B"), f"{r.flops / r.bytes:.1f}" if r.bytes else "-",
             r.bound, duration_text(r.seconds), f"{100 * r.seconds / total:.1f}%"] for r in rows]
    table = tabulated(body, headers, tablefmt=tablefmt,
                     colalign=["left", "left", "right", "right", "right", "left", "right", "right"])
    summary = tabulated(_summary(model, free_bytes), ["roofline estimate", ""], tablefmt=tablefmt,
                       )
    title = f"{model.model}: roofline estimate on {model.profile.name}, {model.mode}, batch {model.batch}, {model.dtype}"
    title = f"## {markdown_text(title)}" if fmt == "markdown" else title
    return f"{title}\n\n{table}\n\n{summary}\n"


def _csv(rows: list[_Row], depth: str) -> str:
    return csv_text([depth, "op" if depth == "layer" else "layers", "flops", "bytes", "seconds",
                     "compute_bound_seconds", "bound"],
                    ([r.name, r.detail, f"{r.flops:.0f}", f"{r.bytes:.0f}", f"{r.seconds:.6e}",
                      f"{r.compute_seconds:.6e}", r.bound] for r in rows))


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


def _json(model: ModelEstimate, depth: str) -> str:
    data = {"schema_version": JSON_SCHEMA_VERSION, "model": model.model, **estimate_record(model),
            "units": {"flops": "FLOP per batch (1 MAC = 2 FLOP)", "bytes": "bytes per batch",
                      "seconds": "seconds per batch", "bandwidth": "bytes/s"},
            depth + "s": [{"name": r.name, "detail": r.detail, "flops": r.flops, "bytes": r.bytes,
                           "seconds": r.seconds, "compute_bound_seconds": r.compute_seconds, "bound": r.bound}
                          for r in _rows(model, depth)]}
    return json_text(data, indent=2).rstrip("\n")

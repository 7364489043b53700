"""Benchmark results as text: measured throughput beside the roofline estimate and torchvision.

Formats the records of `inception_analyzer.bench.records` (BenchReport, BenchRow, Measurement);
every figure is a record's field or property, nothing is measured or estimated here. The words
for a status (why a model has no timing) are made here, from the row's figures. Torch-free.
"""
from __future__ import annotations

import dataclasses
import math
import statistics

from ..analysis.latency import FALLBACK
from ..bench.records import DOES_NOT_FIT, NOT_COMPARABLE, OUT_OF_MEMORY, BenchReport, BenchRow, CheckRow, Measurement
from ..untrusted import markdown_text, visible
from .estimate import duration_text, estimate_record, gib_text, memory_need, prediction_record
from .tables import human
from .text import csv_text, json_text, tabulated

JSON_SCHEMA_VERSION = 1
PREDICTED = ("predicted (with a calibrated profile, --profile FILE): the latency the profile's fitted model predicts "
             "(analyze --device FILE); measured / predicted > 1: slower than predicted")
CONVENTIONS = [
    "latency: seconds per batch (per step in training), p50 = median and p90 over the timed iterations (n)",
    "images/s: batch / p50",
    "FLOP/s: 2 x MACs per image x images/s (x3 and with the aux heads in training), the conventional count; "
    "% of peak: of the device profile's dense matmul peak for the dtype",
    "estimate: the roofline (analyze --device), eager, one kernel per op; measured / estimate > 1: slower than it",
    "peak memory: measured, the allocator's peak during a step (CUDA: max_memory_allocated over the timed "
    "iterations; CPU: one more step under torch's profiler, its allocator events summed); predicted: the peak "
    "of the memory analysis (analyze --mode ... --batch ... --dtype ...) for eager execution on the device",
    "ours / torchvision: images/s of our built model over torchvision's model of the same architecture, "
    "same settings, same process; in brackets its 95% bootstrap interval: ours is faster beyond the noise "
    "only where the interval's low end is above 1",
]


def render_bench(report: BenchReport, fmt: str = "table") -> str:
    if fmt == "json":
        return json_text(_json(report), indent=2)
    if fmt == "csv":
        return _csv(report)
    tablefmt = "github" if fmt == "markdown" else "simple"
    heading = "## " if fmt == "markdown" else ""
    predicted = any(r.prediction is not None for r in report.rows)
    headers = _PREDICTED_HEADERS if predicted else _HEADERS
    parts = [f"{heading}bench: {report.settings.describe()} on {report.environment['device']}",
             _profile_line(report),
             tabulated([_row(r, predicted) for r in report.rows], headers, tablefmt=tablefmt,
                       colalign=["left"] + ["right"] * (len(headers) - 1))]
    if report.prediction_note:
        note = f"NOTE: {report.prediction_note}; measured / estimate is against the roofline."
        parts.append(markdown_text(note) if fmt == "markdown" else visible(note))
    if report.machine_check:
        parts.append(f"after the rows, the profile's check cases (calibrate --check): "
                     f"{machine_check_verdict(report.machine_check)}")
    for row in report.rows:
        if row.layers:
            parts.append(_layers_section(row, tablefmt, heading))
    load = report.load
    if load is not None and load.busy:
        parts.append(f"NOTE: the machine was busy: its load average reached {max(load.samples):.2f} on {load.cores} "
                     f"core(s), {load.others:.1f} more than this run's own {load.own_threads} thread(s): other work "
                     "competed for the cores, and these figures are unreliable; measure again on a quiet machine.")
    environment = "; ".join(f"{key} {value}" for key, value in report.environment.items())
    notes = "\n".join(f"- {line}" for line in _conventions(report))
    parts.append(f"environment: {environment}\n\n{notes}")
    return "\n\n".join(parts) + "\n"


def _conventions(report: BenchReport) -> list[str]:
    return CONVENTIONS + ([PREDICTED] if any(r.prediction is not None for r in report.rows) else [])


_HEADERS = ["model", "batch", "images/s", "p50", "p90", "n", "FLOP/s", "% of peak", "peak memory",
            "predicted memory", "estimate", "measured / estimate", "torchvision images/s", "ours / torchvision"]
# with a calibrated profile: the prediction beside the roofline, and the ratio against the prediction
_PREDICTED_HEADERS = [*_HEADERS[:_HEADERS.index("measured / estimate")], "predicted", "measured / predicted",
                      *_HEADERS[_HEADERS.index("measured / estimate") + 1:]]


def _profile_line(report: BenchReport) -> str:
    profile = report.profile
    if profile is None:
        return f"estimate: {report.profile_note}"
    dtype = report.settings.dtype
    return (f"estimate: {report.profile_note}: {profile.title}; {dtype} matmul "
            f"{human(profile.peak_flops(dtype), 'FLOP/s')}, element-wise {human(profile.vector_flops, 'FLOP/s')}, "
            f"memory {human(profile.memory_bandwidth, 'B/s')}")


def _note(row: BenchRow, measurement: Measurement) -> str:
    """Why a model has no timing, beyond its status; empty when the status says it all."""
    if measurement.status == DOES_NOT_FIT:
        return memory_need(row.memory_needed, row.free_bytes)
    if measurement.status == OUT_OF_MEMORY:
        return f"at run time; estimated: {memory_need(row.memory_needed, row.free_bytes)}"
    if measurement.status == NOT_COMPARABLE:
        return "torchvision's model has other parameters"
    return ""


def _status(row: BenchRow, measurement: Measurement) -> str:
    note = _note(row, measurement)
    return measurement.status + (f" ({note})" if note else "")


def _row(row: BenchRow, predicted: bool = False) -> list[str]:
    ours, theirs, estimate = row.ours, row.torchvision, row.estimate
    estimate_text = "-" if estimate is None else f"{duration_text(estimate.seconds)}"
    if ours.ok:
        timing = ours.timing
        measured = [f"{ours.images_per_second:,.1f}", duration_text(timing.median), duration_text(timing.p90),
                    str(timing.iterations), human(ours.achieved_flops, "FLOP/s"),
                    "-" if ours.peak_share is None else f"{100 * ours.peak_share:.1f}%",
                    gib_text(ours.peak_memory_bytes)]
    else:
        measured = [_status(row, ours)] + ["-"] * 6
    measured.append(_predicted_memory(row))
    ratio_to_estimate = "-" if row.measured_over_estimate is None else f"{row.measured_over_estimate:.2f}"
    if theirs is None:
        peer = ["-", "-"]
    elif theirs.ok:
        peer = [f"{theirs.images_per_second:,.1f}", _ratio_text(row)]
    else:
        peer = [_status(row, theirs), "-"]
    if predicted:
        prediction = "-" if row.prediction is None else duration_text(row.prediction.seconds)
        return [row.model, str(row.batch), *measured, estimate_text, prediction, ratio_to_estimate, *peer]
    return [row.model, str(row.batch), *measured, estimate_text, ratio_to_estimate, *peer]


def _predicted_memory(row: BenchRow) -> str:
    """The predicted peak, and the measured one over it where measured."""
    ratio = row.memory_measured_over_predicted
    return gib_text(row.memory_needed) + ("" if ratio is None else f" ({ratio:.3f})")


def _ratio_text(row: BenchRow) -> str:
    if row.ratio is None:
        return "-"
    low, high = row.ratio_interval
    return f"{row.ratio:.2f} ({low:.2f}-{high:.2f})"


def _layers_section(row: BenchRow, tablefmt: str, heading: str) -> str:
    attributed = sum(l.measured_seconds for l in row.layers if l.measured_seconds is not None)
    total = row.profiled_total_seconds or attributed or 1.0
    predicted = row.prediction is not None
    body = []
    for layer in row.layers:
        ratio = (f"{layer.measured_seconds / layer.estimate_seconds:.2f}"
                 if layer.measured_seconds is not None and layer.estimate_seconds else "-")
        cells = [layer.path, layer.op, duration_text(layer.estimate_seconds), layer.bound]
        if predicted:
            cells.append(duration_text(layer.predicted_seconds))
        body.append([*cells, duration_text(layer.measured_seconds), ratio,
                     "-" if layer.measured_seconds is None else f"{100 * layer.measured_seconds / total:.1f}%"])
    blank = [""] * (1 if predicted else 0)
    outside = (row.profiled_total_seconds or 0.0) - attributed
    body.append(["(outside leaf modules: merges, glue)", "", "", "", *blank, duration_text(max(outside, 0.0)), "",
                 f"{100 * max(outside, 0.0) / total:.1f}%"])
    body.append(["(whole forward pass, profiled)", "", "", "", *blank, duration_text(row.profiled_total_seconds), "",
                 ""])
    headers = ["layer", "op", "estimate", "bound", *(["predicted"] if predicted else []), "measured",
               "measured / estimate", "share"]
    table = tabulated(body, headers, tablefmt=tablefmt,
                      colalign=["left", "left", "right", "left", *(["right"] * (len(headers) - 4))])
    model = markdown_text(row.model) if heading else row.model
    title = (f"{heading}{model}, batch {row.batch}: forward pass per layer (torch profiler, eager, inference; "
             "profiler overhead included, merges run outside any leaf module)")
    summary_title = (f"{heading}{model}, batch {row.batch}: the same, summed per op "
                     "(memory-bound: the layers whose estimate is set by the bytes they move)")
    return f"{title}\n\n{table}\n\n{summary_title}\n\n{_per_op_table(row, total, tablefmt)}"


def _per_op_table(row: BenchRow, total: float, tablefmt: str) -> str:
    """Where the time goes by op kind: estimated and measured seconds, and how many layers of the
    kind the roofline calls memory-bound. Merges have no module, hence no measured time of their own."""
    by_op: dict[str, list] = {}
    for layer in row.layers:
        by_op.setdefault(layer.op, []).append(layer)
    estimated_total = sum(layer.estimate_seconds or 0.0 for layer in row.layers) or 1.0
    summaries = []
    for op, layers in by_op.items():
        estimated = sum(layer.estimate_seconds or 0.0 for layer in layers)
        timed = [layer.measured_seconds for layer in layers if layer.measured_seconds is not None]
        measured = sum(timed) if timed else None
        memory_bound = sum(layer.bound == "memory" for layer in layers)
        summaries.append((op, len(layers), memory_bound, estimated, measured))
    body = []
    for op, count, memory_bound, estimated, measured in sorted(summaries, key=lambda entry: -(entry[4] or 0)):
        body.append([op, str(count), f"{memory_bound}/{count}", duration_text(estimated),
                     f"{100 * estimated / estimated_total:.1f}%", duration_text(measured),
                     "-" if measured is None else f"{100 * measured / total:.1f}%",
                     f"{measured / estimated:.2f}" if measured is not None and estimated else "-"])
    return tabulated(body, ["op", "layers", "memory-bound", "estimate", "share of estimate", "measured",
                           "share of measured", "measured / estimate"],
                    tablefmt=tablefmt, colalign=["left"] + ["right"] * 7)


def _measurement(row: BenchRow, m: Measurement | None) -> dict | None:
    if m is None:
        return None
    timing = m.timing
    return {"implementation": m.implementation, "status": m.status, "note": _note(row, m), "batch": m.batch,
            "iterations": timing.iterations if timing else None,
            "p50_seconds": timing.median if timing else None, "p90_seconds": timing.p90 if timing else None,
            "mean_seconds": timing.mean if timing else None,
            "samples_seconds": list(timing.samples) if timing else None,
            "images_per_second": m.images_per_second, "model_flops": m.model_flops,
            "achieved_flops": m.achieved_flops, "peak_share": m.peak_share,
            "peak_memory_bytes": m.peak_memory_bytes}


def _json(report: BenchReport) -> dict:
    s = report.settings
    settings = {"device": str(s.device), "dtype": s.dtype, "mode": s.mode, "channels_last": s.channels_last,
                "compile": s.compile, "compile_mode": s.compile_mode, "warmup": s.warmup,
                "iterations": s.iterations, "min_time": s.min_time, "train_recipe": dataclasses.asdict(s.recipe)}
    rows = [{"spec": r.spec, "model": r.model, "batch": r.batch, "memory_needed_bytes": r.memory_needed,
             "memory_measured_over_predicted": r.memory_measured_over_predicted,
             "free_bytes": r.free_bytes, "estimate": estimate_record(r.estimate) if r.estimate else None,
             "prediction": prediction_record(r.prediction) if r.prediction else None,
             "measured_over_estimate": r.measured_over_estimate, "measured_over_roofline": r.measured_over_roofline,
             "ours_over_torchvision": r.ratio,
             "ours_over_torchvision_ci95": list(r.ratio_interval) if r.ratio_interval else None,
             "ours": _measurement(r, r.ours), "torchvision": _measurement(r, r.torchvision),
             "profiled_total_seconds": r.profiled_total_seconds,
             "layers": [dataclasses.asdict(layer) for layer in r.layers]} for r in report.rows]
    load = report.load
    machine_load = None if load is None else {"cores": load.cores, "own_threads": load.own_threads,
                                              "load_averages": load.samples, "busy": load.busy}
    return {"schema_version": JSON_SCHEMA_VERSION, "settings": settings, "environment": report.environment,
            "profile_note": report.profile_note, "prediction_note": report.prediction_note or None,
            "machine_check": None if report.machine_check is None else {
                "verdict": machine_check_verdict(report.machine_check),
                "cases": [{"case": c.what, "regime": c.regime, "measured_seconds": c.measured,
                           "priced_seconds": c.priced, "priced_by": c.how, "measured_over_priced": c.ratio}
                          for c in report.machine_check]},
            "conventions": _conventions(report), "machine_load": machine_load,
            "rows": rows}


def _csv(report: BenchReport) -> str:
    header = ["spec", "model", "batch", "implementation", "status", "note", "images_per_second",
              "p50_seconds", "p90_seconds", "iterations", "achieved_flops", "peak_share", "peak_memory_bytes",
              "estimate_seconds", "measured_over_estimate", "ours_over_torchvision",
              "ours_over_torchvision_ci95_low", "ours_over_torchvision_ci95_high", "predicted_memory_bytes"]
    rows = []
    for r in report.rows:
        for m in (r.ours, r.torchvision):
            if m is None:
                continue
            ours = m is r.ours
            rows.append([r.spec, r.model, r.batch, m.implementation, m.status, _note(r, m),
                         _num(m.images_per_second), _num(m.timing.median if m.ok else None),
                         _num(m.timing.p90 if m.ok else None), m.timing.iterations if m.ok else "",
                         _num(m.achieved_flops), _num(m.peak_share), m.peak_memory_bytes or "",
                         _num(r.estimate.seconds if r.estimate else None),
                         _num(r.measured_over_estimate if ours else None), _num(r.ratio if ours else None),
                         *(_num(end if ours else None) for end in (r.ratio_interval or (None, None))),
                         r.memory_needed])
    return csv_text(header, rows)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


CHECK_TOLERANCE = 0.15     # now / profile within 1 +- this: the machine runs as calibrated


def machine_check_verdict(rows: list[CheckRow]) -> str:
    """One line on `calibrate --check`'s cases: whether the machine runs as the profile says, and
    where it does not (the median now / profile of each regime, and the worst case)."""
    priced = [row for row in rows if row.how != FALLBACK]
    if not priced:
        return "the profile prices none of the check's cases by an entry of its own: calibrate on this machine"
    by_regime: dict[str, list[float]] = {}
    for row in priced:
        by_regime.setdefault(row.regime, []).append(row.ratio)
    summary = ", ".join(f"{regime} x{statistics.median(values):.2f}" for regime, values in by_regime.items())
    off = [row for row in priced if abs(row.ratio - 1) > CHECK_TOLERANCE]
    if not off:
        return f"the machine runs as calibrated (now / profile: {summary}; all within +-{CHECK_TOLERANCE:.0%})"
    worst = max(off, key=lambda row: abs(math.log(row.ratio)))
    direction = "low" if worst.ratio > 1 else "high"
    return (f"the machine does not run as calibrated (now / profile: {summary}; worst {worst.what} "
            f"x{worst.ratio:.2f}): predictions read {direction} where such layers dominate; calibrate again, "
            "or predict when the machine is as quiet as it was then")

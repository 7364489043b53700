"""A sweep as text: the survivors ranked with the Pareto front marked, then the variants over a
budget and the invalid ones with their reasons; CSV, JSON, Markdown, and an HTML page with the
Pareto plot beside the table. Records in (sweep.SweepReport), text out."""
from __future__ import annotations

from dataclasses import asdict

from ..analysis.findings import counts_text
from ..numbers import human
from ..sweep.report import SweepReport
from ..sweep.evaluate import VariantResult
from . import html as html_doc, plots
from ..untrusted import markdown_text
from .text import MARKDOWN, csv_text, json_text, tabulated

FORMATS = ("table", "markdown", "csv", "json")
JSON_SCHEMA_VERSION = 1
LEGEND = ("rank: cheapest first (predicted latency with --profile, else MACs), then fewest params; *: on the "
          "Pareto front of cost against params (no other survivor is cheaper and smaller); MACs, params, "
          "activations per image; peak memory of an inference pass at batch 1, fp32; RF: receptive field of the "
          "last feature map in input pixels; findings: the design review's, by severity.")


def _headers(report: SweepReport) -> list[str]:
    return (["rank", "front", "variant", "params", "MACs", "activations", "peak memory", "RF (px)", "findings"]
            + ([f"latency (batch {report.batch})"] if report.by_latency else []))


def _cells(report: SweepReport, rank: int | str, result: VariantResult) -> list[str]:
    cells = [str(rank), "*" if result.index in report.front else "", result.variant.label(), human(result.params),
             (">=" if result.partial else "") + human(result.macs), human(result.activations),
             human(result.peak_memory_bytes, "B"), str(result.receptive_field or "-"), counts_text(result.findings)]
    if report.by_latency:
        cells.append("-" if result.latency_seconds is None else f"{result.latency_seconds * 1e3:.3g} ms")
    return cells


def table_rows(report: SweepReport) -> list[list[str]]:
    return [_cells(report, rank, result) for rank, result in enumerate(report.ranked, 1)]


def render_sweep(report: SweepReport, fmt: str = "table") -> str:
    if fmt == "json":
        return json_text(sweep_dict(report))
    if fmt == "csv":
        return _csv(report)
    markdown = fmt == "markdown"
    text = markdown_text if markdown else (lambda words: words)   # a spec's names are untrusted in Markdown
    parts = [f"{'## ' if markdown else ''}{text(f'sweep of {report.model}: {report.summary()}')}",
             tabulated(table_rows(report), _headers(report), tablefmt=MARKDOWN if markdown else "simple")
             if report.ranked else "no variant survives",
             text(LEGEND)]
    if report.over_budget:
        parts.append(text("over budget: " + "; ".join(f"{r.variant.label()} ({', '.join(report.exceeded(r))})"
                                                      for r in report.over_budget)))
    if report.invalid:
        parts.append(text("invalid variants:") + "\n" + "\n".join(
            f"- {text(f'{r.variant.label()}: {r.error}')}" for r in report.invalid))
    return "\n\n".join(parts) + "\n"


def _csv(report: SweepReport) -> str:
    header = ["rank", "pareto", "variant", "width", "input_size", *(key for key, _ in report.space.grid), "params",
              "macs", "activations", "peak_memory_bytes", "receptive_field", "findings_error", "findings_warning",
              "findings_info", "latency_seconds", "partial", "status", "reason"]
    rows = []
    for rank, result in [*enumerate(report.ranked, 1), *((None, r) for r in report.over_budget + report.invalid)]:
        arguments = dict(result.variant.arguments)
        status = "ok" if rank is not None else "over budget" if result.ok else "invalid"
        rows.append([rank or "", str(result.index in report.front).lower(), result.variant.label(),
                     result.variant.width or "", result.variant.input_size or "",
                     *(arguments.get(key, "") for key, _ in report.space.grid), result.params, result.macs,
                     result.activations, result.peak_memory_bytes, result.receptive_field or "",
                     *(result.findings.get(s, "") for s in ("error", "warning", "info")),
                     "" if result.latency_seconds is None else result.latency_seconds, str(result.partial).lower(),
                     status, result.error or ", ".join(report.exceeded(result)) if rank is None else ""])
    return csv_text(header, rows)


def sweep_dict(report: SweepReport) -> dict:
    def record(result: VariantResult) -> dict:
        data = asdict(result)
        data["variant"] = {"label": result.variant.label(), "arguments": dict(result.variant.arguments),
                           "width": result.variant.width, "input_size": result.variant.input_size}
        data["pareto"] = result.index in report.front
        return data

    return {"schema_version": JSON_SCHEMA_VERSION, "model": report.model, "spec": report.spec,
            "space_size": report.space.size, "evaluated": len(report.results), "objective": report.objective,
            "latency_batch": report.batch if report.by_latency else None,
            "budgets": {b.key: b.limit for b in report.budgets}, "ranked": [record(r) for r in report.ranked],
            "over_budget": [{**record(r), "exceeded": report.exceeded(r)} for r in report.over_budget],
            "invalid": [record(r) for r in report.invalid], "legend": LEGEND}


def sweep_page(report: SweepReport) -> str:
    """One self-contained HTML page: the Pareto plot beside the ranked table."""
    plot = plots.pareto(report.valid, report.front, report.by_latency)
    body = (f"<h1>Sweep of {html_doc.escape(report.model)}</h1>\n<p>{html_doc.escape(report.summary())}</p>\n"
            f'<figure class="diagram">{html_doc.inline_svg(plot.svg, "pareto")}</figure>\n'
            + html_doc.table(_headers(report), table_rows(report))
            + f'\n<p class="muted">{html_doc.escape(LEGEND)}</p>\n')
    if report.invalid:
        body += "<h2>Invalid variants</h2><ul>" + "".join(
            f"<li>{html_doc.escape(r.variant.label())}: {html_doc.escape(r.error)}</li>" for r in report.invalid) + "</ul>"
    return html_doc.page(f"Sweep of {report.model}", body)

"""The report's plots (matplotlib): records in, a figure out as PNG bytes and SVG text.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot, so no global figure state
and no display backend), and saved with a fixed SVG hash salt and no date, so the same records
give the same files.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

from ..analysis.cost import AUX, CostReport
from ..numbers import human
from ..pipeline import ModelAnalysis
from ..untrusted import visible

PNG_DPI = 110
ACCENT = "#c62828"        # the review's bottleneck marks
MAX_TICK_LABELS = 60
# a published figure's marker: what it measured (metadata.published[].kind, docs/spec-format.md)
PUBLISHED_MARKERS = {"paper": "o", "weights": "s"}
PUBLISHED_LABELS = {"paper": "the paper's network (its reported figure)",
                    "weights": "released weights of this network (e.g. torchvision's)"}
MAIN_COLOUR = "#2b6cb0"
SECOND_COLOUR = "#8fb3de"
BASELINE_COLOUR = "#9e9e9e"


@dataclass
class Plot:
    png: bytes
    svg: str


def _save(figure) -> Plot:
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "inception-analyzer", "svg.fonttype": "none"}):
        png, svg = io.BytesIO(), io.StringIO()
        figure.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
        figure.savefig(svg, format="svg", metadata={"Date": None})
    return Plot(png.getvalue(), svg.getvalue())


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def tick_label(value: float) -> str:
    """A count as an axis label: 2.5G, 10G, 500M, 1k (human() without its trailing zeros)."""
    text = human(value)
    if not text[-1].isalpha():
        return text
    number, prefix = text[:-1], text[-1]
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number + prefix


def _count_axis(axis, log: bool = False) -> None:
    """Counts with SI prefixes; on a log axis, ticks at 1, 2 and 5 times each power of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if log:
        axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda value, _: tick_label(value)))


def _label(text: str) -> str:
    """A name from a spec as matplotlib text: control characters visible, and `$` literal (a
    name holding `$...$` would otherwise be parsed, or refused, as mathematical notation)."""
    return visible(str(text)).replace("$", r"\$")


def _block_ticks(axes, names: list[str]) -> None:
    """Block names under the x axis: every one where they fit, else MAX_TICK_LABELS evenly spaced
    (matplotlib lays out each label: ten thousand of them took minutes, and none could be read)."""
    step = max(1, -(-len(names) // MAX_TICK_LABELS))
    shown = list(range(0, len(names), step))
    axes.set_xticks(shown, [_label(names[i]) for i in shown], rotation=90,
                    fontsize=7 if len(shown) > 25 else 8)


# ----------------------------------------------------------------------------- per model
def macs_per_stage(report: CostReport) -> Plot:
    """Bars of MACs and params per stage (grid size), inference path, in network order."""
    stages = [s for s in report.stages if s.role != AUX]
    names = [s.name for s in stages]
    figure = _figure(9, 3.4)
    macs_axes, params_axes = figure.subplots(1, 2)
    # floats: matplotlib cannot hold counts past 2**63 (a spec may have 10^21 MACs)
    bars = macs_axes.bar(names, [float(s.macs) for s in stages], color=MAIN_COLOUR)
    macs_axes.bar_label(bars, [f"{100 * s.macs_share:.1f}%" for s in stages], fontsize=8)
    macs_axes.set_title(f"MACs per stage (total {human(report.totals.macs)} per image)", fontsize=10)
    params_axes.bar(names, [float(s.params) for s in stages], color=SECOND_COLOUR)
    aux = report.totals.params_aux
    params_axes.set_title("params per stage" + (f" (aux heads apart: {human(aux)})" if aux else ""), fontsize=10)
    for axes in (macs_axes, params_axes):
        _count_axis(axes.yaxis)
        axes.tick_params(axis="x", labelrotation=45, labelsize=8)
        axes.set_xlabel("stage (output grid)", fontsize=9)
        axes.margins(y=0.15)
    return _save(figure)


def representation_along_depth(report: CostReport, bottlenecks: dict[str, str]) -> Plot:
    """Elements of each block's output along the inference path (log scale), the narrowest tensor
    inside each block, stage boundaries, and the blocks in `bottlenecks` (block -> short label) marked."""
    blocks = [b for b in report.blocks if b.role != AUX]
    size_of = {layer.path: layer.activations for layer in report.layers}  # elements of each output
    narrowest: dict[str, int] = {}
    for layer in report.layers:
        if layer.role != AUX:
            narrowest[layer.block] = min(narrowest.get(layer.block, layer.activations), layer.activations)
    outputs = [float(size_of[b.output_path]) for b in blocks]
    x = list(range(len(blocks)))
    figure = _figure(10, 4.2)
    axes = figure.subplots()
    axes.plot(x, outputs, marker="o", markersize=3, color=MAIN_COLOUR, label="block output")
    axes.plot(x, [float(narrowest[b.name]) for b in blocks], linestyle=":", color=SECOND_COLOUR,
              label="narrowest tensor inside the block")
    axes.set_yscale("log")
    _count_axis(axes.yaxis, log=True)
    stage_of = {layer.block: layer.stage for layer in report.layers}
    for i in x[1:]:
        if stage_of[blocks[i].name] != stage_of[blocks[i - 1].name]:
            axes.axvline(i - 0.5, color="#bbbbbb", linewidth=0.8, zorder=0)
    marked = [i for i in x if blocks[i].name in bottlenecks]
    if marked:
        axes.scatter(marked, [outputs[i] for i in marked], s=90, facecolors="none",
                     edgecolors=ACCENT, linewidths=1.8, zorder=3, label="bottleneck flagged by the review")
        for i in marked:
            axes.annotate(_label(bottlenecks[blocks[i].name]), (i, outputs[i]), xytext=(0, 12), ha="center",
                          textcoords="offset points", fontsize=8, color=ACCENT)
    _block_ticks(axes, [b.name for b in blocks])
    axes.set_ylabel("elements (C x H x W)", fontsize=9)
    axes.set_title("representation size along depth (grey lines: grid changes)", fontsize=10)
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(axis="y", color="#eeeeee")
    return _save(figure)


def receptive_field_growth(report: ModelAnalysis) -> Plot:
    """Receptive field (largest path) at each block's output against the input size."""
    blocks = [b for b in report.blocks if b.role != AUX and b.output_path in report.receptive_fields]
    fields = [report.receptive_fields[b.output_path] for b in blocks]
    x = list(range(len(blocks)))
    figure = _figure(10, 3.6)
    axes = figure.subplots()
    square = all(f.size[0] == f.size[1] for f in fields)
    axes.plot(x, [float(f.size[0]) for f in fields], marker="o", markersize=3, color=MAIN_COLOUR,
              label="receptive field" if square else "height")
    if not square:
        axes.plot(x, [float(f.size[1]) for f in fields], marker="s", markersize=3, color=SECOND_COLOUR,
                  label="width")
    _, height, width = report.input
    axes.axhline(float(height), color="#888888", linestyle="--", linewidth=1, label=f"input ({height}x{width})")
    axes.set_yscale("log")
    _count_axis(axes.yaxis, log=True)
    _block_ticks(axes, [b.name for b in blocks])
    axes.set_ylabel("receptive field (input pixels)", fontsize=9)
    axes.set_title("receptive field growth, block by block (largest path)", fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(axis="y", color="#eeeeee")
    return _save(figure)


# ----------------------------------------------------------------------------- across models
def accuracy_vs_cost(rows) -> Plot:
    """Published top-1 and top-5 against MACs (log), marker area by params, one point per model."""
    figure = _figure(10, 4.2)
    panels = figure.subplots(1, 2, sharex=True)
    largest = max((row.params for row in rows), default=1)
    for axes, metric, label in ((panels[0], "top1", "top-1"), (panels[1], "top5", "top-5")):
        # a model of no MACs has no place on the log axis: it is listed with the unpublished ones
        shown = [row for row in rows if row.published and getattr(row.published, metric) is not None and row.macs > 0]
        missing = [_label(row.model) for row in rows if row not in shown]
        values = [getattr(row.published, metric) for row in shown]
        span = (max(values) - min(values) if values else 0) or 1.0
        if not shown:
            axes.text(0.5, 0.5, f"no published {label} figure", transform=axes.transAxes, ha="center",
                      color="#666666")
        placed: list[tuple[float, float]] = []  # (log10 MACs, accuracy) of the labels so far
        for row, value in sorted(zip(shown, values), key=lambda item: -item[1]):
            area = 40 + 900 * row.params / largest  # points squared
            axes.scatter(float(row.macs), value, s=area, alpha=0.55, color=BASELINE_COLOUR if row.baseline else MAIN_COLOUR,
                         marker=PUBLISHED_MARKERS[row.published.kind], edgecolors="#333333", linewidths=0.6)
            # labels of nearby points (within a third of a decade and 6% of the range) step down a line
            near = sum(1 for x, y in placed if abs(x - math.log10(row.macs)) < 0.33 and abs(y - value) < 0.06 * span)
            placed.append((math.log10(row.macs), value))
            axes.annotate(f"{_label(row.model)}\n{human(row.params)} params", (float(row.macs), value),
                          xytext=(math.sqrt(area / math.pi) + 3, -20 * near), textcoords="offset points",
                          fontsize=7.5, va="center",
                          arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.6} if near else None)
        axes.set_xscale("log")
        _count_axis(axes.xaxis, log=True)
        axes.set_xlabel("MACs per image (log scale)", fontsize=9)
        axes.set_ylabel(f"published {label} accuracy (%)", fontsize=9)
        unplaced = f"\nnot shown (no published figure, or no MACs): {', '.join(missing)}" if missing else ""
        axes.set_title(f"{label}; marker area: params{unplaced}",
                       fontsize=9)
        axes.margins(x=0.25, y=0.18)
        axes.grid(color="#eeeeee")
    _published_legend(figure, rows)
    return _save(figure)


def _published_legend(figure, rows) -> None:
    """Which marker means which kind of figure: the paper's own network, or released weights."""
    from matplotlib.lines import Line2D

    kinds = sorted({row.published.kind for row in rows if row.published}, key=list(PUBLISHED_MARKERS).index)
    handles = [Line2D([], [], linestyle="", marker=PUBLISHED_MARKERS[kind], markersize=8, color=MAIN_COLOUR,
                      alpha=0.55, markeredgecolor="#333333", label=PUBLISHED_LABELS[kind]) for kind in kinds]
    if any(row.baseline for row in rows):
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=8, color=BASELINE_COLOUR, alpha=0.55,
                              markeredgecolor="#333333", label="the baseline"))
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)


# ----------------------------------------------------------------------------- sweeps
SEVERITY_MARKERS = {"error": ("X", "#c62828"), "warning": ("^", "#e65100"), "info": ("o", MAIN_COLOUR),
                    None: ("o", "#7cb342")}


def pareto(points, front: set[int], by_latency: bool) -> Plot:
    """A sweep's valid variants: cost (predicted latency, or MACs) against params, both on log
    scales, each marker by the worst severity the review found, the Pareto front joined."""
    from matplotlib.lines import Line2D

    figure = _figure(9, 5)
    axes = figure.subplots()

    def cost(result) -> float:
        return result.latency_seconds * 1e3 if by_latency else float(result.macs)

    # one scatter per marker and edge (a sweep has thousands of points; a call per point takes seconds)
    groups: dict[tuple, list] = {}
    for result in points:
        worst = next((severity for severity, n in result.findings.items() if n), None)
        groups.setdefault((worst, result.index in front), []).append(result)
    seen = {worst for worst, _ in groups}
    for (worst, on_the_front), members in groups.items():
        marker, colour = SEVERITY_MARKERS[worst]
        axes.scatter([float(r.params) for r in members], [cost(r) for r in members], marker=marker, color=colour,
                     s=28, alpha=0.6, edgecolors="#333333" if on_the_front else "none", linewidths=0.8)
    on_front = sorted((r for r in points if r.index in front), key=lambda r: r.params)
    if on_front:
        axes.plot([float(r.params) for r in on_front], [cost(r) for r in on_front],
                  color="#333333", linewidth=1, zorder=0)
    axes.set_xscale("log")
    axes.set_yscale("log")
    _count_axis(axes.xaxis, log=True)
    if not by_latency:
        _count_axis(axes.yaxis, log=True)
    axes.set_xlabel("params (log scale)", fontsize=9)
    axes.set_ylabel("predicted latency of a batch, ms (log scale)" if by_latency else "MACs per image (log scale)", fontsize=9)
    axes.set_title(f"{len(points)} variants; the line joins the Pareto front ({len(front)})", fontsize=10)
    handles = [Line2D([], [], linestyle="", marker=SEVERITY_MARKERS[s][0], color=SEVERITY_MARKERS[s][1],
                      label=f"worst finding: {s}" if s else "no finding") for s in ("error", "warning", "info", None)
               if s in seen]
    axes.legend(handles=handles, fontsize=8, loc="best")
    axes.grid(color="#eeeeee")
    return _save(figure)

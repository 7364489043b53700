"""The design-review report: Markdown and one self-contained HTML page from the same content.

For each model: a summary, the per-stage table, the block diagram, the review's findings with
their suggested changes, the receptive-field growth, and plots (MACs per stage, representation
size along depth with the review's bottlenecks marked); across the models: the comparison table
and published accuracy against MACs and params. Figures come from the records (cost report,
receptive fields, findings); nothing is recomputed here.

Layout of the output directory:
    report.md, report.html, figures/<key>-*.png (plots), figures/<key>-blocks*.svg (diagrams;
    .dot when graphviz's `dot` is missing), where a model's key is its place in the report and a
    slug of its name (`m1-inception_v3`): two models of one name never share a file, and no name
    can reach outside the directory. The HTML holds every figure inline and needs no other file.

Every text from a spec or a model enters the document through untrusted.markdown_text or
markdown_code; ids and file names come from keys, never from names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..version import __version__
from ..analysis.cost import AUX, last_feature_map
from ..analysis.principles import bottleneck_places
from ..analysis.findings import counts_by_severity, counts_text, most_serious_first
from ..numbers import human
from ..pipeline import ModelAnalysis
from ..untrusted import markdown_code, markdown_text, slug
from . import plots
from .compare import LEGEND, NUMERIC, ComparisonRow, comparison_rows, primary_published, table_rows
from .diagram import Diagram, build_diagram, diagram_source, render_dot
from .document import Bullets, Contents, Details, Figure, Heading, Note, Paragraph, Table, to_html, to_markdown
from .html import inline_svg
from .review import effect_text, figure_value
from .tables import cost_table, rf_table, totals_table

MARKDOWN_NAME, HTML_NAME, FIGURES = "report.md", "report.html", "figures"
MAX_REPORT_DIAGRAM_NODES = 600  # Inception-ResNet-v2, every module expanded: 314
PRINCIPLES = [  # the Rethinking paper's §2 principles and the sections the review cites
    "P1: avoid representational bottlenecks, especially early in the network",
    "P2: higher-dimensional representations are easier to process locally (wider coarse grids)",
    "P3: spatial aggregation can be done over lower-dimensional embeddings (1x1 reduction first)",
    "P4: balance the width and the depth of the network",
    "§3: factorize large convolutions (§3.1 into smaller ones, §3.2 into asymmetric 1xn + nx1)",
    "§4: auxiliary classifiers act as regularizers; §5: reduce the grid efficiently (conv and pool in parallel)",
]


@dataclass
class Report:
    title: str
    blocks: list
    files: dict[str, bytes | str] = field(default_factory=dict)  # relative path -> content

    def markdown(self) -> str:
        return to_markdown(self.blocks)

    def html(self) -> str:
        return to_html(self.title, self.blocks)

    def contents(self) -> dict[str, bytes | str]:
        """Every file of the report by its path relative to the report's directory."""
        return {**self.files, MARKDOWN_NAME: self.markdown(), HTML_NAME: self.html()}


def model_keys(models: list[ModelAnalysis]) -> list[str]:
    """Each model's key for file names, anchors and SVG ids: its place and a slug of its name."""
    return [f"m{index}-{slug(model.name)}" for index, model in enumerate(models, 1)]


def _heading(level: int, text: str, key: str = "") -> Heading:
    """A heading of our own words (`text`), its anchor made unique by the model's key."""
    return Heading(level, text, slug(f"{key} {text}", limit=80))


def _finding_title(finding) -> str:
    check = finding.check if finding.check.startswith(finding.principle + ".") else \
        f"{finding.principle} {finding.check}"
    return f"{markdown_text(finding.severity)} {markdown_text(check)} at {markdown_code(finding.path)}"


def finding_note(finding, model: ModelAnalysis) -> Note:
    lines = [markdown_text(finding.message)]
    if finding.suggestion:
        lines.append(f"Suggested change: {markdown_text(finding.suggestion)}.")
    if finding.effect:
        lines.append(f"Effect of the change: {markdown_text(effect_text(finding.effect, model.cost.totals))}.")
    if finding.figures:
        lines.append("Measured: " + markdown_text("; ".join(f"{k} = {figure_value(v)}"
                                                             for k, v in finding.figures.items())))
    return Note(finding.severity, _finding_title(finding), lines)


# ----------------------------------------------------------------------------- sections
def _summary_item(model: ModelAnalysis) -> str:
    cost, meta = model.cost, model.cost.metadata
    t = cost.totals
    c, h, w = cost.input
    source = f" ({markdown_text(str(meta['paper']))}, {markdown_text(str(meta.get('year')))})" \
        if meta.get("paper") else ""
    aux = f" ({human(t.params_aux)} in auxiliary heads, training only)" if t.params_aux else ""
    at = last_feature_map(cost)
    field = model.receptive_fields.get(at) if at else None
    rf = f"; receptive field {field.size[0]}x{field.size[1]} px at {markdown_code(at)}" if field else ""
    published = primary_published(meta)
    accuracy = ""
    if published:
        figures = ", ".join(f"{name} {value:g}%" for name, value in (("top-1", published.top1),
                                                                    ("top-5", published.top5)) if value is not None)
        accuracy = f" Published: {figures} ({markdown_text(published.source)})."
    main_stages = [s for s in cost.stages if s.role != AUX]
    heaviest = max(main_stages, key=lambda s: s.macs)
    partial = (f" (a lower bound: {len(t.unmodelled)} imported op(s) not modelled, their MACs unknown)"
               if t.unmodelled else "")
    return (f"**{markdown_text(model.name)}**{source}: {human(t.params)} params{aux}, {human(t.macs)} MACs{partial} per image at "
            f"{h}x{w}x{c} (inference), {human(t.activations)} activations, depth {t.depth}{rf}.{accuracy} "
            f"Heaviest stage: {markdown_text(heaviest.name)} with {100 * heaviest.macs_share:.1f}% of the MACs. "
            f"Review findings: {counts_text(counts_by_severity(model.findings))}.")


def _comparison_section(rows: list[ComparisonRow], baseline_added: bool, files: dict) -> list:
    headers, text_rows, notes = table_rows(rows)
    plot = plots.accuracy_vs_cost(rows)
    png = f"{FIGURES}/comparison-accuracy-vs-cost.png"
    files[png] = plot.png
    baseline = next(row for row in rows if row.baseline)
    added = ([Paragraph(f"{markdown_text(baseline.model)} is the comparison's baseline (`--baseline`), added for "
                        "the ratios: it is not one of the reviewed models, and has no section of its own.")]
             if baseline_added else [])
    return [_heading(2, "Comparison"), *added,
            Table(headers, text_rows, NUMERIC, ["baseline" if r.baseline else "" for r in rows]),
            Paragraph(LEGEND, muted=True), Bullets([markdown_text(note) for note in notes]),
            Figure("Published accuracy against MACs per image (log scale); marker area is proportional to "
                   "params; circles are the papers' own networks, squares released weights of the network; the "
                   "baseline in grey.", png, inline_svg(plot.svg, "comparison"))]


def _stage_section(model: ModelAnalysis, key: str, files: dict) -> list:
    headers, rows = cost_table(model, "stage", False)
    numeric = [False, True, False, True, True, True, True, True][: len(headers)]  # the shape is text
    totals = totals_table(model)
    plot = plots.macs_per_stage(model.cost)
    png = f"{FIGURES}/{key}-macs-per-stage.png"
    files[png] = plot.png
    return [_heading(3, "Stages", key),
            Paragraph("A stage is the grid the layers' outputs are on; `head` is what follows the last grid, "
                      "`aux` the auxiliary heads (training only). RF: receptive field at the stage's output.",
                      muted=True),
            Table(headers, [[str(c) for c in row] for row in rows], numeric),
            Table(["total", ""], totals, [False, True]),
            Figure(f"{markdown_text(model.name)}: MACs and params per stage (inference path).", png,
                   inline_svg(plot.svg, f"{key}-stages"))]


def _diagram_figure(model: ModelAnalysis, key: str, source: str, suffix: str, how: str, files: dict) -> Figure:
    svg = render_dot(source, "svg")
    if svg is None:
        dot_file = f"{FIGURES}/{key}-{suffix}.dot"
        files[dot_file] = source
        return Figure(f"graphviz's `dot` is not installed, so this diagram is not drawn; its DOT source is "
                      f"{markdown_code(dot_file)}.", None, None)
    svg_file = f"{FIGURES}/{key}-{suffix}.svg"
    files[svg_file] = svg
    return Figure(f"{markdown_text(model.name)}: blocks{how}; fill = share of the inference MACs, border = review finding "
                  "(the header lists findings about stages or the whole model), dashed = auxiliary head.",
                  svg_file, inline_svg(svg.decode(), f"{key}-{suffix}"), "diagram")


def _diagram_section(model: ModelAnalysis, key: str, files: dict) -> list:
    collapsed = build_diagram(model, "block", collapse=True)
    blocks = [_heading(3, "Diagram", key)]
    if not collapsed.runs:  # nothing repeats: the one picture shows every module
        return blocks + [_drawn_or_noted(model, key, collapsed, "blocks", "", files)]
    expanded = build_diagram(model, "block", collapse=False)
    return blocks + [
        _drawn_or_noted(model, key, collapsed, "blocks", ", consecutive instances of a module drawn once", files),
        Details("Every module expanded, with its branches",
                [_drawn_or_noted(model, key, expanded, "blocks-expanded", ", every module with its branches", files)])]


def _drawn_or_noted(model: ModelAnalysis, key: str, diagram: Diagram, suffix: str, how: str, files: dict) -> Figure:
    """The diagram, or where it has more nodes than a page can show (and graphviz lays out in
    seconds), a note saying how to draw it on its own."""
    if len(diagram.nodes) > MAX_REPORT_DIAGRAM_NODES:
        return Figure(f"{markdown_text(model.name)}: blocks{how}: {len(diagram.nodes):,} nodes, more than a page can "
                      f"show; {markdown_code('inception-analyzer diagram SPEC --collapse -o FILE.svg')} draws it.",
                      None, None)
    return _diagram_figure(model, key, diagram_source(diagram), suffix, how, files)


def _findings_section(model: ModelAnalysis, key: str) -> list:
    blocks = [_heading(3, "Review findings", key)]
    if not model.findings:
        return blocks + [Paragraph("The review finds nothing to report.")]
    blocks.append(Paragraph(f"{counts_text(counts_by_severity(model.findings))} findings, most serious "
                            "first. Each finding names the layer or block it concerns (marked in the diagram), "
                            "what was measured, and where the review has one, a suggested change with its "
                            "effect on the whole model."))
    blocks += [finding_note(f, model) for f in most_serious_first(model.findings)]
    return blocks


def _receptive_field_section(model: ModelAnalysis, key: str, files: dict) -> list:
    headers, rows = rf_table(model, "block")
    plot = plots.receptive_field_growth(model)
    png = f"{FIGURES}/{key}-receptive-field.png"
    files[png] = plot.png
    return [_heading(3, "Receptive field growth", key),
            Paragraph("Per block output, in input pixels: the largest and smallest field over the paths, "
                      "the effective stride and padding (unit 0 starts at pixel -padding), and whether the "
                      "merged paths are centred alike (docs/receptive-fields.md).", muted=True),
            Table(headers, [[str(c) for c in row] for row in rows], [False] + [True] * (len(headers) - 1)),
            Figure(f"{markdown_text(model.name)}: receptive field at each block's output against the input "
                   "size.", png, inline_svg(plot.svg, f"{key}-rf"))]


def bottlenecks(model: ModelAnalysis) -> dict[str, str]:
    """Block -> label, for the review's representational-bottleneck findings (see bottleneck_places)."""
    block_of = {layer.path: layer.block for layer in model.cost.layers}
    blocks = {b.name for b in model.cost.blocks}
    marks: dict[str, list[str]] = {}
    for finding in model.findings:
        for path in bottleneck_places(finding):
            block = path if path in blocks else block_of.get(path)
            if block is not None:
                marks.setdefault(block, []).append(finding.check.split(".")[-1])
    return {block: ", ".join(dict.fromkeys(labels)) for block, labels in marks.items()}


def _representation_section(model: ModelAnalysis, key: str, files: dict) -> list:
    marks = bottlenecks(model)
    plot = plots.representation_along_depth(model.cost, marks)
    png = f"{FIGURES}/{key}-representation.png"
    files[png] = plot.png
    flagged = (f"Circled: blocks where the review flags a representational bottleneck (P1, or a "
               f"pool-then-conv reduction, §5): {', '.join(markdown_code(b) for b in marks)}." if marks
               else "The review flags no representational bottleneck in this model.")
    return [_heading(3, "Representation size along depth", key),
            Figure(f"{markdown_text(model.name)}: elements (C x H x W) of each block's output along the inference path, and the "
                   f"narrowest tensor inside each block. {flagged}", png,
                   inline_svg(plot.svg, f"{key}-representation"))]


def build_report(models: list[ModelAnalysis], baseline: ModelAnalysis) -> Report:
    names = [m.name for m in models]
    title = f"Design review: {', '.join(names)}"
    files: dict[str, bytes | str] = {}
    rows = comparison_rows(models, baseline)
    blocks: list = [
        Heading(1, markdown_text(title), "top"),
        Paragraph(f"Written by inception-analyzer {__version__} from {', '.join(markdown_code(m.spec) for m in models)}. "
                  "Figures are exact and per image: params are learnable parameters, MACs are the "
                  "multiply-accumulates of conv and linear layers on the inference path (the papers' "
                  "multiply-adds), activations are output elements (docs/conventions.md).", muted=True),
        Contents(),
        _heading(2, "Summary"),
        Bullets([_summary_item(m) for m in models]),
        Paragraph("The review reads each network against the Rethinking paper's design principles "
                  "(Szegedy et al., CVPR 2016): " + "; ".join(PRINCIPLES) + "."),
    ]
    blocks += _comparison_section(rows, all(m is not baseline for m in models), files)
    for model, key in zip(models, model_keys(models)):
        blocks.append(Heading(2, markdown_text(model.name), key))
        blocks += _stage_section(model, key, files)
        blocks += _diagram_section(model, key, files)
        blocks += _findings_section(model, key)
        blocks += _receptive_field_section(model, key, files)
        blocks += _representation_section(model, key, files)
    return Report(title, blocks, files)

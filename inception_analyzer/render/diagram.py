"""Graphviz diagrams of a network, with its cost figures and its review findings on the nodes.

A renderer: the graph gives the structure, the cost report every figure (drawn nodes that hold
several layers are rolled up with `analysis.cost.rollup`), the review its findings. Two levels:

- block: one node per module instance. A block whose branches merge (an Inception module) is a
  cluster holding one node per member (`branch5x5_1`, `avgpool`, `concat`), so its branches lie
  side by side; any other block (a stem conv, a pool, VGG's `features.3`) is one node.
- layer: one node per op, nested in clusters of the module instances that hold them.

With `collapse`, consecutive instances of one module template become a single node
("Mixed_6b..6e x4", figures summed), which keeps a 300-layer network legible at either level.
Fill colour is the node's share of the inference MACs (the darkest fill is the largest share in
the picture); a coloured border and a line in the label mark the node a review finding concerns.

`dot` (Debian's graphviz) lays the diagram out; where it is missing, the DOT source is written
instead and the caller is told so.
"""
from __future__ import annotations

import html
import math
import shutil
import subprocess
from dataclasses import dataclass, field

from ..analysis.cost import AUX, CostReport, GroupCost, LayerCost, rollup
from ..errors import AnalyzerError
from ..graph import INPUT, Graph
from ..pipeline import ModelAnalysis
from ..untrusted import dot_escape, dot_identifier, visible
from ..analysis.findings import most_serious_first, worst_severity
from ..numbers import human, shape_text

LEVELS = ("block", "layer")

# ColorBrewer YlOrRd, 9 classes: light = small share of the MACs, dark = large
MACS_FILLS = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
DARK_FILLS = frozenset(MACS_FILLS[6:])  # white text reads better on these
NO_MACS_FILL = "#ffffff"
AUX_FILL = "#eeeeee"
SEVERITY_COLOURS = {"error": "#c62828", "warning": "#e65100", "info": "#1565c0"}
CLUSTER_FILLS = ("#f4f6f8", "#ffffff")  # alternate with nesting depth
FONT = "Helvetica"
MAX_KINDS_IN_LABEL = 3
MAX_TEXT = 300                # characters of one finding's text on a node or in the legend
MAX_TOOLTIP_FINDINGS = 12
MAX_LEGEND_FINDINGS = 12
DOT_SECONDS = 120             # a layout taking longer is refused, not waited for


class DiagramError(AnalyzerError):
    kind = "diagram error"


@dataclass
class DiagramNode:
    id: str
    title: str                 # the name shown in bold
    kind: str                  # what it is: 'BasicConv2d: conv 3x3/2', 'InceptionC x4'
    cost: GroupCost            # its figures, rolled up from the layer records it holds
    clusters: tuple[str, ...]  # enclosing clusters, outermost first
    branch: str | None = None  # the branch of a module it lies on: drawn as one column
    findings: list = field(default_factory=list)


@dataclass
class DiagramCluster:
    id: str
    title: str
    kind: str
    cost: GroupCost
    parent: str | None
    findings: list = field(default_factory=list)
    branch_heads: list[str] = field(default_factory=list)  # first node of each branch, left to right


@dataclass
class Diagram:
    """What a diagram shows, before any layout: nodes, clusters, edges and the colour scale."""

    model: str
    level: str
    input_shape: list[int]          # [C, H, W]
    title: str
    nodes: dict[str, DiagramNode]
    clusters: dict[str, DiagramCluster]
    edges: list[tuple[str, str]]
    max_macs_share: float           # the largest node share: the darkest fill
    unplaced_findings: list         # findings about the model as a whole (no node to hold them)
    runs: dict[str, list[str]] = field(default_factory=dict)  # collapsed node -> the blocks it stands for


# ----------------------------------------------------------------------------- structure
def _repeated_runs(graph: Graph, report: CostReport) -> dict[str, str]:
    """block -> run name, for consecutive main-path blocks of one signature (_block_signature)."""
    layers_of: dict[str, list[LayerCost]] = {}
    for record in report.layers:
        layers_of.setdefault(record.block, []).append(record)
    runs: list[list[str]] = []
    previous = None
    for block in report.blocks:
        signature = _block_signature(graph, block, layers_of[block.name])
        if signature is not None and signature == previous:
            runs[-1].append(block.name)
        else:
            runs.append([block.name])
        previous = signature
    return {name: _run_name(run) for run in runs if len(run) > 1 for name in run}


def _block_signature(graph: Graph, block: GroupCost, layers: list[LayerCost]) -> tuple | None:
    """What makes consecutive blocks 'the same block on the same grid and width': their module
    template (for a block that is no template instance, its ops with their arguments), the shape
    entering them and the shape leaving them. So ResNet's first bottleneck of a stage, which
    widens and strides, stands apart from the stage's repeated ones. Auxiliary heads never repeat."""
    if block.role == AUX:
        return None
    scope = graph.scopes.get(block.name)
    kind = scope.template if scope is not None and scope.template else tuple((r.op, r.args) for r in layers)
    return kind, tuple(layers[0].input_shapes[0]) if layers[0].input_shapes else (), tuple(block.output_shape)


def _run_name(blocks: list[str]) -> str:
    """['Mixed_6b', ..., 'Mixed_6e'] -> 'Mixed_6b..6e x4' (the shared stem up to '_' or '.' is dropped)."""
    first, last = blocks[0], blocks[-1]
    cut = 0
    for i, (a, b) in enumerate(zip(first, last)):
        if a != b:
            break
        if a in "_.":
            cut = i + 1
    return f"{first}..{last[cut:]} x{len(blocks)}"


def _merging_blocks(graph: Graph) -> set[str]:
    return {node.block for node in graph.layers() if node.op.merges}


def _branches(graph: Graph) -> dict[str, str]:
    """layer path -> its branch ('Mixed_5b.concat#1'): the layers of a block that feed input i of
    the block's last merge, walking back inside the block (a nested merge stays in its branch)."""
    branch_of: dict[str, str] = {}
    for node in reversed(list(graph.layers())):
        if not node.op.merges or node.path in branch_of:
            continue
        for index, tail in enumerate(node.inputs):
            stack = [tail]
            while stack:
                path = stack.pop()
                if path == INPUT or path in branch_of or graph.node(path).block != node.block:
                    continue
                branch_of[path] = f"{node.path}#{index}"
                stack.extend(graph.node(path).inputs)
    return branch_of


def _member(block: str, path: str) -> str:
    """The module instance (or op) directly inside `block` that holds the layer at `path`."""
    if path == block:
        return path
    return f"{block}.{path[len(block) + 1:].split('.')[0]}"


def _scope_chain(path: str, scopes: set[str]) -> tuple[str, ...]:
    parts = path.split(".")
    prefixes = (".".join(parts[:k]) for k in range(1, len(parts)))
    return tuple(p for p in prefixes if p in scopes)


def _relative(path: str, chain: tuple[str, ...]) -> str:
    """A name inside its innermost cluster: 'branch5x5_2' in cluster 'Mixed_5b'."""
    return path[len(chain[-1]) + 1:] if chain and path.startswith(chain[-1] + ".") else path


def _op_text(rec: LayerCost) -> str:
    return f"{rec.op} {rec.args}".strip()


def _kind_text(graph: Graph, node_id: str, records: list[LayerCost]) -> str:
    """'BasicConv2d: conv 3x3/2' for a module instance, 'maxpool 3x3/2' for a single op."""
    if len(records) == 1 and records[0].path == node_id:
        return _op_text(records[0])
    shown = [_op_text(r) for r in records if r.weighted] or [_op_text(r) for r in records]
    if len(shown) > MAX_KINDS_IN_LABEL:
        shown = shown[:MAX_KINDS_IN_LABEL] + [f"+{len(shown) - MAX_KINDS_IN_LABEL} more"]
    scope = graph.scopes.get(node_id)
    text = ", ".join(shown)
    return f"{scope.template}: {text}" if scope is not None and scope.template else text


def _block_grouping(graph: Graph, report: CostReport, runs: dict[str, str]):
    """Node and enclosing clusters of each layer at block level."""
    merging = _merging_blocks(graph) - set(runs)

    def node_of(rec: LayerCost) -> str:
        if rec.block in runs:
            return runs[rec.block]
        return _member(rec.block, rec.path) if rec.block in merging else rec.block

    def clusters_of(rec: LayerCost) -> tuple[str, ...]:
        return (rec.block,) if rec.block in merging else ()

    return node_of, clusters_of


def _layer_grouping(graph: Graph, report: CostReport, runs: dict[str, str]):
    """Node and enclosing clusters of each layer at layer level: clusters are the module
    instances holding more than one op."""
    all_scopes = set(graph.scopes)
    layers_in_scope: dict[str, int] = {}
    for rec in report.layers:
        for scope in _scope_chain(rec.path, all_scopes):
            layers_in_scope[scope] = layers_in_scope.get(scope, 0) + 1
    big_scopes = {s for s, n in layers_in_scope.items() if n > 1}

    def node_of(rec: LayerCost) -> str:
        return runs.get(rec.block, rec.path)

    def clusters_of(rec: LayerCost) -> tuple[str, ...]:
        return () if rec.block in runs else _scope_chain(rec.path, big_scopes)

    return node_of, clusters_of


def build_diagram(analysis: ModelAnalysis, level: str = "block", collapse: bool = False) -> Diagram:
    """Decide what to draw: nodes with their figures, clusters, edges, findings on their nodes."""
    graph, report, findings = analysis.graph, analysis.cost, analysis.findings
    if level not in LEVELS:
        raise DiagramError(f"--level takes one of {', '.join(LEVELS)}, got '{level}'")
    runs = _repeated_runs(graph, report) if collapse else {}
    grouping = _block_grouping if level == "block" else _layer_grouping
    node_of, clusters_of = grouping(graph, report, runs)
    node_id_of = {rec.path: node_of(rec) for rec in report.layers}
    records_of: dict[str, list[LayerCost]] = {}
    for rec in report.layers:
        records_of.setdefault(node_id_of[rec.path], []).append(rec)
    run_blocks: dict[str, list[str]] = {}
    for block, run in runs.items():
        run_blocks.setdefault(run, []).append(block)

    branch_of = _branches(graph)
    nodes: dict[str, DiagramNode] = {}
    for cost in rollup(report.layers, lambda r: node_id_of[r.path]):
        records = records_of[cost.name]
        chain = clusters_of(records[0])
        if cost.name in run_blocks:
            first = run_blocks[cost.name][0]
            scope = graph.scopes.get(first)
            what = scope.template if scope is not None and scope.template else \
                _kind_text(graph, first, [r for r in records if r.block == first])
            kind = f"{what} x{len(run_blocks[cost.name])}"
        else:
            kind = _kind_text(graph, cost.name, records)
        nodes[cost.name] = DiagramNode(cost.name, _relative(cost.name, chain), kind, cost, chain,
                                       None if cost.name in run_blocks else branch_of.get(records[0].path))

    chains = {rec.path: clusters_of(rec) for rec in report.layers}
    clusters: dict[str, DiagramCluster] = {}
    for depth in range(max((len(c) for c in chains.values()), default=0)):
        # one roll-up per nesting depth over all layers, so that shares are of the whole network
        by_cluster = rollup(report.layers, lambda r: chains[r.path][depth] if len(chains[r.path]) > depth else "")
        for cost in by_cluster:
            if not cost.name:
                continue
            chain = chains[cost.output_path][:depth]
            scope = graph.scopes.get(cost.name)
            kind = scope.template if scope is not None and scope.template else ""
            clusters[cost.name] = DiagramCluster(cost.name, _relative(cost.name, chain), kind, cost,
                                                 chain[-1] if chain else None)

    _mark_branch_heads(nodes, clusters)

    edges: list[tuple[str, str]] = []
    seen = set()
    for node in graph.layers():
        target = node_id_of[node.path]
        for source_path in node.inputs:
            source = INPUT if source_path == INPUT else node_id_of[source_path]
            if source != target and (source, target) not in seen:
                seen.add((source, target))
                edges.append((source, target))

    unplaced = _place_findings(findings, nodes, clusters, node_id_of, runs)
    main_shares = [n.cost.macs_share for n in nodes.values() if n.cost.role != AUX]
    c, h, w = report.input
    t = report.totals
    title = (f"{report.model}: {level} level{', repeated modules collapsed' if runs else ''}. "
             f"Input {h}x{w}x{c}; {human(t.params)} params; {human(t.macs)} MACs per image (inference)")
    return Diagram(report.model, level, report.input, title, nodes, clusters, edges, max(main_shares, default=0.0),
                   unplaced, run_blocks)


def _mark_branch_heads(nodes: dict[str, DiagramNode], clusters: dict[str, DiagramCluster]) -> None:
    """Record each module's branch heads in concat order, so they can be drawn on one row."""
    heads: dict[str, dict[int, DiagramNode]] = {}
    for node in nodes.values():  # in execution order: a branch's first node comes first
        if node.branch is None or not node.clusters:
            continue
        merge, index = node.branch.rsplit("#", 1)
        heads.setdefault(merge, {}).setdefault(int(index), node)
    for by_index in heads.values():
        row = [by_index[i] for i in sorted(by_index)]
        owner = row[0].clusters[-1]
        if len(row) > 1 and all(n.clusters[-1] == owner for n in row):
            clusters[owner].branch_heads = [n.id for n in row]


def _place_findings(findings, nodes, clusters, node_id_of, runs) -> list:
    """Attach each finding to the most specific drawn node or cluster holding its path."""
    unplaced = []
    for finding in findings:
        parts = (finding.path or "").split(".")
        holder = None
        for k in range(len(parts), 0, -1):
            prefix = ".".join(parts[:k])
            if prefix in nodes:
                holder = nodes[prefix]
            elif prefix in clusters:
                holder = clusters[prefix]
            elif prefix in node_id_of:
                holder = nodes[node_id_of[prefix]]
            elif prefix in runs:
                holder = nodes[runs[prefix]]
            if holder is not None:
                break
        (holder.findings if holder is not None else unplaced).append(finding)
    return unplaced


# ----------------------------------------------------------------------------- DOT
def _text(value: str) -> str:
    """Text inside an HTML-like label: markup escaped, control characters visible."""
    return html.escape(visible(str(value)), quote=True)


def _abridged(text: str) -> str:
    """At most MAX_TEXT characters: graphviz refuses a string longer than 16,384 (a finding that
    lists ten thousand layers)."""
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}... ({len(text):,} characters)"


def macs_fill(share: float, max_share: float) -> str:
    """The fill for a node holding `share` of the MACs, on a scale whose darkest is `max_share`."""
    if share <= 0 or max_share <= 0:
        return NO_MACS_FILL
    step = math.ceil(len(MACS_FILLS) * share / max_share) - 1
    return MACS_FILLS[min(max(step, 0), len(MACS_FILLS) - 1)]


def _figures(cost: GroupCost) -> str:
    parts = [shape_text(cost.output_shape)]
    if cost.params:
        parts.append(f"{human(cost.params)} params")
    if cost.macs:
        share = "" if cost.role == AUX else f" ({100 * cost.macs_share:.1f}%)"
        parts.append(f"{human(cost.macs)} MACs{share}")
    if cost.role == AUX:
        parts.append("aux, training only")
    return " · ".join(parts)


def check_name(finding) -> str:
    """'§3.factorized' for a check named after its principle, else 'P1 other.check'."""
    if finding.check.startswith(finding.principle + "."):
        return finding.check
    return f"{finding.principle} {finding.check}"


def _finding_rows(findings) -> str:
    """One line per kind of finding, most serious first ('info §3.factorized x4' on a collapsed run)."""
    counts: dict[tuple[str, str], int] = {}
    for finding in most_serious_first(findings):
        key = (finding.severity, check_name(finding))
        counts[key] = counts.get(key, 0) + 1
    rows = []
    for (severity, check), count in counts.items():
        colour = SEVERITY_COLOURS.get(severity, "#000000")
        times = f" x{count}" if count > 1 else ""
        rows.append(f'<tr><td bgcolor="#ffffff"><font color="{colour}" point-size="9"><b>{_text(severity)}</b> '
                    f"{_text(check)}{times}</font></td></tr>")
    return "".join(rows)


def _label(title: str, kind: str, cost: GroupCost, findings, font_colour: str) -> str:
    shown = kind and kind != title  # a lone 'concat' needs no second 'concat'
    kind_row = f'<tr><td><font point-size="9">{_text(kind)}</font></td></tr>' if shown else ""
    return (f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
            f'<tr><td><font color="{font_colour}"><b>{_text(title)}</b></font></td></tr>'
            + kind_row.replace("<font ", f'<font color="{font_colour}" ')
            + f'<tr><td><font color="{font_colour}" point-size="9">{_text(_figures(cost))}</font></td></tr>'
            + _finding_rows(findings) + "</table>>")


def _tooltip(path: str, findings, where: bool = False) -> str:
    """The node's path, then one line per finding (with the finding's own path when `where`)."""
    lines = [path] + [_abridged(f"{f.severity} {check_name(f)}{f' at {f.path}' if where else ''}: {f.message}")
                      for f in findings[:MAX_TOOLTIP_FINDINGS]]
    if len(findings) > MAX_TOOLTIP_FINDINGS:
        lines.append(f"and {len(findings) - MAX_TOOLTIP_FINDINGS} more findings")
    # DOT's own line-break escape between lines (the DOT text stays one line per node); the
    # lines themselves escaped, so that a name ending in a backslash cannot end the string
    return "\\n".join(dot_escape(line) for line in lines)


def _border(findings) -> dict[str, str]:
    if not findings:
        return {}
    worst = worst_severity(findings)
    return {"color": SEVERITY_COLOURS.get(worst, "#000000"), "penwidth": "2.5"}


def _legend(diagram: Diagram) -> str:
    """The graph's heading: title, colour scale, border and dash meanings, model-wide findings."""
    swatches = "".join(f'<td bgcolor="{colour}" width="16" height="12"></td>' for colour in MACS_FILLS)
    scale = (f'<table border="0" cellspacing="0" cellpadding="2" align="left"><tr><td>fill: share of inference MACs, 0%</td>'
             f'{swatches}<td>{100 * diagram.max_macs_share:.1f}% (the largest node)</td></tr></table>')
    severity = " ".join(f'<font color="{c}"><b>{s}</b></font>' for s, c in SEVERITY_COLOURS.items())
    rows = [f'<font point-size="14"><b>{_text(diagram.title)}</b></font>', scale,
            f"border: review finding ({severity}); dashed grey: auxiliary head (training only)"]
    # short marks (rule, severity, where): a message would make the heading, and so the whole
    # picture, as wide as the message; the messages are in the graph's tooltip and the report
    listed = diagram.unplaced_findings[:MAX_LEGEND_FINDINGS]
    rows += [f'<font color="{SEVERITY_COLOURS.get(f.severity, "#000000")}"><b>{_text(f.severity)}</b> '
             f'{_text(check_name(f))} at {_text(_abridged(f.path))}</font>' for f in listed]
    if len(diagram.unplaced_findings) > len(listed):
        rows.append(f"and {len(diagram.unplaced_findings) - len(listed)} more findings about the whole model")
    cells = "".join(f'<tr><td align="left">{row}</td></tr>' for row in rows)
    return f'<<table border="0" cellspacing="2" cellpadding="0">{cells}</table>>'


class _DotIds:
    """DOT ids of our own for the diagram's nodes, clusters and branch groups: names from a spec
    or a model appear only in escaped labels and tooltips, never as DOT syntax."""

    def __init__(self):
        self.nodes: dict[str, str] = {INPUT: INPUT}
        self.clusters: dict[str, str] = {}
        self.groups: dict[str, str] = {}

    def node(self, path: str) -> str:
        return self.nodes.setdefault(path, f"n{len(self.nodes)}")

    def cluster(self, path: str) -> str:
        return self.clusters.setdefault(path, f"cluster_{len(self.clusters)}")

    def group(self, branch: str) -> str:
        return self.groups.setdefault(branch, f"g{len(self.groups)}")


def diagram_source(diagram: Diagram) -> str:
    """The diagram as DOT text (what `dot` lays out)."""
    import graphviz

    ids = _DotIds()
    dot = graphviz.Digraph(dot_identifier(diagram.model), graph_attr={
        "rankdir": "TB", "label": _legend(diagram), "tooltip": _tooltip(diagram.model, diagram.unplaced_findings, where=True),
        "labelloc": "t", "labeljust": "l", "fontname": FONT,
        "fontsize": "11", "nodesep": "0.18", "ranksep": "0.3", "newrank": "true", "ordering": "out"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "10",
                   "margin": "0.08,0.03", "color": "#555555"},
        edge_attr={"color": "#777777", "arrowsize": "0.6"})
    c, h, w = diagram.input_shape
    dot.node(INPUT, f"input\\n{h}x{w}x{c}", shape="oval", fillcolor=NO_MACS_FILL)

    children: dict[str | None, list[str]] = {}
    for cid, cluster in diagram.clusters.items():
        children.setdefault(cluster.parent, []).append(cid)
    members: dict[str | None, list[DiagramNode]] = {}
    for node in diagram.nodes.values():
        members.setdefault(node.clusters[-1] if node.clusters else None, []).append(node)

    def emit(graph, cluster_id: str | None, depth: int) -> None:
        for node in members.get(cluster_id, []):
            _emit_node(graph, node, diagram.max_macs_share, ids)
        for child in children.get(cluster_id, []):
            cluster = diagram.clusters[child]
            with graph.subgraph(name=ids.cluster(child)) as sub:
                sub.attr(label=_cluster_label(cluster), style="rounded,filled",
                         fillcolor=CLUSTER_FILLS[depth % len(CLUSTER_FILLS)], labeljust="l", fontname=FONT,
                         fontsize="10", tooltip=_tooltip(child, cluster.findings),
                         **{"color": "#9e9e9e", **_border(cluster.findings)})
                emit(sub, child, depth + 1)
                if cluster.branch_heads:
                    with sub.subgraph() as row:  # branches side by side, in concat order
                        row.attr(rank="same")
                        for left, right in zip(cluster.branch_heads, cluster.branch_heads[1:]):
                            row.edge(ids.node(left), ids.node(right), style="invis")

    emit(dot, None, 0)
    for source, target in diagram.edges:
        dot.edge(ids.node(source), ids.node(target))
    return dot.source


def _emit_node(graph, node: DiagramNode, max_share: float, ids: _DotIds) -> None:
    aux = node.cost.role == AUX
    fill = AUX_FILL if aux else macs_fill(node.cost.macs_share, max_share)
    font_colour = "#ffffff" if fill in DARK_FILLS else "#000000"
    style = "rounded,filled,dashed" if aux else "rounded,filled"
    extra = {"group": ids.group(node.branch)} if node.branch else {}
    graph.node(ids.node(node.id), _label(node.title, node.kind, node.cost, node.findings, font_colour), fillcolor=fill,
               style=style, tooltip=_tooltip(node.id, node.findings), **extra, **_border(node.findings))


def _cluster_label(cluster: DiagramCluster) -> str:
    return _label(cluster.title, cluster.kind, cluster.cost, cluster.findings, "#000000")


# ----------------------------------------------------------------------------- layout
def render_dot(source: str, fmt: str) -> bytes | None:
    """Lay the DOT text out with graphviz's `dot`; None when `dot` is not installed."""
    executable = shutil.which("dot")
    if executable is None:
        return None
    try:
        # communicate() feeds the source and reads the picture together, and does not fail with a
        # broken pipe when dot stops reading early: dot's own message says why
        done = subprocess.run([executable, f"-T{fmt}"], input=source.encode(), capture_output=True,
                              timeout=DOT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise DiagramError(f"graphviz 'dot' took more than {DOT_SECONDS} s to lay the diagram out; draw fewer "
                           "nodes (--collapse, --level block)") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise DiagramError(f"graphviz 'dot' failed: {visible(message[-1]) if message else done.returncode}")
    return done.stdout

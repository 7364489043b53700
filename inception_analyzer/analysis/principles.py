"""Design review: read a network the way the Rethinking paper (Szegedy et al., CVPR 2016,
sections 2-5) teaches, and say where it departs from it, what to change and what that saves.

Each check is one function `check_*(ctx) -> list[Finding]` registered with `@check`; adding a
check touches one place. Checks read the graph IR and the cost records only, and an op only
through its facets (category, merge kind, convolution geometry, constant factor), never through
its raw arguments or its name; every suggested change is priced through the op registry (the same
rules as the analysis), not by a separate formula.
The rules and their thresholds are stated in docs/review.md.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

from ..graph import AUX, INPUT, Graph, Node, broadcast_inputs, fork_of, gate_branches, grid_units, positions
from ..numbers import grid_text, human, numel, shape_text
from ..ops import OPS, Category, ConvGeometry, MergeKind, RFStep
from ..perf import paused_gc
from .cost import CostReport
from .findings import Finding, severity_rank
from .receptive_field import ReceptiveField, chain_size, receptive_fields

# Thresholds, with the reasoning in docs/review.md
EARLY = 1 / 3                    # the first third of the weighted layers is "early" (P1)
SHARP_DROP = 0.5                 # a main-path step keeping less than half the representation (P1)
EXTREME_DROP = 1 / 8             # ... keeping less than an eighth: an error when early
AGGRESSIVE_FIRST_STRIDE = 4      # first-layer stride (P1)
EXTREME_REDUCTION = 8            # a 1x1 reduction to less than 1/8 of the block's input (P1)
WIDE_INPUT = 256                 # spatial conv on this many channels or more without reduction (P3)
VERY_WIDE_INPUT = 512            # ... a warning from here on
REDUCTION_FACTOR = 4             # the 1x1 reduction P3 suggests (Inception-v3 uses 4x to 6x)
DOMINANT_MACS_SHARE = 0.5        # one stage doing more than half the work (P4)
DOMINANT_PARAMS_SHARE = 0.6      # one stage holding more than 60% of the parameters (P4)
MEDIUM_GRID = (12, 20)           # where the paper found 1xn + nx1 to work well (section 3.2)
WIDENING = 2.0                   # the coarsest stage should be at least this much wider (P2)
SIGNIFICANT_LAYER = 0.05         # a layer doing 5% of the network's MACs: its factorization is a warning

Check = Callable[["_Context"], list[Finding]]
# every check, in the order they are defined: findings of one severity on one layer keep this order
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    """Register a review check (a decorator)."""
    CHECKS.append(function)
    return function


@dataclass
class _Residual:
    """A residual unit (He et al. 2016): branches leaving `fork` and summed at `add`, one of them a
    shortcut that carries the fork's representation to the sum (the identity, or a projection)."""
    add: str
    fork: str                    # the layer every branch reads (its output is the unit's input)
    shortcut: tuple[str, ...]    # the shortcut's layers: () for the identity, else the projection
    branch: tuple[str, ...]      # the layers of the other branch(es), the residual, in network order
    narrowest: int               # the fewest channels a layer of the residual branch outputs (gates apart)
    widest: int                  # the most channels a layer of the residual branch outputs (gates apart)
    projection: str | None       # the projection shortcut's 1x1 conv; None for the identity
    block: str                   # the block holding the add
    scale: float | None = None   # the branch's scaling before the sum (Inception-ResNet), if any


@dataclass
class _LinearBottleneck:
    """A block that ends in a linear bottleneck (Sandler et al. 2018, MobileNetV2): a 1x1 conv that
    projects its widest tensor down to a narrow output with no activation after it (BN, dropout and
    a residual add may follow), after the block did its work on a tensor at least as wide as its input."""
    block: str
    projection: str              # the 1x1 conv
    width_in: int                # channels entering the block
    widest: int                  # the widest tensor inside the block (gates apart)
    ratio: float                 # representation out / in (H x W x C)
    spatial_width: int = 0       # the most channels a spatial conv of the block reads (0: none)

    @property
    def inverted(self) -> bool:
        """MobileNetV2's order: the spatial conv works on the widened tensor."""
        return self.spatial_width > self.width_in

    @property
    def widens_after_spatial(self) -> bool:
        """ConvNeXt's order: the spatial conv on the narrow input, the widening 1x1 after it."""
        return self.widest > self.width_in and not self.inverted


@dataclass
class _Context:
    graph: Graph
    report: CostReport
    fields: dict[str, ReceptiveField]  # node path -> receptive field (analysis.receptive_field)
    main: list[Node]             # inference-path layers in order
    position: dict[str, float]   # node path -> share of weighted layers before it (0 = first)
    consumers: dict[str, list[str]]
    # a layer's block: its module when the module changes the grid at most once, else the module
    # inside it that does (graph.grid_units), so a trunk written as one module is read block by block
    block_of: dict[str, str]
    block_input: dict[str, tuple]  # block -> the shape entering it
    by_block: dict[str, list[Node]]  # block -> its inference-path layers, in order
    index: dict[str, int]          # node path -> its position in `main`
    geometry: dict[str, ConvGeometry]  # conv-like layer path -> its geometry (the checks ask often)
    gates: set[str]                # layers on the gate branch of a merge (SE's squeeze): graph.gate_branches
    residuals: dict[str, _Residual] = field(default_factory=dict)    # add path -> its residual unit
    in_residual: dict[str, _Residual] = field(default_factory=dict)  # layer inside a residual branch -> unit
    in_shortcut: dict[str, _Residual] = field(default_factory=dict)  # layer of a projection shortcut -> unit
    residual_block: dict[str, _Residual] = field(default_factory=dict)  # block holding a residual add -> unit
    linear_bottlenecks: dict[str, _LinearBottleneck] = field(default_factory=dict)  # block -> its reading

    def costs(self, path: str):
        return self._by_path[path]

    def block(self, node: Node) -> str:
        return self.block_of[node.path]

    def geometry_of(self, node: Node | None) -> ConvGeometry | None:
        """The node's convolution geometry; None for any other op (and for no node)."""
        return None if node is None else self.geometry.get(node.path)

    def inside_residual(self, path: str) -> _Residual | None:
        """The residual unit whose branch or projection shortcut holds this layer (not its add)."""
        return self.in_residual.get(path) or self.in_shortcut.get(path)

    def __post_init__(self):
        self._by_path = {r.path: r for r in self.report.layers}


def _context(graph: Graph, report: CostReport, fields: dict[str, ReceptiveField] | None = None) -> _Context:
    main = [n for n in graph.layers() if n.role != AUX]
    weighted_total = sum(1 for n in main if n.op.weighted) or 1
    position, seen = {}, 0
    for node in main:
        position[node.path] = seen / weighted_total
        seen += node.op.weighted
    consumers: dict[str, list[str]] = {}
    order = positions(graph)
    gates = gate_branches(graph, order)
    block_of = grid_units(graph, gates)
    block_input: dict[str, tuple] = {}
    for node in graph.layers():
        for source in node.inputs:
            consumers.setdefault(source, []).append(node.path)
        if block_of[node.path] not in block_input:
            # a block that starts by concatenating what enters it (a DenseNet layer reads every
            # earlier feature map of its block) takes the concatenation as its input
            block_input[block_of[node.path]] = (node.out_shape if node.op.merge_kind is MergeKind.CONCAT
                                                else node.in_shapes[0])
    by_block: dict[str, list[Node]] = {}
    for node in main:
        by_block.setdefault(block_of[node.path], []).append(node)
    fields = receptive_fields(graph) if fields is None else fields
    geometry = {node.path: g for node in graph.layers()
                if (g := node.op.geometry(node.args, list(node.in_shapes), node.out_shape)) is not None}
    ctx = _Context(graph, report, fields, main, position, consumers, block_of, block_input, by_block,
                   {node.path: i for i, node in enumerate(main)}, geometry, gates)
    _residual_branches(ctx, order)
    _find_linear_bottlenecks(ctx)
    return ctx


# ----------------------------------------------------------------------------- residual units
def _residual_branches(ctx: _Context, order: dict[str, int]) -> None:
    """Find every residual unit once: an `add` one of whose branches is a shortcut (the identity, or
    a projection: a chain holding one 1x1 conv, with its BN and at most a pooling, as ResNet's
    `downsample`). Fills ctx.residuals, ctx.in_residual (each layer inside a residual branch, mapped
    to the innermost unit), ctx.in_shortcut and ctx.residual_block; for an add that is a block by
    itself (an unnamed add outside any module), the block's input becomes the unit's input. A gate
    branch inside the residual branch (SE's squeeze) is not its width: one value per channel."""
    for add in ctx.graph.layers():
        if add.op.merge_kind is not MergeKind.ADD:
            continue
        fork = fork_of(ctx.graph, add, order)
        branches = [_branch_layers(ctx.graph, source, fork, order) for source in add.inputs]
        shortcuts = [b for b in branches if _is_shortcut(ctx, b)]
        if not shortcuts:
            continue  # two computed paths summed: no shortcut carries the input
        # the simplest shortcut: the identity, else the projection with the fewest layers
        shortcut = min(shortcuts, key=len)
        chosen = branches.index(shortcut)
        others = [b for i, b in enumerate(branches) if i != chosen and b]
        if not others:
            continue  # nothing beside the shortcut (x + x)
        branch = tuple(sorted({p for b in others for p in b}, key=order.__getitem__))
        weighted = [p for p in shortcut if ctx.graph.node(p).op.weighted]
        layers = [ctx.graph.node(p) for p in branch]
        widths = [n.out_shape[0] for n in layers if n.path not in ctx.gates]
        scales = [factor for n in layers if (factor := n.op.constant_factor(n.args)) is not None]
        unit = _Residual(add.path, fork, shortcut, branch, min(widths), max(widths),
                         weighted[0] if weighted else None, ctx.block(add), scales[-1] if scales else None)
        ctx.residuals[add.path] = unit
        ctx.residual_block[unit.block] = unit
        for path in branch:
            ctx.in_residual.setdefault(path, unit)  # adds come in network order: the innermost first
        for path in shortcut:
            ctx.in_shortcut.setdefault(path, unit)
        if unit.block == add.path:
            ctx.block_input[add.path] = ctx.graph.node(fork).out_shape


def _find_linear_bottlenecks(ctx: _Context) -> None:
    """Every block whose output comes, through BN, dropout or a residual add only (no activation),
    from a narrowing 1x1 conv of the same block, fed by at least one other weighted layer of the
    block and reading a tensor at least as wide as the block's input: MobileNetV2's inverted residual
    and linear bottleneck (and EfficientNet's MBConv, MobileNetV3's block). A ResNet bottleneck ends in
    a widening 1x1 and a ReLU; an Inception module in a concat: neither is one."""
    for name, nodes in ctx.by_block.items():
        before = ctx.block_input[name]
        end = node = nodes[-1]
        if len(before) != 3 or len(end.out_shape) != 3:
            continue
        while node is not None and not node.op.weighted:  # back from the output to the projection
            unit = ctx.residuals.get(node.path)
            if unit is not None:  # a residual add: the bottleneck is the end of its branch
                node = next((ctx.graph.node(p) for p in node.inputs if p in set(unit.branch)), None)
            elif node.op.category is Category.ACTIVATION or not _passes_through(node) or node.inputs[0] == INPUT:
                node = None  # not linear, or not a chain back to one layer
            else:
                node = ctx.graph.node(node.inputs[0])
        geometry = ctx.geometry_of(node)
        if geometry is None or not geometry.pointwise or ctx.block(node) != name or \
                geometry.out_channels >= geometry.in_channels or geometry.in_channels < before[0] or \
                sum(n.op.weighted and n.path not in ctx.gates for n in nodes) < 2:
            continue
        widest = max(n.out_shape[0] for n in nodes if n.path not in ctx.gates and len(n.out_shape) == 3)
        spatial = [g.in_channels for n in nodes if n.path not in ctx.gates and (g := ctx.geometry_of(n)) and g.spatial]
        ctx.linear_bottlenecks[name] = _LinearBottleneck(name, node.path, before[0], widest,
                                                         numel(end.out_shape) / numel(before), max(spatial, default=0))


def _branch_layers(graph: Graph, source: str, fork: str, order: dict[str, int]) -> tuple[str, ...]:
    """The layers of one branch of a merge, from the fork (excluded) to `source`, in network order."""
    seen, stack = set(), [source] if source != fork else []
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        stack.extend(p for p in graph.node(path).inputs if p != fork)
    return tuple(sorted(seen, key=order.__getitem__))


def _is_shortcut(ctx: _Context, layers: tuple[str, ...]) -> bool:
    """The identity (no layer), or a projection: a chain without merges whose only weighted layer is a
    1x1 conv (ResNet's option B, with its BN; ResNet-D pools before it)."""
    nodes = [ctx.graph.node(p) for p in layers]
    if any(len(n.inputs) != 1 or n.op.merges for n in nodes):
        return False
    weighted = [n for n in nodes if n.op.weighted]
    return not weighted or (len(weighted) == 1 and _is_pointwise_conv(ctx, weighted[0]))


# ----------------------------------------------------------------------------- pricing helpers
@dataclass
class _Priced:
    params: int
    macs: int
    out_shape: tuple
    rf_size: tuple[int, int]     # receptive field of the chain on its own (from one input unit)


def _price_convs(in_shape: tuple, convs: list[dict]) -> _Priced:
    """Cost and receptive field of a chain of conv layers, through the op registry."""
    conv = OPS["conv"]
    shape, params, macs, steps = in_shape, 0, 0, []
    for spec in convs:
        args = conv.bind([], spec)
        out = conv.output_shape(args, [shape])
        params += conv.params(args, [shape], out)
        macs += conv.macs(args, [shape], out)
        steps.append(conv.rf_step(args, [shape], shape[1:]))
        shape = out
    return _Priced(params, macs, shape, chain_size(steps))


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _producer(ctx: _Context, node: Node) -> Node | None:
    """The layer whose output feeds this one, looking through BN, activations and dropout."""
    current = node
    while current.inputs and current.inputs[0] != INPUT:
        source = ctx.graph.node(current.inputs[0])
        if not _passes_through(source):
            return source
        current = source
    return None


def _passes_through(node: Node) -> bool:
    """BN, activations, dropout: neither a layer of depth, nor a merge, nor a window over positions."""
    return not (node.op.weighted or node.op.merges or _rf_step(node) is not None)


def _rf_step(node: Node) -> RFStep | None:
    # a vector's grid is unknown here; only a linear layer reads it, and it is weighted anyway
    return node.op.rf_step(node.args, list(node.in_shapes), _grid(node.in_shapes[0]) or (1, 1))


def _is_spatial_conv(ctx: _Context, node: Node) -> bool:
    geometry = ctx.geometry_of(node)
    return geometry is not None and geometry.spatial


def _is_pointwise_conv(ctx: _Context, node: Node) -> bool:
    geometry = ctx.geometry_of(node)
    return geometry is not None and geometry.pointwise


def _grid(shape: tuple) -> tuple[int, int] | None:
    return tuple(shape[1:]) if len(shape) == 3 else None


# ----------------------------------------------------------------------------- P1
@check
def check_first_layer_stride(ctx: _Context) -> list[Finding]:
    """P1: an aggressive stride in the first layer throws away resolution before any features exist."""
    first = next((n for n in ctx.main if n.op.weighted), None)
    geometry = ctx.geometry_of(first)
    if geometry is None:
        return []
    stride = max(geometry.stride)
    if stride < AGGRESSIVE_FIRST_STRIDE:
        return []
    h, w = first.in_shapes[0][1:]
    oh, ow = first.out_shape[1:]
    k = geometry.kernel[0]
    ratio = numel(first.out_shape) / numel(first.in_shapes[0])
    # a window that covers its whole stride and as many channels out as values in (a patchify stem,
    # ConvNeXt's 4x4/4 to 96 channels) can keep all of the input: no bottleneck by P1's measure
    keeps_all = min(geometry.kernel) >= stride and ratio >= 1
    # the paper's stem: a stride-2 3x3, then 3x3s, reaching the same stride over more layers
    return [Finding(
        "P1.first_layer_stride", "P1", "info" if keeps_all else "warning", first.path,
        f"the first layer strides by {stride}: the {h}x{w} input becomes a {oh}x{ow} grid "
        f"({h * w / (oh * ow):.0f}x fewer positions) in one step, before any feature exists"
        + (f"; its {geometry.kernel[0]}x{geometry.kernel[1]} window covers the stride and its {geometry.out_channels} "
           f"channels hold {ratio:.0%} of the input's values, so nothing need be lost"
           + (" (a patchify stem)" if geometry.kernel == geometry.stride else "")
           + ", but each output sees its window through one linear map where a stem of 3x3s builds "
           "features before it strides"
           if keeps_all else ""),
        {"stride": stride, "kernel": k, "grid_in": [h, w], "grid_out": [oh, ow], "representation_ratio": round(ratio, 4)},
        "reach that stride over several layers, e.g. a 3x3 stride-2 conv then 3x3 convs and a "
        "stride-2 pooling, as Inception-v3's stem does")]


@check
def check_representation_drops(ctx: _Context) -> list[Finding]:
    """P1: a main-path block that keeps less than half of its input representation (HxWxC)."""
    findings = []
    for name, node, before in _grid_blocks(ctx):
        carried = _carried_past(ctx, name)
        ratio = (numel(node.out_shape) + carried) / numel(before)
        if ratio >= SHARP_DROP or _is_pool_reduction(ctx, name) or name in ctx.linear_bottlenecks:
            continue  # pooling reductions: check_grid_reductions; linear bottlenecks: check_linear_bottlenecks
        early = ctx.position[node.path] < EARLY
        severity = "error" if early and ratio < EXTREME_DROP else ("warning" if early else "info")
        figures = {"representation_in": numel(before), "representation_out": numel(node.out_shape),
                   "ratio": round(ratio, 4), "depth_position": round(ctx.position[node.path], 3)}
        unit = ctx.residual_block.get(name)
        if unit is not None:
            figures["shortcut"] = _shortcut_name(unit)
        if carried:
            figures["representation_carried"] = carried
        findings.append(Finding(
            "P1.representation_drop", "P1", severity, name,
            f"{name} keeps {ratio:.0%} of its input representation "
            f"({shape_text(before)} = {numel(before):,} values -> {shape_text(node.out_shape)} = "
            f"{numel(node.out_shape):,}{f', plus {carried:,} carried past it' if carried else ''})"
            f"{' early in the network' if early else ''}"
            + (f"; a residual block, but its shortcut is a projection, {_shortcut_text(ctx, unit)}, that "
               "does not carry the input through unchanged" if unit is not None and unit.shortcut else ""),
            figures,
            "widen the layer so the representation shrinks gently (the paper: at most by the grid "
            "reduction, with channels doubling when the grid halves)"))
    return findings


def _carried_past(ctx: _Context, name: str) -> int:
    """Values the network still reads after the block besides its output: what the block's input
    and inner tensors carry past it (DenseNet's dense connections: every earlier feature map of a
    dense block is read again by the later layers). The representation after the block is its
    output and these; for a block whose input nothing reads again it is 0."""
    nodes = ctx.by_block[name]
    end = ctx.index[nodes[-1].path]
    inside = {n.path for n in nodes}
    tensors = {source for n in nodes for source in n.inputs} | inside
    tensors.discard(nodes[-1].path)
    return sum(numel(ctx.graph.node(path).out_shape) for path in tensors
               if any(ctx.index.get(reader, -1) > end for reader in ctx.consumers.get(path, ())))


def _grid_blocks(ctx: _Context):
    """(block, its output node, its input shape) for inference-path blocks from grid to grid; the
    classifier head, which reduces to the classes by design, is left out, and so is a block inside
    a residual unit (a branch's layer, or its projection shortcut, written outside any module): the
    unit is judged as a whole, from its input to its add."""
    for name, nodes in ctx.by_block.items():
        end = nodes[-1]
        if ctx.inside_residual(end.path):
            continue
        before = ctx.block_input[name]
        if len(before) == 3 and len(end.out_shape) == 3 and _grid(end.out_shape) != (1, 1):
            yield name, end, before


@check
def check_extreme_reductions(ctx: _Context) -> list[Finding]:
    """P1: a 1x1 reduction inside a block that cuts the block's channels by more than 8x."""
    findings = []
    for node in ctx.main:
        geometry = ctx.geometry_of(node)
        block = ctx.block(node)
        if geometry is None or not geometry.pointwise or block == node.path or node.path in ctx.in_residual \
                or node.path in ctx.gates:
            continue  # a residual branch: the shortcut carries the full width (check_residual_blocks); a gate
            # branch (SE's squeeze) makes one scale per channel, it carries no representation
        c_block, c_out = ctx.block_input[block][0], geometry.out_channels
        if geometry.in_channels != c_block or c_out * EXTREME_REDUCTION > c_block:
            continue
        consumers = [ctx.graph.node(p) for p in _downstream_spatial(ctx, node)]
        if not consumers:
            continue
        findings.append(Finding(
            "P1.extreme_reduction", "P1", "info", node.path,
            f"1x1 reduction from {c_block} to {c_out} channels ({c_block / c_out:.0f}x) "
            f"before a {_kernel(ctx, consumers[0])} conv: a narrow bottleneck inside the module",
            {"channels_in": c_block, "channels_out": c_out, "factor": round(c_block / c_out, 1)},
            f"reduce less (to about {c_block // 4} channels, 4x as Inception-v3 does) or factorize the "
            f"{_kernel(ctx, consumers[0])} conv to pay for the wider embedding"))
    return findings


@check
def check_residual_blocks(ctx: _Context) -> list[Finding]:
    """P1, read for residual networks: a residual branch may narrow as much as it likes, the shortcut
    carries the full representation to the add (He et al. 2016; Szegedy et al. 2017 for
    Inception-ResNet); a branch that widens between narrow shortcuts is an inverted residual (Sandler
    et al. 2018). One finding per stage saying so, with the shortcut and the branch's widths."""
    per_stage: dict[str, list[_Residual]] = {}
    for unit in ctx.residuals.values():
        record = ctx.costs(unit.add)
        if record.role != AUX:
            per_stage.setdefault(record.stage, []).append(unit)
    findings = []
    for stage, units in per_stage.items():
        blocks = list(dict.fromkeys(u.block for u in units))
        widths = {u.add: ctx.graph.node(u.add).out_shape[0] for u in units}
        projected = [u for u in units if u.shortcut]
        width, narrowest = max(widths.values()), min(u.narrowest for u in units)
        factor = max(widths[u.add] / u.narrowest for u in units)
        expansion = max(u.widest / widths[u.add] for u in units)
        if not projected:
            shortcuts = "identity"
        elif len(projected) == len(units):
            shortcuts = "projection" + ("s" if len(projected) > 1 else "")
        else:
            shortcuts = (f"identity; {'a projection' if len(projected) == 1 else 'projections'} in "
                         + ", ".join(dict.fromkeys(u.block for u in projected)))
        plural = "s" if len(blocks) > 1 else ""
        named = blocks[0] if len(blocks) == 1 else ", ".join(blocks) if len(blocks) == 2 else \
            f"{blocks[0]} .. {blocks[-1]}"
        figures = {"blocks": blocks, "projections": [_shortcut_name(u) for u in projected],
                   "shortcut_width": width, "narrowest": narrowest, "factor": round(factor, 1)}
        if expansion > 1:
            widest = max(u.widest for u in units)
            figures.update(widest=widest, expansion=round(expansion, 2))
            shape = (f"the branch{'es widen' if plural else ' widens'} to {widest} channels "
                     f"({expansion:.3g}x {'their' if plural else 'its'} shortcut) and project{'' if plural else 's'} "
                     "back: inverted residuals (Sandler et al. 2018), the shortcut joins the narrow ends and the "
                     "branch does its work on the wide tensor")
        elif factor > 1:
            shape = (f"the branch{'es narrow' if plural else ' narrows'} to "
                     f"{narrowest} channels ({factor:.3g}x): not a bottleneck, the shortcut carries the block's "
                     "input to the sum and the branch adds a residual to it (He et al. 2016)")
        else:
            shape = f"the branch{'es keep' if plural else ' keeps'} the shortcut's width"
        scales = sorted({u.scale for u in units if u.scale is not None})
        if scales:
            figures["scales"] = scales
            shape += (f"; the branches are scaled by {' or '.join(f'{x:g}' for x in scales)} before the "
                      "sum, as Inception-ResNet does to keep wide residual stacks stable (Szegedy et al. 2017)")
        findings.append(Finding(
            "P1.residual", "P1", "info", stage,
            f"{len(blocks)} residual block{plural} on the {stage if stage != 'head' else 'vector'} stage "
            f"({named}), shortcut{plural} {_range_text(widths.values())} channels wide ({shortcuts}); {shape}",
            figures))
    return findings


@check
def check_linear_bottlenecks(ctx: _Context) -> list[Finding]:
    """P1 against MobileNetV2: blocks that end in a linear bottleneck (a narrowing 1x1 without
    activation) keep less of their input than P1 asks where the grid shrinks, by design. Said once
    for the model, with the argument on both sides, instead of a drop per block."""
    units = list(ctx.linear_bottlenecks.values())
    if not units:
        return []
    drops = [u for u in units if u.ratio < SHARP_DROP]
    inverted = [u for u in units if u.inverted]
    widened_after = [u for u in units if u.widens_after_spatial]
    expansions = sorted({round(u.widest / u.width_in, 2) for u in units})
    early_extreme = [u for u in drops if u.ratio < EXTREME_DROP and ctx.position[u.projection] < EARLY]
    named = units[0].block if len(units) == 1 else f"{units[0].block} .. {units[-1].block}"
    dropped = ", ".join(f"{u.block} {u.ratio:.0%}" for u in drops)
    message = (
        f"{len(units)} block{'s' if len(units) > 1 else ''} ({named}) end in a linear bottleneck "
        "(Sandler et al. 2018, MobileNetV2): a 1x1 conv projects the block's widest tensor down to a narrow "
        "output with no activation after it"
        + (f"; {len(inverted)} of them are inverted residuals, widening their input "
           f"{_range_text(round(u.widest / u.width_in, 2) for u in inverted)}x before the spatial conv"
           if inverted else "")
        + (f"; {len(widened_after)} of them widen their input "
           f"{_range_text(round(u.widest / u.width_in, 2) for u in widened_after)}x after the spatial conv, "
           "which works on the narrow tensor (ConvNeXt's order: the expensive mixing on the wide tensor, the "
           "spatial aggregation on the narrow one)" if widened_after else "")
        + (f". {len(drops)} of them keep less than half of their input representation ({dropped}): "
           "by P1 of the Rethinking paper a representational bottleneck, since the narrow output is all the "
           "next block sees. MobileNetV2's argument: the features lie on a low-dimensional manifold that the "
           "narrow tensor can hold, a ReLU on it would destroy information, so it is kept linear and the "
           "nonlinearity works on the expanded tensor (its ablation: linear bottlenecks beat ReLU ones at "
           "equal cost). Both sides are measured here once, not as a drop per block"
           if drops else ": every block keeps at least half of its input representation, so P1 has "
           "nothing against the narrow ends"))
    figures = {"blocks": [u.block for u in units], "projections": [u.projection for u in units],
               "expansion": [min(expansions), max(expansions)],
               "drops": {u.block: round(u.ratio, 4) for u in drops}}
    return [Finding(
        "P1.linear_bottleneck", "P1", "warning" if early_extreme else "info", ctx.graph.name, message, figures,
        "if the accuracy matters more than the MACs, widen the narrow outputs of the stride-2 blocks so each "
        "keeps half of its input (the paper's d x d x k -> d/2 x d/2 x 2k)" if drops else None)]


def _pointwise_neighbours(ctx: _Context, node: Node) -> list[Node]:
    """The dense 1x1 convs that feed this layer and that read it, looking through BN, activations,
    dropout and the gated input of a gate merge (SE's product)."""
    found = []
    # backwards: the producer, through pass-through layers and gate merges' feature-map input
    current = node
    while current.inputs and current.inputs[0] != INPUT:
        source = ctx.graph.node(_feature_input(current))
        if source.op.weighted:
            found.append(source)
            break
        if not (_passes_through(source) or _is_gate(source)):
            break
        current = source
    # forwards: every reader, through the same
    frontier = list(ctx.consumers.get(node.path, []))
    while frontier:
        reader = ctx.graph.node(frontier.pop())
        if reader.path in ctx.gates:
            continue
        if reader.op.weighted:
            found.append(reader)
        elif _passes_through(reader) or _is_gate(reader):
            frontier.extend(ctx.consumers.get(reader.path, []))
    return [n for n in found if (g := ctx.geometry_of(n)) is not None and g.pointwise and not g.grouped]


def _is_gate(node: Node) -> bool:
    return node.op.merge_kind is MergeKind.GATE and any(broadcast_inputs(node))


def _feature_input(node: Node) -> str:
    """The input carrying the feature map: for a gate merge the one that is not broadcast."""
    if _is_gate(node):
        return next(p for p, wide in zip(node.inputs, broadcast_inputs(node)) if not wide)
    return node.inputs[0]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _range_text(values) -> str:
    values = sorted(values)
    return f"{values[0]:g}" if values[0] == values[-1] else f"{values[0]:g} to {values[-1]:g}"


def _shortcut_name(unit: _Residual) -> str:
    """The projection conv (or the shortcut's first layer when it has no conv), or 'identity'."""
    return unit.projection or (unit.shortcut[0] if unit.shortcut else "identity")


def _shortcut_text(ctx: _Context, unit: _Residual) -> str:
    """'downsample.0 (1x1/2, 256 -> 512)' for a projection; the layer's name for another shortcut."""
    name = _shortcut_name(unit)
    if unit.projection is None:
        return name
    conv = ctx.graph.node(unit.projection)
    stride = ctx.geometry_of(conv).stride[0]
    return f"{name} (1x1{'/' + str(stride) if stride > 1 else ''}, {conv.in_shapes[0][0]} -> {conv.out_shape[0]})"


def _downstream_spatial(ctx: _Context, node: Node) -> list[str]:
    """Spatial convs fed by this node, looking through BN and activations."""
    found, frontier = [], list(ctx.consumers.get(node.path, []))
    while frontier:
        path = frontier.pop()
        other = ctx.graph.node(path)
        if _is_spatial_conv(ctx, other):
            found.append(path)
        elif not (other.op.weighted or other.op.merges):
            frontier.extend(ctx.consumers.get(path, []))
    return found


@check
def check_grid_reductions(ctx: _Context) -> list[Finding]:
    """§5 / P1: classify every place where the grid shrinks, and price the three ways to do it.

    For an input d x d x k and an output d' x d' x k' (the paper: d' = d/2, k' = 2k), with the
    spatial conv's kernel a:
      conv then pool  = a conv k -> k' at d x d, then pooling       (expensive)
      pool then conv  = pooling, then the conv at d' x d'            (cheap, but a bottleneck:
                        the representation drops to d'^2 k between the two)
      parallel        = a stride-2 conv k -> k' - k beside a stride-2 pooling, concatenated
                        (the paper's Figure 10: cheap and no bottleneck)
    """
    findings = []
    for name, end, before in _grid_blocks(ctx):
        if numel(_grid(end.out_shape)) >= numel(before[1:]):
            continue
        if name in ctx.residual_block:
            continue  # a sum, not a concat: judged by its representation (check_representation_drops)
        nodes = ctx.by_block[name]
        kinds = {n.op.category for n in nodes if _reduces(n)}
        if end.op.merges and kinds >= {Category.CONV, Category.POOL}:
            findings.append(_parallel_reduction(name, before, end.out_shape))
        elif _is_pool_reduction(ctx, name):
            findings.append(_pool_reduction(ctx, name, nodes[-1], before, end.out_shape))
    return findings


def _is_pool_reduction(ctx: _Context, block: str) -> bool:
    if block in ctx.residual_block:
        return False  # a residual block that pools (in its shortcut or branch) is judged as a whole
    kinds = {n.op.category for n in ctx.by_block.get(block, []) if _reduces(n)}
    return Category.POOL in kinds and Category.CONV not in kinds


def _reduces(node: Node) -> bool:
    return len(node.out_shape) == 3 and len(node.in_shapes[0]) == 3 and \
        numel(node.out_shape[1:]) < numel(node.in_shapes[0][1:])


def _alternatives(d_in: tuple, d_out: tuple, k: int, k_out: int, kernel: int) -> dict:
    """MACs of the three ways to go from d_in x k to d_out x k_out with a kernel x kernel conv."""
    area_in, area_out = d_in[0] * d_in[1], d_out[0] * d_out[1]
    return {"conv_then_pool": area_in * k * k_out * kernel * kernel,
            "pool_then_conv": area_out * k * k_out * kernel * kernel,
            "parallel": area_out * k * max(k_out - k, 0) * kernel * kernel}


def _parallel_reduction(name: str, before: tuple, after: tuple) -> Finding:
    costs = _alternatives(before[1:], after[1:], before[0], after[0], 3)
    return Finding(
        "§5.grid_reduction", "§5", "info", name,
        f"{name} reduces {shape_text(before)} to {shape_text(after)} with a stride-2 conv and a pooling in "
        f"parallel, concatenated: the paper's efficient grid reduction (Figure 10); with a 3x3 conv it costs "
        f"{human(costs['parallel'])} MACs against {human(costs['conv_then_pool'])} for conv-then-pool",
        {"kind": "parallel", "representation_in": numel(before), "representation_out": numel(after),
         "alternatives_macs": costs})


def _pool_reduction(ctx: _Context, name: str, pool: Node, before: tuple, after: tuple) -> Finding:
    previous = _producer(ctx, pool)
    widening = ctx.geometry_of(previous)
    nxt = _next_weighted(ctx, pool)
    early = ctx.position[pool.path] < EARLY
    if widening is not None and widening.stride == (1, 1) and widening.out_channels > widening.in_channels \
            and not widening.grouped:  # the alternatives are priced as dense convs
        # conv then pool: the widening conv ran on the big grid
        conv = previous
        k, k_out = widening.in_channels, widening.out_channels
        kernel = widening.kernel[0]
        costs = _alternatives(conv.out_shape[1:], after[1:], k, k_out, kernel)
        extra = costs["conv_then_pool"] - costs["parallel"]
        return Finding(
            "§5.grid_reduction", "§5", "warning" if early else "info", name,
            f"conv-then-pool: {conv.path} widens {k} -> {k_out} channels on the {grid_text(conv.out_shape)} "
            f"grid and {name} then pools to {grid_text(after)}; the widening costs "
            f"{human(costs['conv_then_pool'])} MACs where the paper's parallel reduction costs "
            f"{human(costs['parallel'])}",
            {"kind": "conv_then_pool", "conv": conv.path, "alternatives_macs": costs,
             "representation_in": numel(before), "representation_out": numel(after)},
            f"replace {conv.path} + {name} by a stride-2 {kernel}x{kernel} conv to {k_out - k} channels in "
            f"parallel with the stride-2 pooling, concatenated (Figure 10)",
            {"macs": costs["parallel"] - costs["conv_then_pool"]} if extra > 0 else None)
    k = before[0]
    k_out = nxt.out_shape[0] if nxt is not None and len(nxt.out_shape) == 3 else k
    following = ctx.geometry_of(nxt)
    kernel = following.kernel[0] if following is not None else 3
    where = nxt.path if nxt is not None else None
    unit = ctx.inside_residual(nxt.path) if nxt is not None else None
    if unit is not None:
        # the next conv is inside a residual unit: its branch's width is not the representation,
        # the unit's output is (ResNet's stem pools to 64 channels, layer1.0 makes them 256)
        add = ctx.graph.node(unit.add)
        k_out, kernel, where = (add.out_shape[0] if len(add.out_shape) == 3 else k), 3, unit.block
    costs = _alternatives(before[1:], after[1:], k, k_out, kernel)
    ratio = numel(after) / numel(before)
    # a block that narrows the channels before it pools (DenseNet's transition, compressing by half)
    narrows = after[0] < before[0]
    return Finding(
        "§5.grid_reduction", "§5", "warning" if early else "info", name,
        (f"narrow-then-pool: {name} narrows {before[0]} -> {after[0]} channels and pools "
         f"{grid_text(before)} to {grid_text(after)}" if narrows else
         f"pool-then-conv: {name} pools {shape_text(before)} to {shape_text(after)} "
         + (f"before the channels grow (to {k_out} in {where})" if k_out > k else "with the channels unchanged"))
        + f": the representation drops to {ratio:.0%}, a bottleneck",
        {"kind": "narrow_then_pool" if narrows else "pool_then_conv", "representation_in": numel(before),
         "representation_out": numel(after),
         "ratio": round(ratio, 4), "alternatives_macs": costs},
        f"let a stride-2 conv (to {max(k_out - k, k)} channels) run beside the pooling and concatenate, "
        f"so the representation grows to {numel(after[1:]) * (k + max(k_out - k, k)):,} values "
        f"for {human(_alternatives(before[1:], after[1:], k, k + max(k_out - k, k), 3)['parallel'])} MACs",
        {"macs": _alternatives(before[1:], after[1:], k, k + max(k_out - k, k), 3)["parallel"]})


def _next_weighted(ctx: _Context, node: Node) -> Node | None:
    later = itertools.islice(ctx.main, ctx.index[node.path] + 1, None)
    return next((n for n in later if n.op.weighted), None)


# ----------------------------------------------------------------------------- P2
@check
def check_coarsest_width(ctx: _Context) -> list[Finding]:
    """P2: the coarsest grid should carry the widest representation (v3: 768 -> 2048 at 8x8)."""
    stages = [g for g in ctx.report.stages if g.role != AUX and g.name != "head"]
    if len(stages) < 2:
        return []
    last, previous = stages[-1], stages[-2]
    ratio = last.output_shape[0] / previous.output_shape[0]
    if ratio >= WIDENING:
        return []
    severity = "warning" if ratio < 1 else "info"
    return [Finding(
        "P2.coarsest_width", "P2", severity, last.name,
        f"the coarsest grid ({last.name}) carries {last.output_shape[0]} channels against "
        f"{previous.output_shape[0]} on {previous.name} (x{ratio:.2f}); high-dimensional representations "
        "are easiest to process at the coarsest scale",
        {"channels": last.output_shape[0], "channels_before": previous.output_shape[0], "ratio": round(ratio, 3)},
        f"widen the {last.name} stage (Inception-v3 expands its 8x8 modules to 2048 channels, x2.67)")]


# ----------------------------------------------------------------------------- P3
@check
def check_unreduced_spatial_convs(ctx: _Context) -> list[Finding]:
    """P3: a spatial conv on a wide input that no 1x1 reduction made narrower. A grouped conv
    aggregates over the channels of one group: its group's width is the embedding P3 reads."""
    findings = []
    for node in ctx.main:
        geometry = ctx.geometry_of(node)
        if geometry is None or not geometry.spatial:
            continue
        c_in, c_group = geometry.in_channels, geometry.in_channels // geometry.groups
        unit = ctx.in_residual.get(node.path)
        if c_group < WIDE_INPUT or c_in < ctx.block_input[ctx.block(node)][0] or \
                (unit is not None and c_in < ctx.graph.node(unit.fork).out_shape[0]):
            continue  # narrow (per group), or already inside a reduced embedding (a module's, a residual branch's)
        reduced = max(8, c_in // REDUCTION_FACTOR // 8 * 8)
        groups = geometry.groups if reduced % geometry.groups == 0 else 1
        original = ctx.costs(node.path)
        chain = _price_convs(node.in_shapes[0], [
            {"out": reduced, "kernel": 1, "bias": geometry.bias},
            {"out": geometry.out_channels, "kernel": list(geometry.kernel), "stride": list(geometry.stride),
             "padding": list(geometry.padding), "dilation": list(geometry.dilation), "groups": groups,
             "bias": geometry.bias}])
        saved = original.macs - chain.macs
        per_group = f" in groups of {c_group}" if geometry.grouped else ""
        findings.append(Finding(
            "P3.unreduced_spatial_conv", "P3", "warning" if c_group >= VERY_WIDE_INPUT else "info", node.path,
            f"{_kernel(ctx, node)} conv on {c_in} channels{per_group} with no 1x1 reduction before it: "
            f"{human(original.macs)} MACs of spatial aggregation over the full-width embedding",
            {"channels_in": c_in, "channels_out": geometry.out_channels, "macs": original.macs},
            f"put a 1x1 conv to {reduced} channels before it ({c_in} / {c_in / reduced:.0f})",
            {"macs": chain.macs - original.macs, "params": chain.params - original.params,
             "macs_saved_share": round(saved / original.macs, 3)}))
    return findings


@check
def check_grouped_spatial_convs(ctx: _Context) -> list[Finding]:
    """P3 read for depthwise and grouped convs: each output channel aggregates space over one
    channel (depthwise) or one group of channels, a low-dimensional embedding by construction, and
    the 1x1 convs around them do the mixing. One finding for the model, with what they cost."""
    convs = [n for n in ctx.main if (g := ctx.geometry_of(n)) is not None and g.spatial and g.grouped]
    if not convs:
        return []
    total = ctx.report.totals.macs
    macs = sum(ctx.costs(n.path).macs for n in convs)
    depthwise = [n for n in convs if ctx.geometry_of(n).depthwise]
    grouped = [n for n in convs if not ctx.geometry_of(n).depthwise]
    group_widths = sorted({ctx.geometry_of(n).in_channels // ctx.geometry_of(n).groups for n in grouped})
    kernels = sorted({_kernel(ctx, n) for n in convs}, key=lambda k: int(k.split("x")[0]))
    parts = []
    if depthwise:
        parts.append(f"{len(depthwise)} depthwise conv{'s' if len(depthwise) > 1 else ''} "
                     f"aggregate{'' if len(depthwise) > 1 else 's'} space over one channel each")
    if grouped:
        parts.append(f"{len(grouped)} grouped conv{'s' if len(grouped) > 1 else ''} "
                     f"over groups of {_range_text(group_widths)} channels")
    # the dense 1x1 convs next to them (what feeds them and what reads them, through BN, activations
    # and gates) and the others of their blocks (ConvNeXt's second 1x1 follows the first, not the
    # depthwise conv): the channel mixing that goes with aggregation per channel or group
    partners = {p.path for n in convs for p in _pointwise_neighbours(ctx, n)}
    blocks = {ctx.block(n) for n in convs}
    pointwise = [n for n in ctx.main if n.path in partners or (
        ctx.block(n) in blocks and n.path not in ctx.gates and n.path not in ctx.in_shortcut
        and (g := ctx.geometry_of(n)) is not None
        and g.pointwise and not g.grouped)]
    mixing = sum(ctx.costs(n.path).macs for n in pointwise)
    return [Finding(
        "P3.grouped_spatial", "P3", "info", ctx.graph.name,
        f"{' and '.join(parts)} ({', '.join(kernels)}): spatial aggregation over a low-dimensional embedding, "
        f"as P3 asks, taken to {'one channel' if not grouped else 'a few channels'}; "
        f"{'they cost' if len(convs) > 1 else 'it costs'} {human(macs)} MACs ({_pct(macs, total)} of the network), "
        f"the {_plural(len(pointwise), '1x1 conv')} of {'their blocks' if len(blocks) > 1 else 'its block'} "
        f"that mix the channels {human(mixing)} ({_pct(mixing, total)})",
        {"layers": [n.path for n in convs], "macs": macs, "depthwise": len(depthwise), "grouped": len(grouped),
         "group_widths": group_widths, "pointwise": [n.path for n in pointwise], "macs_pointwise": mixing})]


# ----------------------------------------------------------------------------- P4
@check
def check_stage_balance(ctx: _Context) -> list[Finding]:
    """P4: no stage should dominate the compute or the parameters."""
    findings = []
    totals = ctx.report.totals
    main_params = totals.params - totals.params_aux
    for stage in ctx.report.stages:
        if stage.role == AUX:
            continue
        params_share = stage.params / main_params if main_params else 0
        for share, limit, what in ((stage.macs_share, DOMINANT_MACS_SHARE, "multiply-adds"),
                                   (params_share, DOMINANT_PARAMS_SHARE, "parameters")):
            if share > limit:
                findings.append(Finding(
                    "P4.dominant_stage", "P4", "warning", stage.name,
                    f"stage {stage.name} holds {share:.0%} of the network's {what} "
                    f"({stage.layers} layers): width and depth are out of balance",
                    {"share": round(share, 3), "what": what, "limit": limit, "layers": stage.layers},
                    "spread the capacity: " + ("replace the fully connected layers by global average "
                                               "pooling and one classifier, as GoogLeNet does" if stage.name == "head"
                                               else "move width or depth from this stage to the others")))
    return findings


# ----------------------------------------------------------------------------- §3 factorization
@check
def check_large_kernels(ctx: _Context) -> list[Finding]:
    """§3.1: a k x k conv (k >= 5) as a stack of 3x3 convs with the same receptive field."""
    findings = []
    for node in ctx.main:
        geometry = ctx.geometry_of(node)
        if geometry is None or geometry.grouped or min(geometry.kernel) < 5 or geometry.dilation != (1, 1):
            continue
        k, s = geometry.kernel[0], geometry.stride[0]
        if not geometry.square or geometry.stride != (s, s):
            continue
        # n 3x3 layers, the first carrying the stride: r = 3 + 2 s (n - 1) >= k
        layers = math.ceil((k - 3) / (2 * s)) + 1
        c_in, c_out, bias = geometry.in_channels, geometry.out_channels, geometry.bias
        middle = max(1, round(math.sqrt(c_in * c_out)))  # the paper: grow by sqrt(alpha) per step
        # per axis: unpadded stays unpadded, so the chain fits the grid
        first_pad = [1 if p else 0 for p in geometry.padding]
        chain = [{"out": middle, "kernel": 3, "stride": s, "padding": first_pad, "bias": bias}]
        chain += [{"out": middle, "kernel": 3, "padding": 1, "bias": bias} for _ in range(layers - 2)]
        chain += [{"out": c_out, "kernel": 3, "padding": 1, "bias": bias}] if layers > 1 else []
        priced = _price_convs(node.in_shapes[0], chain)
        original = ctx.costs(node.path)
        saved = original.macs - priced.macs
        if saved <= 0:
            continue
        significant = original.macs >= SIGNIFICANT_LAYER * ctx.report.totals.macs
        findings.append(Finding(
            "§3.1.large_kernel", "§3.1", "warning" if significant else "info", node.path,
            f"{k}x{k}{'/' + str(s) if s > 1 else ''} conv ({c_in} -> {c_out}): {layers} stacked 3x3 convs see the "
            f"same {priced.rf_size[0]}x{priced.rf_size[1]} field for {_pct(saved, original.macs)} fewer MACs "
            f"({human(original.macs)} -> {human(priced.macs)}); a {k}x{k} costs {k * k}/9 = {k * k / 9:.2f}x a 3x3",
            {"kernel": k, "stride": s, "channels_in": c_in, "channels_out": c_out, "macs": original.macs},
            f"replace it by {layers} stacked 3x3 convs ({' -> '.join(str(c) for c in [c_in] + [c['out'] for c in chain])} "
            "channels"
            f"{', the first with stride ' + str(s) if s > 1 else ''}, ReLU between)",
            {"macs": priced.macs - original.macs, "params": priced.params - original.params,
             "rf": [k, k], "rf_after": list(priced.rf_size), "macs_saved_share": round(saved / original.macs, 3)}))
    return findings


def _is_dense_spatial_conv(ctx: _Context, node: Node) -> bool:
    """A spatial conv that mixes all its input channels (not grouped, not depthwise)."""
    geometry = ctx.geometry_of(node)
    return geometry is not None and geometry.spatial and not geometry.grouped


def _next_dense_spatial_conv(ctx: _Context, node: Node) -> Node | None:
    """The dense spatial conv this conv feeds alone (through BN and activations), if it feeds one."""
    current = node
    while True:
        readers = ctx.consumers.get(current.path, [])
        if len(readers) != 1:
            return None
        reader = ctx.graph.node(readers[0])
        if _is_dense_spatial_conv(ctx, reader):
            return reader
        if not _passes_through(reader):
            return None
        current = reader


@check
def check_factorized_chains(ctx: _Context) -> list[Finding]:
    """§3: recognise factorizations already made: stacked 3x3s, 1xn then nx1, of dense convs (a
    depthwise conv aggregates one channel: check_grouped_spatial_convs reads it); one finding per
    block. Chains that are a residual block's whole branch (ResNet's basic block) are the network's
    block design, not a choice made in one place: one finding for the model."""
    starts = [n for n in ctx.main if _is_dense_spatial_conv(ctx, n)
              and not ((before := _producer(ctx, n)) is not None and _is_dense_spatial_conv(ctx, before))]
    per_block: dict[str, list[list[Node]]] = {}
    residual: list[list[Node]] = []
    for start in starts:
        chain = [start]
        while (following := _next_dense_spatial_conv(ctx, chain[-1])) is not None and following.role == start.role:
            chain.append(following)
        if len(chain) < 2:
            continue
        if _is_whole_residual_branch(ctx, chain):
            residual.append(chain)
        else:
            per_block.setdefault(ctx.block(start), []).append(chain)
    findings = []
    for block, chains in per_block.items():
        described, chain_macs, single_macs = _describe_chains(ctx, chains, block)
        where = block if any(c.path != ctx.block(c) for chain in chains for c in chain) else \
            f"{chains[0][0].path}..{chains[0][-1].path}"
        findings.append(Finding(
            "§3.factorized", "§3", "info", block,
            f"{where} uses factorized convolutions: {'; '.join(described)}; "
            f"{human(chain_macs)} MACs where single convs with the same fields would cost {human(single_macs)}",
            {"chains": [[c.path for c in chain] for chain in chains], "macs": chain_macs,
             "macs_unfactorized": single_macs}))
    if residual:
        blocks = list(dict.fromkeys(ctx.in_residual[chain[0].path].block for chain in residual))
        _, chain_macs, single_macs = _describe_chains(ctx, residual, None)
        kinds = sorted({" + ".join(_kernel(ctx, c) for c in chain) for chain in residual})
        fields = sorted({"x".join(map(str, chain_size(_rf_step(c) for c in chain))) for chain in residual})
        findings.append(Finding(
            "§3.factorized", "§3", "info", ctx.graph.name,
            f"the residual branches of {len(blocks)} blocks ({blocks[0]} .. {blocks[-1]}) are stacked spatial "
            f"convs ({' or '.join(kinds)}: {' or '.join(fields)} fields), the factorization of §3.1 as the "
            f"network's block design (He et al.'s basic block); {human(chain_macs)} MACs where single convs "
            f"with the same fields would cost {human(single_macs)}",
            {"chains": [[c.path for c in chain] for chain in residual], "macs": chain_macs,
             "macs_unfactorized": single_macs, "blocks": blocks}))
    return findings


def _is_whole_residual_branch(ctx: _Context, chain: list[Node]) -> bool:
    """The chain holds every dense spatial conv of one residual branch, and that branch has no
    parallel paths of its own (ResNet's basic block; not Inception-ResNet's multi-branch blocks)."""
    unit = ctx.in_residual.get(chain[0].path)
    if unit is None or any(ctx.in_residual.get(c.path) is not unit for c in chain):
        return False
    layers = [ctx.graph.node(p) for p in unit.branch if p not in ctx.gates]
    spatial = {n.path for n in layers if _is_dense_spatial_conv(ctx, n)}
    return spatial == {c.path for c in chain} and not any(n.op.merges for n in layers)


def _describe_chains(ctx: _Context, chains: list[list[Node]], block: str | None) -> tuple[list[str], int, int]:
    """Each chain in words, the MACs of its layers, and what single convs with the same fields (and
    the same input and output) would cost, priced through the registry."""
    described, chain_macs, single_macs = [], 0, 0
    conv = OPS["conv"]
    for chain in chains:
        rf_size = chain_size(_rf_step(c) for c in chain)
        single = conv.bind([], {"out": chain[-1].out_shape[0], "kernel": list(rf_size), "bias": False})
        single_macs += conv.macs(single, [chain[0].in_shapes[0]], chain[-1].out_shape)
        chain_macs += sum(ctx.costs(c.path).macs for c in chain)
        names = " + ".join(f"{_short(c.path, block) if ctx.block(c) == block else ctx.block(c)} ({_kernel(ctx, c)})"
                           for c in chain)
        size = f"{rf_size[0]}x{rf_size[1]}"
        described.append(f"{names}: {'an' if size.startswith(('8', '11', '18')) else 'a'} {size} field")
    return described, chain_macs, single_macs


@check
def check_asymmetric_opportunities(ctx: _Context) -> list[Finding]:
    """§3.2: n x n convs (n >= 3) on a 12..20 grid as 1 x n then n x 1; one finding per block."""
    per_block: dict[str, list[tuple[Node, _Priced]]] = {}
    for node in ctx.main:
        geometry = ctx.geometry_of(node)
        if geometry is None or geometry.grouped or geometry.stride != (1, 1):
            continue
        n = geometry.kernel[0]
        grid = _grid(node.out_shape)
        if not geometry.square or n < 3 or not (MEDIUM_GRID[0] <= grid[0] <= MEDIUM_GRID[1]):
            continue
        (pad_h, pad_w), (dilation_h, dilation_w) = geometry.padding, geometry.dilation
        middle = max(1, round(math.sqrt(geometry.in_channels * geometry.out_channels)))  # equal channels: 1 - 2/n
        # each half keeps its axis' padding and dilation, so the pair sees the n x n conv's field
        chain = _price_convs(node.in_shapes[0], [
            {"out": middle, "kernel": [1, n], "padding": [0, pad_w], "dilation": [1, dilation_w],
             "bias": geometry.bias},
            {"out": geometry.out_channels, "kernel": [n, 1], "padding": [pad_h, 0], "dilation": [dilation_h, 1],
             "bias": geometry.bias}])
        if chain.macs < ctx.costs(node.path).macs:
            per_block.setdefault(ctx.block(node), []).append((node, chain))
    findings = []
    for run in _runs_of_like_blocks(ctx, per_block):
        items = [item for block in run for item in per_block[block]]
        before = sum(ctx.costs(node.path).macs for node, _ in items)
        after = sum(chain.macs for _, chain in items)
        params_delta = sum(chain.params - ctx.costs(node.path).params for node, chain in items)
        grid = grid_text(items[0][0].out_shape)
        first = per_block[run[0]]
        names = ", ".join(f"{node.path} ({_kernel(ctx, node)})" for node, _ in first)
        where = (f"{names}" if len(run) == 1 else
                 f"{len(run)} like blocks, {run[0]} .. {run[-1]}, {len(first)} each as {names}")
        figures = {"convs": [node.path for node, _ in items], "macs": before, "grid": grid}
        if len(run) > 1:
            figures["blocks"] = list(run)
        findings.append(Finding(
            "§3.2.asymmetric", "§3.2", "info", run[0],
            f"{len(items)} square spatial conv{'s' if len(items) > 1 else ''} on the {grid} grid, where the "
            "paper found 1xn then nx1 "
            f"to work very well: {where}; factorized they cost {_pct(before - after, before)} fewer MACs "
            f"({human(before)} -> {human(after)}), same receptive field",
            figures,
            "replace each n x n conv by a 1 x n conv then an n x 1 conv, the first to the geometric mean "
            "of the input and output widths (1 - 2/n cheaper at equal channels: 33% for 3x3, 71% for 7x7)",
            {"macs": after - before, "params": params_delta}))
    return findings


def _runs_of_like_blocks(ctx: _Context, per_block: dict[str, list]) -> list[list[str]]:
    """The blocks of `per_block` (block -> its (conv, ...) items, in network order) grouped into runs of
    consecutive blocks whose items are alike (the same kernels, channels and grids: repeated
    instances of one block, as ResNet's or DenseNet's), so a run gets one finding, not one per block."""
    def signature(block: str) -> tuple:
        return tuple((tuple(n.in_shapes[0]), tuple(n.out_shape), _kernel(ctx, n)) for n, *_ in per_block[block])

    runs: list[list[str]] = []
    for block in per_block:
        if runs and signature(runs[-1][-1]) == signature(block) and _consecutive(ctx, runs[-1][-1], block):
            runs[-1].append(block)
        else:
            runs.append([block])
    return runs


def _consecutive(ctx: _Context, earlier: str, later: str) -> bool:
    """No other block lies between the two on the inference path."""
    end, start = ctx.index[ctx.by_block[earlier][-1].path], ctx.index[ctx.by_block[later][0].path]
    return all(ctx.block(node) in (earlier, later) for node in ctx.main[end + 1:start])


@check
def check_early_asymmetric(ctx: _Context) -> list[Finding]:
    """§3.2: asymmetric convs on grids larger than 20 (the paper found them to work poorly early)."""
    findings = []
    for node in ctx.main:
        geometry = ctx.geometry_of(node)
        grid = _grid(node.in_shapes[0])
        if geometry is None or geometry.square or grid is None or max(grid) <= MEDIUM_GRID[1]:
            continue
        kh, kw = geometry.kernel
        findings.append(Finding(
            "§3.2.early_asymmetric", "§3.2", "info", node.path,
            f"{kh}x{kw} conv on the {grid[0]}x{grid[1]} grid: the paper found asymmetric factorization "
            f"to work poorly on early layers and well on {MEDIUM_GRID[0]}..{MEDIUM_GRID[1]} grids",
            {"kernel": [kh, kw], "grid": list(grid)},
            "keep square kernels (or stacked 3x3s) before the grid is down to about 20x20"))
    return findings


# ----------------------------------------------------------------------------- §4 auxiliary heads
@check
def check_auxiliary_heads(ctx: _Context) -> list[Finding]:
    """§4: auxiliary classifiers act as regularizers, best when batch-normalized ("BN-auxiliary").
    A network without one gets no finding: an auxiliary head is a training option, and its absence
    says nothing about the design."""
    aux = [n for n in ctx.graph.layers() if n.role == AUX]
    findings = []
    for head in dict.fromkeys(ctx.block(n) for n in aux):
        layers = [n for n in aux if ctx.block(n) == head]
        weighted = [n for n in layers if n.op.weighted][:-1]  # all but the final classifier
        unnormalised = [n.path for n in weighted if not _followed_by_bn(ctx, n)]
        grid = next((grid_text(n.in_shapes[0]) for n in layers if len(n.in_shapes[0]) == 3), "?")
        if unnormalised:
            findings.append(Finding(
                "§4.auxiliary", "§4", "info", head,
                f"auxiliary head {head} on the {grid} grid without batch norm after "
                f"{', '.join(unnormalised)}: the paper's BN-auxiliary (every layer of the head normalized, "
                "the fully connected one too) gave 21.6% -> 21.2% top-1 error (Table 3)",
                {"grid": grid, "unnormalised": unnormalised},
                "add batch norm after those layers of the head"))
        else:
            findings.append(Finding(
                "§4.auxiliary", "§4", "info", head,
                f"auxiliary head {head} on the {grid} grid is batch-normalized (the paper's BN-auxiliary)",
                {"grid": grid}))
    return findings


def _followed_by_bn(ctx: _Context, node: Node) -> bool:
    return any(ctx.graph.node(p).op.category is Category.BATCH_NORM for p in ctx.consumers.get(node.path, []))


# ----------------------------------------------------------------------------- receptive fields
_MERGE_VERBS = {MergeKind.ADD: "adds", MergeKind.CONCAT: "concatenates", MergeKind.GATE: "multiplies"}


@check
def check_alignment(ctx: _Context) -> list[Finding]:
    """Merges whose branches see fields centred on different input pixels (reported once per block)."""
    fields = ctx.fields
    findings = []
    for node in ctx.main:
        if not node.op.merges:
            continue
        inputs = [fields[i] for i in node.inputs]
        if all(f.aligned for f in inputs) and not fields[node.path].aligned:
            centres = sorted({f.center for f in inputs})
            findings.append(Finding(
                "RF.unaligned_merge", "§5", "warning", ctx.block(node),
                f"{node.path} {_MERGE_VERBS.get(node.op.merge_kind, 'merges')} branches whose units are "
                "centred on different input pixels "
                f"({', '.join(f'{c[0]:g}' for c in centres)}): features of one position mix different places",
                {"centres": [list(c) for c in centres]},
                "pad the strided convs so every branch is centred alike (TF's SAME pads only the end)"))
    return findings


def review(graph: Graph, report: CostReport, fields: dict[str, ReceptiveField]) -> list[Finding]:
    """Every check's findings, most severe first, then in network order."""
    with paused_gc():  # a few records per layer, none freed: see perf.paused_gc
        ctx = _context(graph, report, fields)
        findings = [f for check in CHECKS for f in check(ctx)]
    order = {n.path: i for i, n in enumerate(graph.order)}
    order.update({b: i for i, b in reversed(list(enumerate(ctx.block_of.get(n.path, n.block) for n in graph.order)))})
    return sorted(findings, key=lambda f: (severity_rank(f.severity), order.get(f.path, -1)))


def bottleneck_places(finding: Finding) -> list[str]:
    """The blocks or layers a finding marks as a representational bottleneck: its own path for the
    findings of is_bottleneck, the blocks that keep less than half of their input for a model's
    linear bottlenecks (P1 would call them bottlenecks, MobileNetV2 argues for them), else none."""
    if finding.check == "P1.linear_bottleneck":
        return list(finding.figures.get("drops", {}))
    return [finding.path] if is_bottleneck(finding) else []


def is_bottleneck(finding: Finding) -> bool:
    """Findings that mark a representational bottleneck (P1, and §5's pool-then-conv reductions,
    which the paper rejects for creating one); plots mark these. P1.residual says the opposite:
    a residual branch's narrowing is not one."""
    return (finding.principle == "P1" and finding.check not in ("P1.residual", "P1.linear_bottleneck")) or \
        finding.figures.get("kind") == "pool_then_conv"


# ----------------------------------------------------------------------------- text helpers
def _short(path: str, block: str) -> str:
    """A layer's name inside its block, without the template's own '.conv' suffix."""
    name = path[len(block) + 1:] if path.startswith(block + ".") else path
    return name.removesuffix(".conv") or path


def _kernel(ctx: _Context, node: Node) -> str:
    kh, kw = ctx.geometry_of(node).kernel
    return f"{kh}x{kw}"

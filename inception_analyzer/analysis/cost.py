"""Exact static cost of a graph: params, multiply-accumulates, other FLOPs, activations.

A pure function of the graph IR; every number comes from the op registry's rules (see
docs/conventions.md). Figures are per image (batch 1). Auxiliary heads (role "aux") run only
in training: their params are part of `params` (as `sum(p.numel())` counts them) but their
MACs are reported apart, never in the inference total.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..graph import AUX, INPUT, Graph, Node, grid_of, grid_units
from ..dtypes import FP32
from ..numbers import numel
from ..perf import paused_gc

@dataclass
class LayerCost:
    """One leaf op: its shapes and counts. `activations` = elements of its output."""

    path: str
    op: str
    args: str
    role: str
    block: str
    stage: str
    input_shapes: list[list[int]]
    output_shape: list[int]
    params: int
    buffers: int
    macs: int
    other_flops: int
    fvcore_flops: int
    activations: int
    weighted: bool
    modelled: bool = True        # False for an imported op no kind models: macs/flops unknown (0 here)


@dataclass
class GroupCost:
    """A roll-up of consecutive layers (a block or a stage)."""

    name: str
    role: str
    output_shape: list[int]
    output_path: str            # the group's last layer, whose output leaves the group
    layers: int
    params: int
    macs: int
    other_flops: int
    activations: int
    macs_share: float = 0.0


@dataclass
class Totals:
    params: int                 # learnable, aux heads included (= sum(p.numel()) of the model)
    params_aux: int             # the part of `params` in auxiliary heads
    buffers: int                # BN running statistics etc., not parameters
    macs: int                   # inference multiply-accumulates, conv + linear, main path
    macs_aux: int               # training-only multiply-accumulates of auxiliary heads
    other_flops: int            # inference FLOPs of the other ops (BN, pooling, activations, merges)
    fvcore_flops: int           # what fvcore's FlopCountAnalysis().total() gives in eval mode
    activations: int            # output elements of every inference op
    activation_bytes: int       # the same in bytes (fp32)
    peak_activation_bytes: int  # largest set of live tensors in an inference pass (fp32, no in-place)
    weighted_layers: int        # conv + linear layers on the inference path
    depth: int                  # conv + linear layers on the longest inference path
    layers: int                 # leaf ops, aux included
    # "partial" when some ops are not modelled (an import with --no-strict): their MACs and FLOPs
    # are unknown, so macs, other_flops and fvcore_flops are lower bounds; `unmodelled` names them
    status: str = "complete"
    unmodelled: list[str] = field(default_factory=list)


@dataclass
class CostReport:
    model: str
    input: list[int]
    arguments: dict
    metadata: dict
    layers: list[LayerCost]
    totals: Totals
    blocks: list[GroupCost] = field(default_factory=list)
    stages: list[GroupCost] = field(default_factory=list)


def _grid_label(shape: tuple) -> str:
    grid = grid_of(shape)
    return f"{grid[0]}x{grid[1]}" if grid else "head"


def stages_of_layers(graph: Graph) -> dict[str, str]:
    """Each layer's stage: the grid its unit's output is on ('35x35'), 'head' past the grids, 'aux'.
    The unit is the block when it changes the grid at most once, so a reduction block belongs to
    the grid it outputs; a module holding several grids is split along them (graph.grid_units)."""
    unit_of = grid_units(graph)
    last_node: dict[str, Node] = {}
    for node in graph.layers():
        last_node[unit_of[node.path]] = node
    return {path: ("aux" if (last := last_node[unit]).role == AUX else _grid_label(last.out_shape))
            for path, unit in unit_of.items()}


def layer_costs(graph: Graph) -> list[LayerCost]:
    stage_of = stages_of_layers(graph)
    records = []
    for node in graph.layers():
        op, a, ins, out = node.op, node.args, list(node.in_shapes), node.out_shape
        records.append(LayerCost(
            path=node.path, op=op.name, args=op.describe(a), role=node.role, block=node.block,
            stage=stage_of[node.path], input_shapes=[list(s) for s in ins], output_shape=list(out),
            params=op.params(a, ins, out), buffers=op.buffers(a, ins, out), macs=op.macs(a, ins, out),
            other_flops=op.other_flops(a, ins, out), fvcore_flops=op.fvcore_flops(a, ins, out),
            activations=numel(out), weighted=op.weighted, modelled=op.modelled))
    return records


def _longest_weighted_path(graph: Graph) -> int:
    depth = {INPUT: 0}
    for node in graph.layers():
        if node.role == AUX:
            continue
        depth[node.path] = max(depth[i] for i in node.inputs) + (1 if node.op.weighted else 0)
    return depth[graph.output]


def peak_activation_bytes(graph: Graph, bytes_per_element: int = 4) -> int:
    """Simulate an inference pass in order: a tensor lives from its op until its last reader."""
    main = [n for n in graph.order if n.role != AUX]
    last_read = {}
    for step, node in enumerate(main):
        for source in node.inputs:
            last_read[source] = step
    live, peak = 0, 0
    for step, node in enumerate(main):
        live += numel(node.out_shape) * bytes_per_element
        peak = max(peak, live)
        for source in set(node.inputs):
            if last_read.get(source) == step and source != graph.output:
                live -= numel(graph.node(source).out_shape) * bytes_per_element
    return peak


def rollup(records: Iterable[LayerCost], key) -> list[GroupCost]:
    """Group records by key(record) (block or stage) and role, in order of first appearance."""
    groups: dict[tuple, GroupCost] = {}
    for rec in records:
        name = key(rec)
        group = groups.get((name, rec.role))
        if group is None:
            group = groups[(name, rec.role)] = GroupCost(name, rec.role, rec.output_shape, rec.path, 0, 0, 0, 0, 0)
        group.layers += 1
        group.params += rec.params
        group.macs += rec.macs
        group.other_flops += rec.other_flops
        group.activations += rec.activations
        group.output_shape, group.output_path = rec.output_shape, rec.path
    result = list(groups.values())
    main_macs = sum(g.macs for g in result if g.role != AUX) or 1
    for group in result:
        group.macs_share = group.macs / main_macs if group.role != AUX else 0.0
    return result


def analyze_cost(graph: Graph) -> CostReport:
    """Per-layer records, block and stage roll-ups and totals for one graph."""
    with paused_gc():
        return _analyze_cost(graph)


def _analyze_cost(graph: Graph) -> CostReport:
    records = layer_costs(graph)
    main = [r for r in records if r.role != AUX]
    aux = [r for r in records if r.role == AUX]
    totals = Totals(
        params=sum(r.params for r in records),
        params_aux=sum(r.params for r in aux),
        buffers=sum(r.buffers for r in records),
        macs=sum(r.macs for r in main),
        macs_aux=sum(r.macs for r in aux),
        other_flops=sum(r.other_flops for r in main),
        fvcore_flops=sum(r.fvcore_flops for r in main),
        activations=sum(r.activations for r in main),
        activation_bytes=sum(r.activations for r in main) * FP32.bytes,
        peak_activation_bytes=peak_activation_bytes(graph),
        weighted_layers=sum(1 for r in main if r.weighted),
        depth=_longest_weighted_path(graph),
        layers=len(records),
        unmodelled=[r.path for r in records if not r.modelled],
    )
    totals.status = "partial" if totals.unmodelled else "complete"
    return CostReport(
        model=graph.name, input=list(graph.input_shape), arguments=dict(graph.arguments),
        metadata=graph.metadata, layers=records, totals=totals,
        blocks=rollup(records, lambda r: r.block), stages=rollup(records, lambda r: r.stage))


def last_feature_map(report: CostReport) -> str | None:
    """The last inference layer whose output is still a grid (H x W > 1): where the network's
    spatial receptive field is quoted (VGG16's pool5, Inception-v3's Mixed_7c)."""
    grids = [r.path for r in report.layers
             if r.role != AUX and len(r.output_shape) == 3 and r.output_shape[1] * r.output_shape[2] > 1]
    return grids[-1] if grids else None

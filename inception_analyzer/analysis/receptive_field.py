"""Receptive fields per node, per axis, through branches: size, effective stride and padding.

For one path of layers, with each layer's kernel k, stride s, leading padding p and dilation d
(the op registry's `rf_step`), the usual recurrences (Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019) give, per axis:

    r_out = r_in + (k - 1) * d * j_in      receptive field size, in input pixels
    j_out = j_in * s                       effective stride: input pixels between adjacent units
    P_out = P_in + p * j_in                effective padding: the first unit's field starts at -P

The first output unit's field spans input pixels [-P, -P + r - 1]; its centre is (r - 1) / 2 - P,
carried along by its own recurrence, c_out = c_in + (k - 1) * d * j_in / 2 - p * j_in (the same
number on a plain path).

Where branches merge (concat, add), every path from the input is a different field. We keep the
largest r (`size`, with the padding of that path) and the smallest (`size_min`), and flag the node
as not `aligned` when the paths' centres (or strides) differ: units of such a merge mix features
centred on different input pixels, the case google-research's `receptive_field` refuses. A node
downstream of an unaligned merge is unaligned too. A branch broadcast over the grid (a
squeeze-and-excitation gate, one value per channel: graph.broadcast_inputs) makes every unit depend
on the whole input, so it widens r, but it has no position of its own: the merge keeps the local
paths' padding and centre, and the layers after it move that centre, not the middle of r.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

from ..graph import INPUT, Graph, broadcast_inputs
from ..ops import RFStep
from ..perf import paused_gc


@dataclass(frozen=True)
class ReceptiveField:
    path: str
    size: tuple[int, int]          # largest over paths, (h, w), input pixels
    size_min: tuple[int, int]      # smallest over paths
    stride: tuple[int, int]        # effective stride
    padding: tuple[int, int]       # effective padding of the largest path
    center: tuple[float, float]    # centre of the first output unit, 0-based input pixel coords
    aligned: bool                  # all paths centred on the same pixel with the same stride
    grid: tuple[int, int]          # units along (h, w); for vectors, the grid they were flattened from

    def as_dict(self) -> dict:
        return {"size": list(self.size), "stride": list(self.stride), "padding": list(self.padding),
                "size_min": list(self.size_min), "center": list(self.center), "aligned": self.aligned}


@dataclass(frozen=True)
class Growth:
    """What one layer does to a field whose units lie `j` input pixels apart, per axis (h, w)."""

    size: tuple[int, int]       # (k - 1) * d * j: input pixels the field widens by
    padding: tuple[int, int]    # p * j: added to the effective padding
    stride: tuple[int, int]     # j * s: the effective stride after the layer


def growth(step: RFStep, stride: tuple[int, int]) -> Growth:
    """The recurrences of the module docstring, for one layer: the one place they are written. An
    upsampling layer's stride is a fraction (1/2: its units lie half as far apart): the figures
    stay whole numbers wherever they are."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = step.kernel, step.dilation, step.padding, step.stride
    jh, jw = stride
    return Growth((_number((kh - 1) * dh * jh), _number((kw - 1) * dw * jw)),
                  (_number(ph * jh), _number(pw * jw)), (_number(jh * sh), _number(jw * sw)))


def _number(value):
    """An int where the value is whole, else a float (a field's figures after upsampling)."""
    if type(value) is int:
        return value
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def chain_size(steps: Iterable[RFStep]) -> tuple[int, int]:
    """The receptive field size of a chain of layers on its own (from one input unit)."""
    size, stride = (1, 1), (1, 1)
    for step in steps:
        grown = growth(step, stride)
        size, stride = _plus(size, grown.size), grown.stride
    return size


def _plus(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return (a[0] + b[0], a[1] + b[1])


def _step(field: ReceptiveField, path: str, step: RFStep | None, grid_out: tuple[int, int]) -> ReceptiveField:
    if step is None:
        return ReceptiveField(path, field.size, field.size_min, field.stride, field.padding, field.center,
                              field.aligned, grid_out)
    grown = growth(step, field.stride)
    size, padding = _plus(field.size, grown.size), _plus(field.padding, grown.padding)
    # the centre moves by half the growth less the padding: (r - 1) / 2 - P on a plain path, and
    # still the local paths' centre after a broadcast gate widened r to the whole input
    center = tuple(c + g / 2 - p for c, g, p in zip(field.center, grown.size, grown.padding))
    return ReceptiveField(path, size, _plus(field.size_min, grown.size), grown.stride, padding, center,
                          field.aligned, grid_out)


def _merge(fields: list[ReceptiveField], path: str, grid_out: tuple[int, int],
           broadcast: list[bool] | None = None) -> ReceptiveField:
    """Largest and smallest field over the merged paths. A branch broadcast over the grid (a
    squeeze-and-excitation gate of one unit per channel) sees the whole input for every output
    unit: it widens the field but has no centre of its own to align."""
    size, size_min, stride, padding, center = [], [], [], [], []
    local = [f for f, wide in zip(fields, broadcast or [False] * len(fields)) if not wide] or fields
    aligned = all(f.aligned for f in fields)
    for axis in (0, 1):
        widest = max(local, key=lambda f: f.size[axis])
        size.append(max(f.size[axis] for f in fields))
        padding.append(widest.padding[axis])
        stride.append(widest.stride[axis])
        center.append(widest.center[axis])
        size_min.append(min(f.size_min[axis] for f in fields))
        aligned = aligned and len({f.stride[axis] for f in local}) == 1 \
            and len({f.center[axis] for f in local}) == 1
    return ReceptiveField(path, tuple(size), tuple(size_min), tuple(stride), tuple(padding), tuple(center),
                          aligned, grid_out)


def receptive_fields(graph: Graph) -> dict[str, ReceptiveField]:
    """The receptive field of every node's output units, keyed by node path (input included)."""
    with paused_gc():
        _, h, w = graph.input_shape
        fields = {INPUT: ReceptiveField(INPUT, (1, 1), (1, 1), (1, 1), (0, 0), (0.0, 0.0), True, (h, w))}
        for node in graph.layers():
            inputs = [fields[i] for i in node.inputs]
            out = node.out_shape
            if node.op.merges:
                grid = tuple(out[1:]) if len(out) == 3 else inputs[0].grid
                fields[node.path] = _merge(inputs, node.path, grid, list(broadcast_inputs(node)))
                continue
            step = node.op.rf_step(node.args, list(node.in_shapes), inputs[0].grid)
            if len(out) == 3:
                grid = tuple(out[1:])
            else:  # a vector: flatten keeps the grid it came from, a layer that read it all leaves one unit
                grid = inputs[0].grid if step is None else (1, 1)
            fields[node.path] = _step(inputs[0], node.path, step, grid)
        return fields

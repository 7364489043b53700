"""Merges: the ops that join branches (concat, add, and the broadcast product of gates)."""
from __future__ import annotations

import functools
import operator
from typing import Callable, ClassVar

from ..errors import ShapeError
from ..numbers import dims_text, numel
from .base import BackwardMemory, Category, ForwardMemory, MergeKind, OpKind, Storage, Timing, refuse_unless, register


class _Merge(OpKind):
    """A merge has no module of its own: the enclosing container joins the branches (`combine`)."""

    fresh_output = True
    category = Category.MERGE
    builds_module = False
    min_inputs, max_inputs = 2, None


class _ElementwiseMerge(_Merge):
    """Joins the branches element by element with one binary operation."""

    operation: ClassVar[Callable]   # operator.add, operator.mul
    elementwise = True

    def other_flops(self, a, inputs, out):
        return (len(inputs) - 1) * numel(out)

    def combine(self, tensors):
        return functools.reduce(self.operation, tensors)


@register
class Concat(_Merge):
    name = "concat"
    timings = (Timing(maps=2, quick=True), Timing(maps=4))    # two branches and four (Inception's)
    summary = "concatenates branches along channels (the Inception filter concat)"
    merge_kind = MergeKind.CONCAT
    min_inputs = 1   # torch.cat([x]) is a copy of x (DenseNet's first layer of a block reads one tensor)
    torch_calls = {"torch.cat": ("dim",), "torch.concat": ("dim",), "torch.concatenate": ("dim",)}

    def from_torch_call(self, values, in_shapes, out_shape):
        dim = values.get("dim", 0)
        refuse_unless(all(len(s) == 3 for s in in_shapes) and dim in (1, -3),
                       f"a concatenation along dim {dim} (only channels, dim 1, of feature maps)")
        return {}

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return ForwardMemory()    # its backward needs only the branches' sizes

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(Storage.SHARED)   # each branch gets a slice (a view) of the gradient

    def output_shape(self, a, inputs):
        grids = {tuple(s[1:]) for s in inputs}
        if len(grids) != 1:
            listed = ", ".join(dims_text(s) for s in inputs)
            raise ShapeError(f"concat needs branches on one grid, got {listed}")
        return (sum(s[0] for s in inputs), *inputs[0][1:])

    def combine(self, tensors):
        import torch
        return torch.cat(tensors, 1)


@register
class Add(_ElementwiseMerge):
    name = "add"
    timings = (Timing(maps=2, quick=True),)
    summary = "element-wise sum of branches (residual connections)"
    merge_kind = MergeKind.ADD
    operation = operator.add
    other_flops_rule = "(branches - 1) adds per output element"
    torch_calls = {"_operator.add": (), "_operator.iadd": (), "torch.add": ("alpha",), ".add": ("alpha",),
                   ".add_": ("alpha",)}

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(values.get("alpha", 1) == 1, "an add with alpha (a scaled second input)")
        return {}

    def backward_flops(self, a, inputs, out):
        return 0, 0               # every branch gets the output's gradient as it is

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return ForwardMemory()    # keeps nothing

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(Storage.SHARED)   # the same gradient tensor to every branch

    def output_shape(self, a, inputs):
        if len({tuple(s) for s in inputs}) != 1:
            listed = ", ".join(dims_text(s) for s in inputs)
            raise ShapeError(f"add needs branches of one shape, got {listed}")
        return inputs[0]


@register
class Multiply(_ElementwiseMerge):
    name = "mul"
    timings = (Timing(gate=True),)    # a map by its squeeze-and-excitation gate
    summary = "element-wise product of branches, broadcasting [C, 1, 1] over the grid (squeeze-and-excitation gates)"
    merge_kind = MergeKind.GATE
    operation = operator.mul
    other_flops_rule = "(branches - 1) multiplies per output element"
    torch_calls = {"_operator.mul": (), "_operator.imul": (), "torch.mul": (), ".mul": (), ".mul_": ()}

    def backward_flops(self, a, inputs, out):
        # each branch's gradient: the output's gradient times the other branches (one multiply per
        # output element each), and a broadcast branch summed back over the grid (one add each)
        return (2 * len(inputs) - 1) * numel(out), 0

    def backward_memory(self, a, inputs, out, run, input_grads):
        # a broadcast branch's gradient is made at the output's size, then summed over the grid
        broadcast = any(tuple(s) != tuple(out) for s in inputs)
        return BackwardMemory(workspace_bytes=run.bytes_of(out) if broadcast else 0)

    def output_shape(self, a, inputs):
        if len({len(s) for s in inputs}) != 1:
            raise ShapeError(f"mul needs branches of one rank, got {', '.join(dims_text(s) for s in inputs)}")
        out = tuple(max(dims) for dims in zip(*inputs))
        if any(d not in (1, o) for s in inputs for d, o in zip(s, out)):
            raise ShapeError(f"mul needs branches of one shape or of size 1 where they differ (broadcast), "
                             f"got {', '.join(dims_text(s) for s in inputs)}")
        return out

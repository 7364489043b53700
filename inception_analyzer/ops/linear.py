"""Fully connected layer."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import dims_text
from .args import Arg, boolean, positive_int
from .base import Category, OpKind, RFStep, register


@register
class Linear(OpKind):
    fresh_output = True
    name = "linear"
    category = Category.LINEAR
    summary = "fully connected layer (torch.nn.Linear); in_features come from the input"
    args = (Arg("out", positive_int), Arg("bias", boolean, True))
    weighted = True
    torch_modules = ("Linear",)

    def from_torch_module(self, m, in_shapes, out_shape):
        return {"out": m.out_features, "bias": m.bias is not None}

    def output_shape(self, a, inputs):
        if len(inputs[0]) != 1:
            raise ShapeError(f"linear needs a vector; got a feature map {dims_text(inputs[0])} "
                             "(add flatten before it)")
        return (a["out"],)

    def params(self, a, inputs, out):
        return inputs[0][0] * a["out"] + (a["out"] if a["bias"] else 0)

    def macs(self, a, inputs, out):
        return inputs[0][0] * a["out"]

    def fvcore_flops(self, a, inputs, out, training=False):
        return self.macs(a, inputs, out)

    def rf_step(self, a, inputs, grid):
        # every output reads every input: one window over the whole grid the vector came from
        return RFStep(grid, grid, (0, 0))

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Linear(inputs[0][0], a["out"], a["bias"])

    def describe(self, a):
        return f"{a['out']}"

"""Fully connected layer."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import dims_text
from .args import Arg, boolean, positive_int
from .base import Category, ForwardMemory, OpKind, RFStep, register


@register
class Linear(OpKind):
    fresh_output = True
    name = "linear"
    category = Category.LINEAR
    summary = "fully connected layer (torch.nn.Linear); in_features come from the input"
    args = (Arg("out", positive_int), Arg("bias", boolean, True))
    weighted = True
    autocasts = True
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

    def backward_flops(self, a, inputs, out):
        # two matrix products, each the forward's MACs (torch's FlopCounterMode counts them so)
        return 2 * self.macs(a, inputs, out), 2 * self.macs(a, inputs, out)

    def flop_counter_flops(self, a, inputs, out, input_grad=True):
        return 2 * self.macs(a, inputs, out) * (3 if input_grad else 2)    # addmm, then mm to each side

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """Training keeps the input (and under autocast the weight's 16-bit copy)."""
        if not run.training:
            return ForwardMemory()
        copy = inputs[0][0] * a["out"] * run.element_bytes if run.autocast else 0
        return ForwardMemory(saves_inputs=(0,), saved_bytes=copy)


    def rf_step(self, a, inputs, grid):
        # every output reads every input: one window over the whole grid the vector came from
        return RFStep(grid, grid, (0, 0))

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Linear(inputs[0][0], a["out"], a["bias"])

    def describe(self, a):
        return f"{a['out']}"

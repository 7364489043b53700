"""Fully connected layers: on a vector (a classifier), and at every position of a feature map over
its channels (torch.nn.Linear on a channels-last tensor, as ConvNeXt's blocks use it)."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import dims_text, numel
from .args import Arg, boolean, positive_int
from .base import F, Category, ConvGeometry, ForwardMemory, OpKind, RFStep, WeightRef, refuse_unless, register
from .windows import feature_map


class _Linear(OpKind):
    timings = ()    # priced as a linear layer, or as a 1x1 convolution (channel_linear): grids of their own
    fresh_output = True
    category = Category.LINEAR
    args = (Arg("out", positive_int), Arg("bias", boolean, True))
    weighted = True
    reads_last_axis = True   # torch.nn.Linear maps the last axis
    autocasts = True
    torch_modules = ("Linear",)
    # timm's Linear (a subclass, traced through) calls the function with the module's weights
    torch_calls = {F + "linear": ("weight", "bias")}

    def from_torch_module(self, m, in_shapes, out_shape):
        self._check_input(in_shapes)
        return {"out": m.out_features, "bias": m.bias is not None}

    def from_torch_call(self, values, in_shapes, out_shape):
        self._check_input(in_shapes)
        weight, bias = values.get("weight"), values.get("bias")
        refuse_unless(isinstance(weight, WeightRef) and len(weight.shape) == 2, "a linear layer without a weight matrix")
        return {"out": weight.shape[0], "bias": bias is not None}

    def _check_input(self, in_shapes) -> None:
        pass

    def scaled_args(self, a, old_inputs, new_inputs, width):
        return {**a, "out": width(a["out"])}

    def params(self, a, inputs, out):
        return inputs[0][0] * a["out"] + (a["out"] if a["bias"] else 0)

    def macs(self, a, inputs, out):
        return numel(inputs[0]) * a["out"]

    def fvcore_flops(self, a, inputs, out, training=False):
        return self.macs(a, inputs, out)

    def describe(self, a):
        return f"{a['out']}"

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


@register
class Linear(_Linear):
    name = "linear"
    summary = "fully connected layer (torch.nn.Linear); in_features come from the input"

    def _check_input(self, in_shapes):
        refuse_unless(len(in_shapes[0]) == 1, "a linear layer on a feature map (see channel_linear)")

    def output_shape(self, a, inputs):
        if len(inputs[0]) != 1:
            raise ShapeError(f"linear needs a vector; got a feature map {dims_text(inputs[0])} "
                             "(add flatten before it, or use channel_linear to map the channels of every position)")
        return (a["out"],)

    def rf_step(self, a, inputs, grid):
        # every output reads every input: one window over the whole grid the vector came from
        return RFStep(grid, grid, (0, 0))

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Linear(inputs[0][0], a["out"], a["bias"])


@register
class ChannelLinear(_Linear):
    """torch.nn.Linear at every position of a feature map, over its channels: ConvNeXt's MLP runs on
    a channels-last tensor. The same arithmetic as a 1x1 convolution, with the weights of a Linear
    ([out, in], which is what the model's state_dict holds)."""

    name = "channel_linear"
    summary = "fully connected layer over the channels of every position (nn.Linear on channels-last, ConvNeXt)"

    def _check_input(self, in_shapes):
        refuse_unless(len(in_shapes[0]) == 3, "a linear layer over channels of a vector")

    def output_shape(self, a, inputs):
        _, h, w = feature_map(self.name, inputs[0])
        return (a["out"], h, w)

    def geometry(self, a, inputs, out):
        return ConvGeometry((1, 1), (1, 1), (0, 0), inputs[0][0], a["out"], a["bias"])

    def make_module(self, a, inputs, out):
        from ..torch_modules import ChannelLinear as ChannelLinearModule
        return ChannelLinearModule(inputs[0][0], a["out"], a["bias"])

"""2-D convolution."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import numel
from .args import Arg, boolean, padding_arg, positive_int, positive_pair
from .base import Category, ConvGeometry, OpKind, RFStep, refuse_unless, register
from .windows import feature_map, kernel_text, resolve_padding, window_output


@register
class Conv(OpKind):
    fresh_output = True
    name = "conv"
    category = Category.CONV
    summary = "2-D convolution (torch.nn.Conv2d); in_channels come from the input"
    args = (Arg("out", positive_int), Arg("kernel", positive_pair), Arg("stride", positive_pair, 1),
            Arg("padding", padding_arg, 0), Arg("dilation", positive_pair, 1), Arg("groups", positive_int, 1),
            Arg("bias", boolean, True))
    weighted = True
    torch_modules = ("Conv2d",)

    def from_torch_module(self, m, in_shapes, out_shape):
        refuse_unless(m.padding_mode == "zeros", f"conv with padding_mode={m.padding_mode!r} (only zero padding)")
        return {"out": m.out_channels, "kernel": m.kernel_size, "stride": m.stride, "padding": m.padding,
                "dilation": m.dilation, "groups": m.groups, "bias": m.bias is not None}

    def output_shape(self, a, inputs):
        c, h, w = feature_map(self.name, inputs[0])
        if c % a["groups"] or a["out"] % a["groups"]:
            raise ShapeError(f"conv groups={a['groups']} must divide both in_channels {c} and out {a['out']}")
        _, total = self._padding(a)
        return (a["out"],
                window_output(self.name, h, a["kernel"][0], a["stride"][0], total[0], a["dilation"][0], False, "height"),
                window_output(self.name, w, a["kernel"][1], a["stride"][1], total[1], a["dilation"][1], False, "width"))

    def params(self, a, inputs, out):
        weight = a["out"] * (inputs[0][0] // a["groups"]) * a["kernel"][0] * a["kernel"][1]
        return weight + (a["out"] if a["bias"] else 0)

    def macs(self, a, inputs, out):
        return numel(out) * (inputs[0][0] // a["groups"]) * a["kernel"][0] * a["kernel"][1]

    def fvcore_flops(self, a, inputs, out, training=False):
        if self._torch_padding(a) == "same":  # runs as aten::_convolution_mode: fvcore 0.1.5 has no
            return 0                          # rule for it and counts it as zero (unsupported)
        return self.macs(a, inputs, out)

    def rf_step(self, a, inputs, grid):
        lead, _ = self._padding(a)
        return RFStep(a["kernel"], a["stride"], lead, a["dilation"])

    def geometry(self, a, inputs, out):
        lead, _ = self._padding(a)
        return ConvGeometry(a["kernel"], a["stride"], lead, inputs[0][0], a["out"], a["bias"], a["dilation"],
                            a["groups"])

    def _padding(self, a) -> tuple[tuple[int, int], tuple[int, int]]:
        """(leading, total) padding per axis, in numbers."""
        return resolve_padding(self.name, a["padding"], a["kernel"], a["stride"], a["dilation"])

    def _torch_padding(self, a):
        """Numbers wherever they pad both sides alike ('valid', 'same' with an odd window): the same
        computation, and the form fvcore counts; 'same' only where torch pads one side more."""
        lead, total = self._padding(a)
        return lead if total == (2 * lead[0], 2 * lead[1]) else a["padding"]

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Conv2d(inputs[0][0], a["out"], a["kernel"], a["stride"], self._torch_padding(a), a["dilation"],
                         a["groups"], a["bias"])

    def describe(self, a):
        text = kernel_text(a["kernel"], a["stride"])
        if a["groups"] > 1:
            text += f" g{a['groups']}"
        if a["dilation"] != (1, 1):
            text += f" d{a['dilation'][0]}"
        return text

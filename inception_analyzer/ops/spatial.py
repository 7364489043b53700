"""Data movement across the grid: zero padding. It computes nothing (0 FLOPs, no parameters) but
makes a larger tensor of its own, which the next layer reads."""
from __future__ import annotations

from .args import Arg, four_sides
from .base import F, ForwardMemory, OpKind, RFStep, refuse_unless, register
from .windows import feature_map


@register
class Pad(OpKind):
    """Zeros around the grid: TensorFlow's 'same' padding of a strided convolution puts the odd
    pixel after the map (pad([0, 1, 0, 1]) then a 3x3/2 convolution with no padding of its own),
    which torch's symmetric padding cannot say; timm's tf_* models and NFNets pad so."""

    name = "pad"
    summary = "zeros around the grid, pad([left, right, top, bottom]) in torch's order (nn.ZeroPad2d, F.pad)"
    args = (Arg("padding", four_sides),)
    torch_modules = ("ZeroPad2d", "ConstantPad2d")
    torch_calls = {F + "pad": ("pad", "mode", "value")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"pad": m.padding, "value": getattr(m, "value", 0.0)}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(values.get("mode", "constant") == "constant", f"{values.get('mode')} padding (only zeros)")
        refuse_unless(values.get("value") in (None, 0, 0.0), f"padding with the value {values.get('value')} (only zeros)")
        pad = values.get("pad")
        refuse_unless(isinstance(pad, (list, tuple)) and len(pad) in (2, 4) and len(in_shapes[0]) == 3
                      and all(isinstance(v, int) and v >= 0 for v in pad),
                      f"a padding of {pad} (only the height and width of a feature map, by whole pixels)")
        return {"padding": four_sides("padding", pad)}

    def output_shape(self, a, inputs):
        c, h, w = feature_map(self.name, inputs[0])
        left, right, top, bottom = a["padding"]
        return (c, h + top + bottom, w + left + right)

    def rf_step(self, a, inputs, grid):
        """No window: the field only shifts by the leading pixels (the first unit is a zero)."""
        left, _, top, _ = a["padding"]
        return RFStep((1, 1), (1, 1), (top, left))

    def zero_border(self, a):
        left, right, top, bottom = a["padding"]
        return (top, bottom), (left, right)

    def with_border(self, a, border):
        left, right, top, bottom = a["padding"]
        (more_top, more_bottom), (more_left, more_right) = border
        return {"padding": (left + more_left, right + more_right, top + more_top, bottom + more_bottom)}

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """A new tensor; its backward crops the gradient, which needs only the shapes."""
        return ForwardMemory()

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.ZeroPad2d(a["padding"])

    def describe(self, a):
        left, right, top, bottom = a["padding"]
        return f"l{left} r{right} t{top} b{bottom}"

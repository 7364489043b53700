"""Data movement across the grid: zero padding, and upsampling by whole factors (the decoders of
U-Net and FPN, HRNet's fusion of its coarser branches). They have no parameters and make a larger
tensor of their own, which the next layer reads."""
from __future__ import annotations

from fractions import Fraction

from ..errors import ShapeError, SpecError
from ..numbers import numel
from .args import Arg, boolean, choice, fill_value, four_sides, optional, positive_pair
from .base import F, ForwardMemory, OpKind, RFStep, Timing, refuse_unless, register
from .windows import feature_map


@register
class Pad(OpKind):
    """Zeros (or another constant) around the grid: TensorFlow's 'same' padding of a strided
    convolution puts the odd pixel after the map (pad([0, 1, 0, 1]) then a 3x3/2 convolution with
    no padding of its own), which torch's symmetric padding cannot say; before a max pool it pads
    with -inf (NASNet's). A negative side crops: NASNet's ZeroPad2d((-1, 1, -1, 1)) shifts the map
    by a pixel before a strided pool."""

    name = "pad"
    timings = (Timing({"padding": [1, 1, 1, 1]}),)
    summary = "a constant around the grid, pad([left, right, top, bottom]) in torch's order (nn.ZeroPad2d, F.pad)"
    args = (Arg("padding", four_sides), Arg("value", fill_value, 0.0))
    torch_modules = ("ZeroPad2d", "ConstantPad2d")
    torch_calls = {F + "pad": ("pad", "mode", "value")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"pad": m.padding, "value": getattr(m, "value", 0.0)}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(values.get("mode", "constant") == "constant", f"{values.get('mode')} padding (only a constant)")
        value = values.get("value")
        refuse_unless(value is None or isinstance(value, (int, float)) and not isinstance(value, bool),
                      f"padding with {value!r}")
        pad = values.get("pad")
        refuse_unless(isinstance(pad, (list, tuple)) and len(pad) in (2, 4) and len(in_shapes[0]) == 3
                      and all(isinstance(v, int) for v in pad),
                      f"a padding of {pad} (only the height and width of a feature map, by whole pixels)")
        return {"padding": four_sides("padding", pad), "value": fill_value("value", 0.0 if value is None else value)}

    def output_shape(self, a, inputs):
        c, h, w = feature_map(self.name, inputs[0])
        left, right, top, bottom = a["padding"]
        out = (c, h + top + bottom, w + left + right)
        if min(out[1:]) < 1:
            raise ShapeError(f"pad {list(a['padding'])} crops a {h}x{w} grid to nothing")
        return out

    def rf_step(self, a, inputs, grid):
        """No window: the field only shifts by the leading pixels (the first unit is padding, or
        with a negative side, a pixel further in)."""
        left, _, top, _ = a["padding"]
        return RFStep((1, 1), (1, 1), (top, left))

    def zero_border(self, a):
        if a["value"] != 0 or min(a["padding"]) < 0:
            return None
        left, right, top, bottom = a["padding"]
        return (top, bottom), (left, right)

    def with_border(self, a, border):
        if a["value"] != 0:
            return None
        left, right, top, bottom = a["padding"]
        (more_top, more_bottom), (more_left, more_right) = border
        return {**a, "padding": (left + more_left, right + more_right, top + more_top, bottom + more_bottom)}

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """A new tensor; its backward crops the gradient, which needs only the shapes."""
        return ForwardMemory()

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.ConstantPad2d(a["padding"], a["value"]) if a["value"] != 0 else nn.ZeroPad2d(a["padding"])

    def describe(self, a):
        left, right, top, bottom = a["padding"]
        return f"l{left} r{right} t{top} b{bottom}" + ("" if a["value"] == 0 else f" {a['value']:g}")


# per output element: nearest copies one input value; bilinear weighs four (fvcore counts these too)
UPSAMPLE_READS = {"nearest": 1, "bilinear": 4}


@register
class Upsample(OpKind):
    """The grid made finer: `scale` times per axis, or to `size` (a resize to a grid that is no
    whole multiple, GhostNetV2's gate brought back from 3x3 to 7x7). Each unit copies the nearest
    input unit, or interpolates the four around it (bilinear). A unit's receptive field is its input
    unit's (with bilinear, one input unit wider: two neighbours along each axis, the field of a unit
    away from the border), and units lie in / out as far apart in the input as before."""

    name = "upsample"
    # each kernel apart (kernel_variant); the output is 4 times the input
    timings = (Timing({"scale": 2, "mode": "nearest"}, growth=4), Timing({"scale": 2, "mode": "bilinear"}, growth=4))
    summary = "the grid made finer, `scale` times or to `size`, nearest or bilinear (nn.Upsample, F.interpolate)"
    args = (Arg("scale", optional(positive_pair), None), Arg("size", optional(positive_pair), None),
            Arg("mode", choice("nearest", "bilinear"), "nearest"), Arg("align_corners", boolean, False))
    other_flops_rule = "nearest: 0 (a copy); bilinear: 4 per output element (four neighbours weighed)"
    torch_modules = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
    torch_calls = {F + "interpolate": ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                                       "antialias"),
                   F + "upsample": ("size", "scale_factor", "mode", "align_corners")}
    traced_arguments = ("size", "scale_factor")    # read off the traced output's grid instead

    def from_torch_module(self, m, in_shapes, out_shape):
        # UpsamplingBilinear2d is bilinear with align_corners=True, as its documentation says
        return self.from_torch_call({"mode": m.mode, "align_corners": m.align_corners}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        mode = values.get("mode", "nearest")
        refuse_unless(mode in UPSAMPLE_READS, f"{mode} interpolation (only nearest and bilinear)")
        refuse_unless(not values.get("antialias"), "antialiased interpolation")
        refuse_unless(len(in_shapes[0]) == 3 and len(out_shape) == 3, "an interpolation of other than a feature map")
        (_, h, w), (_, oh, ow) = in_shapes[0], out_shape
        refuse_unless(oh >= h and ow >= w, f"a resize of {h}x{w} to {oh}x{ow} (only to a finer grid)")
        whole = oh % h == 0 and ow % w == 0
        return {"scale": (oh // h, ow // w) if whole else None, "size": None if whole else (oh, ow), "mode": mode,
                "align_corners": bool(values.get("align_corners"))}

    def bind(self, positional, keywords):
        a = super().bind(positional, keywords)
        if (a["scale"] is None) == (a["size"] is None):
            raise SpecError("upsample takes a scale or a size (one of them), e.g. upsample(2) or upsample(size=[7, 7])")
        return a

    def output_shape(self, a, inputs):
        c, h, w = feature_map(self.name, inputs[0])
        if a["size"] is None:
            return (c, h * a["scale"][0], w * a["scale"][1])
        if a["size"][0] < h or a["size"][1] < w:
            raise ShapeError(f"upsample to {a['size'][0]}x{a['size'][1]} of a {h}x{w} grid: a coarser grid")
        return (c, *a["size"])

    def other_flops(self, a, inputs, out):
        return 0 if a["mode"] == "nearest" else UPSAMPLE_READS["bilinear"] * numel(out)

    def fvcore_flops(self, a, inputs, out, training=False):
        return UPSAMPLE_READS[a["mode"]] * numel(out)

    def backward_flops(self, a, inputs, out):
        return UPSAMPLE_READS[a["mode"]] * numel(out), 0    # each output's gradient added back to its sources

    def rf_step(self, a, inputs, grid):
        window = 1 if a["mode"] == "nearest" else 2
        (_, h, w), (_, oh, ow) = inputs[0], self.output_shape(a, inputs)
        return RFStep((window, window), (Fraction(h, oh), Fraction(w, ow)), (0, 0))

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """A new tensor; its backward needs only the shapes."""
        return ForwardMemory()

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        corners = a["align_corners"] if a["mode"] == "bilinear" else None
        if a["size"] is not None:
            return nn.Upsample(size=tuple(a["size"]), mode=a["mode"], align_corners=corners)
        return nn.Upsample(scale_factor=tuple(float(s) for s in a["scale"]), mode=a["mode"], align_corners=corners)

    def kernel_variant(self, a):
        return a["mode"]

    def describe(self, a):
        if a["size"] is not None:
            text = f"to {a['size'][0]}x{a['size'][1]}"
        else:
            sh, sw = a["scale"]
            text = f"x{sh}" + ("" if sh == sw else f"x{sw}")
        return text + ("" if a["mode"] == "nearest" else " bilinear")

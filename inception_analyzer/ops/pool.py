"""Pooling: max and average over windows, and adaptive pooling to a fixed grid."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import numel
from .args import Arg, boolean, non_negative_pair, optional, positive_pair
from .base import F, Category, ForwardMemory, OpKind, RFStep, Timing, refuse_unless, register

INDEX_BYTES = 8     # max pooling's indices are int64, whatever the dtype


def _max_pool_memory(inputs, out, run) -> ForwardMemory:
    """torch's max pooling makes the argmax indices (int64) beside its output: training keeps them
    and the input for the backward; inference (even under inference_mode) drops them after the call."""
    indices = run.bytes_of(out, INDEX_BYTES)
    if run.training:
        return ForwardMemory(saves_inputs=(0,), saved_bytes=indices)
    return ForwardMemory(workspace_bytes=indices)
from .windows import feature_map, kernel_text, window_output


class _WindowPool(OpKind):
    """max/avg pooling with torch's arguments; stride defaults to the kernel as in torch."""

    fresh_output = True

    category = Category.POOL
    other_flops_rule = "kernel area per output element (one compare or add per window element)"

    def output_shape(self, a, inputs):
        c, h, w = feature_map(self.name, inputs[0])
        kernel, stride, padding = a["kernel"], a["stride"] or a["kernel"], a["padding"]
        dilation = a.get("dilation", (1, 1))
        for axis in (0, 1):
            if padding[axis] > kernel[axis] // 2:
                raise ShapeError(f"{self.name} padding {padding[axis]} exceeds half the kernel "
                                 f"{kernel[axis]} (torch refuses it)")
        return (c,
                window_output(self.name, h, kernel[0], stride[0], 2 * padding[0], dilation[0], a["ceil_mode"], "height"),
                window_output(self.name, w, kernel[1], stride[1], 2 * padding[1], dilation[1], a["ceil_mode"], "width"))

    def other_flops(self, a, inputs, out):
        return numel(out) * a["kernel"][0] * a["kernel"][1]

    def rf_step(self, a, inputs, grid):
        # ceil_mode changes how many windows there are, not where the first one lies
        return RFStep(a["kernel"], a["stride"] or a["kernel"], a["padding"], a.get("dilation", (1, 1)))

    def describe(self, a):
        text = kernel_text(a["kernel"], a["stride"] or a["kernel"])
        return text + (" ceil" if a["ceil_mode"] else "")


@register
class MaxPool(_WindowPool):
    name = "maxpool"
    timings = (Timing({"kernel": [3, 3], "stride": 2}, window=3, quick=True),
               Timing({"kernel": [3, 3], "stride": 1, "padding": 1}, window=3),
               Timing({"kernel": [2, 2], "stride": 2}, window=2))
    summary = "max pooling (torch.nn.MaxPool2d)"
    args = (Arg("kernel", positive_pair), Arg("stride", optional(positive_pair), None),
            Arg("padding", non_negative_pair, 0), Arg("dilation", positive_pair, 1), Arg("ceil_mode", boolean, False))
    torch_modules = ("MaxPool2d",)
    torch_calls = {F + "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
                                     "dilation": m.dilation, "ceil_mode": m.ceil_mode,
                                     "return_indices": m.return_indices}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(not values.pop("return_indices", False), "max pooling that returns indices")
        return _pool_arguments(values)

    def backward_flops(self, a, inputs, out):
        return numel(out), 0      # each output's gradient goes to its window's maximum

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return _max_pool_memory(inputs, out, run)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.MaxPool2d(a["kernel"], a["stride"] or a["kernel"], a["padding"], a["dilation"],
                            ceil_mode=a["ceil_mode"])


@register
class AvgPool(_WindowPool):
    name = "avgpool"
    timings = (Timing({"kernel": [3, 3], "stride": 1, "padding": 1}, window=3),
               Timing({"kernel": [2, 2], "stride": 2}, window=2), Timing({"kernel": [5, 5], "stride": 3}, window=5))
    summary = "average pooling (torch.nn.AvgPool2d)"
    args = (Arg("kernel", positive_pair), Arg("stride", optional(positive_pair), None),
            Arg("padding", non_negative_pair, 0), Arg("ceil_mode", boolean, False),
            Arg("count_include_pad", boolean, True))
    torch_modules = ("AvgPool2d",)
    torch_calls = {F + "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                      "divisor_override")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
                                     "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad,
                                     "divisor_override": m.divisor_override}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(values.pop("divisor_override", None) is None, "average pooling with divisor_override")
        return _pool_arguments(values)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.AvgPool2d(a["kernel"], a["stride"] or a["kernel"], a["padding"], a["ceil_mode"],
                            a["count_include_pad"])


def _pool_arguments(values: dict) -> dict:
    """torch's pooling arguments in our names; torch's empty stride (as F.max_pool2d(x, 3) gives
    it) means the kernel, as ours does."""
    renamed = {"kernel_size": "kernel"}
    arguments = {renamed.get(k, k): v for k, v in values.items()}
    if arguments.get("stride") in ((), []):
        arguments["stride"] = None
    return arguments


class _AdaptivePool(OpKind):
    fresh_output = True
    category = Category.POOL
    args = (Arg("output_size", positive_pair, 1),)
    other_flops_rule = "one add or compare per input element"

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"output_size": m.output_size,
                                     "return_indices": getattr(m, "return_indices", False)}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(not values.pop("return_indices", False), "adaptive pooling that returns indices")
        size = values.get("output_size", 1)
        sizes = size if isinstance(size, (tuple, list)) else (size, size)
        refuse_unless(None not in sizes, "adaptive pooling that keeps an axis (output_size None)")
        return values

    def output_shape(self, a, inputs):
        c, _, _ = feature_map(self.name, inputs[0])
        return (c, *a["output_size"])

    def other_flops(self, a, inputs, out):
        return numel(inputs[0])

    def rf_step(self, a, inputs, grid):
        # torch's adaptive windows: at most ceil(in/out) wide, started every floor(in/out)
        _, h, w = inputs[0]
        oh, ow = a["output_size"]
        kernel = (-(-h // oh), -(-w // ow))
        stride = (max(h // oh, 1), max(w // ow, 1))
        return RFStep(kernel, stride, (0, 0))

    def describe(self, a):
        return "global" if a["output_size"] == (1, 1) else f"to {a['output_size'][0]}x{a['output_size'][1]}"


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    timings = (Timing(quick=True),)
    summary = "adaptive average pooling to a fixed grid (torch.nn.AdaptiveAvgPool2d); 1 = global"
    torch_modules = ("AdaptiveAvgPool2d",)
    # a mean over the grid keeping its axes is a global average pooling
    torch_calls = {F + "adaptive_avg_pool2d": ("output_size",), "torch.mean": ("dim", "keepdim"),
                   ".mean": ("dim", "keepdim")}

    def from_torch_call(self, values, in_shapes, out_shape):
        if "dim" in values or "keepdim" in values:
            refuse_unless(len(in_shapes[0]) == 3 and _grid_dims(values.get("dim")) == {2, 3}
                          and values.get("keepdim", False), "a mean that is not over the grid")
            return {"output_size": 1}
        return super().from_torch_call(values, in_shapes, out_shape)

    def fvcore_flops(self, a, inputs, out, training=False):
        return numel(inputs[0])  # fvcore: elementwise_flop_counter(1, 0)

    def forward_memory(self, a, inputs, out, run, in_place=False):
        if run.training and a["output_size"] == (1, 1):
            return ForwardMemory()   # torch takes the mean over the grid: its backward needs only sizes
        return super().forward_memory(a, inputs, out, run, in_place)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.AdaptiveAvgPool2d(a["output_size"])


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    summary = "adaptive max pooling to a fixed grid (torch.nn.AdaptiveMaxPool2d)"
    torch_modules = ("AdaptiveMaxPool2d",)
    torch_calls = {F + "adaptive_max_pool2d": ("output_size", "return_indices")}

    def backward_flops(self, a, inputs, out):
        return numel(out), 0

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return _max_pool_memory(inputs, out, run)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.AdaptiveMaxPool2d(a["output_size"])


@register
class GlobalAvgPool(OpKind):
    """The mean over the grid as a vector: x.mean((2, 3)) (MnasNet, and any head that pools and
    flattens in one call). adaptive_avgpool(1) followed by flatten computes the same."""

    fresh_output = True
    name = "global_avgpool"
    category = Category.POOL
    summary = "global average pooling to a vector, x.mean((2, 3)) (a pool and a flatten in one)"
    other_flops_rule = "one add per input element"
    torch_calls = {"torch.mean": ("dim", "keepdim"), ".mean": ("dim", "keepdim")}

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(len(in_shapes[0]) == 3 and _grid_dims(values.get("dim")) == {2, 3}
                      and not values.get("keepdim", False), "a mean that is not over the grid")
        return {}

    def output_shape(self, a, inputs):
        c, _, _ = feature_map(self.name, inputs[0])
        return (c,)

    def other_flops(self, a, inputs, out):
        return numel(inputs[0])

    def fvcore_flops(self, a, inputs, out, training=False):
        return 0   # aten::mean has no handle in fvcore 0.1.5 (unsupported: counted as zero)

    def rf_step(self, a, inputs, grid):
        _, h, w = inputs[0]
        return RFStep((h, w), (h, w), (0, 0))

    def make_module(self, a, inputs, out):
        from ..torch_modules import GlobalAvgPool as GlobalAvgPoolModule
        return GlobalAvgPoolModule()

    def describe(self, a):
        return "global"


def _grid_dims(dims) -> set | None:
    """{2, 3} for a mean over (2, 3), (-2, -1), [-1, -2]: the axes of a batch of feature maps."""
    if dims is None:
        return None
    return {d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims])}

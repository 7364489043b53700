"""Normalisation: batch norm, local response normalisation, layer norm over channels."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import dims_text, numel
from .args import Arg, boolean, number, optional, positive_float, positive_int, probability
from .base import (CPU, OUTPUT, Alloc, BackwardMemory, Category, F, ForwardMemory, Free, OpKind, Timing,
                   refuse_unless, register)
from .windows import feature_map


@register
class BatchNorm(OpKind):
    fresh_output = True
    name = "bn"
    timings = (Timing(quick=True),)
    category = Category.BATCH_NORM
    summary = "batch normalisation over channels (torch.nn.BatchNorm2d), or over the features of a vector (BatchNorm1d)"
    args = (Arg("eps", positive_float, 1e-5), Arg("momentum", optional(probability), 0.1),
            Arg("affine", boolean, True))
    other_flops_rule = "2 per element (scale and shift; foldable into the conv at inference)"
    torch_modules = ("BatchNorm2d", "BatchNorm1d")
    # with its running statistics and weights passed in (timm's BatchNormAct2d calls it so)
    torch_calls = {F + "batch_norm": ("running_mean", "running_var", "weight", "bias", "training",
                                      "momentum", "eps")}

    def from_torch_module(self, m, in_shapes, out_shape):
        refuse_unless(m.track_running_stats, "batch norm without running statistics")
        # BatchNorm1d also normalises [N, C, L] sequences, which no feature map of ours is
        refuse_unless(type(m).__name__ != "BatchNorm1d" or len(in_shapes[0]) == 1,
                      f"BatchNorm1d on a {dims_text(in_shapes[0])} tensor (only on a vector of features)")
        return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(values.get("running_mean") is not None, "batch norm without running statistics")
        affine = values.get("weight") is not None
        refuse_unless(affine == (values.get("bias") is not None), "batch norm with a weight but no bias")
        return {"eps": values.get("eps", 1e-5), "momentum": values.get("momentum", 0.1), "affine": affine}

    def output_shape(self, a, inputs):
        # a vector's features are its channels (a classifier head's BatchNorm1d)
        return inputs[0] if len(inputs[0]) == 1 else feature_map(self.name, inputs[0])

    def params(self, a, inputs, out):
        return 2 * inputs[0][0] if a["affine"] else 0

    def buffers(self, a, inputs, out):
        return 2 * inputs[0][0] + 1  # running mean, running var, num_batches_tracked

    def other_flops(self, a, inputs, out):
        return 2 * numel(out)

    def fvcore_flops(self, a, inputs, out, training=False):
        if training:  # fvcore's norm_flop_counter(1): 5 per input element (+4 with affine)
            return numel(inputs[0]) * (5 + (4 if a["affine"] else 0))
        return numel(inputs[0]) * (2 if a["affine"] else 1)

    def backward_flops(self, a, inputs, out):
        # to the input: subtract the two channel means of the gradient and scale (4 per element);
        # to gamma and beta: the channel sums of gradient x normalised input and of the gradient
        return 4 * numel(out), (2 * numel(out) if a["affine"] else 0)

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """Training keeps the input and the batch's mean and inverse standard deviation (fp32, one
        per channel); both modes make a scale and a shift per channel while they run."""
        statistics = 2 * inputs[0][0] * 4
        if not run.training:
            return ForwardMemory(workspace_bytes=statistics if run.backend == CPU else 0)
        return ForwardMemory(saves_inputs=(0,), saved_bytes=statistics, workspace_bytes=statistics)

    def backward_memory(self, a, inputs, out, run, input_grads):
        # ATen's CPU kernel makes one more tensor of the input's size while it runs (measured)
        return BackwardMemory(workspace_bytes=run.bytes_of(inputs[0]) if run.backend == CPU else 0)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        norm = nn.BatchNorm1d if len(inputs[0]) == 1 else nn.BatchNorm2d
        return norm(inputs[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])

    def describe(self, a):
        return f"eps={a['eps']:g}"


@register
class LocalResponseNorm(OpKind):
    name = "lrn"
    timings = (Timing({"size": 5}),)
    category = Category.NORMALIZATION
    summary = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    args = (Arg("size", positive_int), Arg("alpha", number, 1e-4), Arg("beta", number, 0.75),
            Arg("k", number, 1.0))
    other_flops_rule = "size + 3 per element (sum of squares over `size` channels, scale, power, divide)"
    torch_modules = ("LocalResponseNorm",)
    torch_calls = {F + "local_response_norm": ("size", "alpha", "beta", "k")}

    def output_shape(self, a, inputs):
        return feature_map(self.name, inputs[0])

    def other_flops(self, a, inputs, out):
        return (a["size"] + 3) * numel(out)

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """torch computes it in Python from several ops: the squares, padded by size - 1 channels
        and averaged over windows (avg_pool3d), scaled, raised to beta, and the input divided by
        that. Training keeps the padded squares (the pooling's input), the power's base and its
        result; at inference two input-sized temporaries are alive at its peak (measured on the CPU)."""
        c, h, w = inputs[0]
        if not run.training:
            return ForwardMemory(workspace_bytes=2 * run.bytes_of(inputs[0]))
        padded = run.bytes_of((c + a["size"] - 1, h, w))
        return ForwardMemory(saves_inputs=(0,), saved_bytes=padded + 2 * run.bytes_of(inputs[0]))

    def call_blocks(self, a, inputs, out, run):
        """torch's Python composition, as a trace of its mallocs shows it: the squares, their padded
        copy, the window average, then the scaling, the shift and the power, each a new tensor
        freeing the one before, and the output divided last."""
        c, h, w = inputs[0]
        size, padded = run.bytes_of(inputs[0]), run.bytes_of((c + a["size"] - 1, h, w))
        return (Alloc(size), Alloc(padded), Free(0), Alloc(size), Free(1), Alloc(size), Alloc(size), Free(3),
                Alloc(size), Free(4), Free(2), OUTPUT)

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(workspace_bytes=3 * run.bytes_of(inputs[0]))   # its ops' gradients (measured)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])

    def describe(self, a):
        return f"size={a['size']}"


@register
class LayerNorm(OpKind):
    """Layer normalisation over the channels of each position (ConvNeXt; torch.nn.LayerNorm on a
    channels-last tensor, torchvision's and timm's LayerNorm2d), or over a vector."""

    fresh_output = True
    name = "layer_norm"
    category = Category.NORMALIZATION
    summary = "layer normalisation over the channels of each position, or over a vector (nn.LayerNorm, LayerNorm2d)"
    args = (Arg("eps", positive_float, 1e-5), Arg("affine", boolean, True), Arg("bias", boolean, True))
    other_flops_rule = ("5 per element (mean, subtract, square, variance, normalise) + 2 with affine "
                        "(scale and shift)")
    reads_last_axis = True   # torch normalises over the last axis (or axes)
    torch_modules = ("LayerNorm",)
    torch_calls = {F + "layer_norm": ("normalized_shape", "weight", "bias", "eps")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"normalized_shape": m.normalized_shape, "eps": m.eps,
                                     "weight": m.weight, "bias": m.bias}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        normalized = tuple(values.get("normalized_shape") or ())
        refuse_unless(normalized == (in_shapes[0][0],),
                      f"a layer norm over {list(normalized)} of a {dims_text(in_shapes[0])} tensor "
                      "(only over channels, or over a vector)")
        weight, bias = values.get("weight"), values.get("bias")
        refuse_unless(weight is not None or bias is None, "a layer norm with a bias but no weight")
        return {"eps": values.get("eps", 1e-5), "affine": weight is not None, "bias": bias is not None}

    def output_shape(self, a, inputs):
        if a["bias"] and not a["affine"]:
            raise ShapeError("layer_norm with bias=true needs affine=true")
        return inputs[0]

    def params(self, a, inputs, out):
        return inputs[0][0] * (int(a["affine"]) + int(a["affine"] and a["bias"]))

    def other_flops(self, a, inputs, out):
        return numel(out) * (7 if a["affine"] else 5)

    def fvcore_flops(self, a, inputs, out, training=False):
        return numel(inputs[0]) * (5 if a["affine"] else 4)   # fvcore: norm_flop_counter(2)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        channels = inputs[0][0]
        if len(inputs[0]) == 1:
            return nn.LayerNorm(channels, eps=a["eps"], elementwise_affine=a["affine"], bias=a["bias"])
        from ..torch_modules import ChannelLayerNorm
        return ChannelLayerNorm(channels, eps=a["eps"], elementwise_affine=a["affine"], bias=a["bias"])

    def describe(self, a):
        return f"eps={a['eps']:g}"

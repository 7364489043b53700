"""Ops that transform each element (or each vector) alone: activations, softmax, dropout, identity,
constant scaling, the learnable per-channel scale of a layer scale, and flatten, which only reshapes."""
from __future__ import annotations

from typing import ClassVar

from ..numbers import dims_text, numel
from ..errors import ShapeError
from .args import Arg, boolean, choice, number, probability
from .base import (CPU, F, BackwardMemory, Category, ForwardMemory, OpKind, Storage, Timing, WeightRef, refuse_unless,
                   register)


class _Activation(OpKind):
    category = Category.ACTIVATION
    elementwise = True
    other_flops_rule = "1 per element"
    module_name: ClassVar[str] = ""

    def other_flops(self, a, inputs, out):
        return numel(out)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return getattr(nn, self.module_name)(**a)


def _activation(op_name: str, torch_name: str, doc: str, *op_args: Arg, calls: dict | None = None,
                saves_result: bool = False, quick: bool = False):
    """An element-wise activation op kind. `saves_result`: its backward reads its output (relu,
    sigmoid, tanh), else its input (torch's derivatives.yaml); one with an `inplace` argument can
    run in place."""
    # the same function under torch.nn.functional, torch, and as a tensor method (x.relu(), x.relu_())
    torch_calls = {F + op_name: tuple(a.name for a in op_args if a.name != "inplace") + ("inplace",),
                   f"torch.{op_name}": (), f"torch.{op_name}_": (), f".{op_name}": (), f".{op_name}_": ()}
    torch_calls.update(calls or {})
    cls = type(f"Activation_{op_name}", (_Activation,),
               {"name": op_name, "summary": doc, "module_name": torch_name, "args": op_args,
                "torch_modules": (torch_name,), "torch_calls": torch_calls, "saves_result": saves_result,
                "in_place_capable": any(a.name == "inplace" for a in op_args), "timings": (Timing(quick=quick),)})
    return register(cls)


_activation("relu", "ReLU", "rectified linear unit", Arg("inplace", boolean, False), calls={F + "relu_": ()},
            saves_result=True, quick=True)
# ReLU6 is hardtanh: in place its backward reads the result, out of place the input
_activation("relu6", "ReLU6", "ReLU clipped at 6", Arg("inplace", boolean, False), saves_result=True, quick=True)
_activation("leaky_relu", "LeakyReLU", "leaky ReLU", Arg("negative_slope", number, 0.01),
            Arg("inplace", boolean, False))
_activation("gelu", "GELU", "Gaussian error linear unit", Arg("approximate", choice("none", "tanh"), "none"))
_activation("silu", "SiLU", "sigmoid linear unit (swish)", Arg("inplace", boolean, False))
_activation("sigmoid", "Sigmoid", "logistic sigmoid", saves_result=True)
_activation("tanh", "Tanh", "hyperbolic tangent", saves_result=True)
_activation("hardswish", "Hardswish", "hard swish (MobileNetV3)", Arg("inplace", boolean, False))
_activation("hardsigmoid", "Hardsigmoid", "hard sigmoid (MobileNetV3's squeeze-and-excitation gate)",
            Arg("inplace", boolean, False))


@register
class Softmax(OpKind):
    name = "softmax"
    timings = (Timing(vector=True),)    # over the classes of a vector
    category = Category.ACTIVATION
    summary = "softmax over the classes of a vector (the papers' last row; not in torchvision models)"
    other_flops_rule = "3 per element (exp, sum, divide)"
    torch_modules = ("Softmax",)
    torch_calls = {F + "softmax": ("dim",), "torch.softmax": ("dim",), ".softmax": ("dim",)}
    saves_result = True

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"dim": m.dim}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(len(in_shapes[0]) == 1 and values.get("dim") in (1, -1),
                       "softmax other than over the classes of a vector")
        return {}

    def other_flops(self, a, inputs, out):
        return 3 * numel(out)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Softmax(dim=1)


@register
class Dropout(OpKind):
    name = "dropout"
    timings = (Timing(channels=64, sizes=False, quick=True),)    # its input handed on: an overhead
    summary = "dropout (identity at inference)"
    passes_input = True
    args = (Arg("p", probability, 0.5), Arg("inplace", boolean, False))
    elementwise = True
    torch_modules = ("Dropout", "Dropout2d")  # the same cost; identity at inference
    # torchvision's stochastic depth (EfficientNet, ConvNeXt) drops whole residual branches in
    # training and is the identity at inference, as dropout is
    torch_calls = {F + "dropout": ("p", "training", "inplace"), F + "dropout2d": ("p", "training", "inplace"),
                   "torchvision.ops.stochastic_depth": ("p", "mode", "training")}

    def from_torch_call(self, values, in_shapes, out_shape):
        values.pop("training", None)
        values.pop("mode", None)
        return super().from_torch_call(values, in_shapes, out_shape)

    def backward_flops(self, a, inputs, out):
        return (numel(out) if a["p"] > 0 else 0), 0   # the gradient times the mask

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """The identity at inference and with p = 0 (torch returns the input itself). In training on
        the CPU torch draws a mask of the input's dtype, scaled by 1/(1-p), and multiplies: it
        keeps the mask; on CUDA its fused kernel keeps a mask of one byte per element."""
        if not run.training or a["p"] == 0:
            return ForwardMemory(Storage.SHARED)
        mask = run.bytes_of(inputs[0], None if run.backend == CPU else 1)
        return ForwardMemory(saved_bytes=mask)

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(Storage.SHARED if a["p"] == 0 else Storage.NEW)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Dropout(a["p"], a["inplace"])

    def describe(self, a):
        return f"p={a['p']:g}"


@register
class Identity(OpKind):
    name = "identity"
    timings = (Timing(channels=64, sizes=False, quick=True),)
    summary = "passes its input through"
    passes_input = True
    elementwise = True
    torch_modules = ("Identity",)
    torch_calls = {".clone": (), ".detach": ()}

    def from_torch_call(self, values, in_shapes, out_shape):
        return {}

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return ForwardMemory(Storage.SHARED)

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(Storage.SHARED)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Identity()


@register
class Scale(OpKind):
    fresh_output = True
    name = "scale"
    timings = (Timing({"factor": 0.2}),)
    summary = "multiplies by a constant factor (Inception-ResNet's residual scaling, x * 0.17)"
    args = (Arg("factor", number),)
    elementwise = True
    other_flops_rule = "1 per element"
    # x * 0.17 (a tensor times a number; the importer passes the number as 'factor')
    torch_calls = {"_operator.mul": ("factor",), "torch.mul": ("factor",), ".mul": ("factor",),
                   "_operator.imul": ("factor",), ".mul_": ("factor",)}

    def other_flops(self, a, inputs, out):
        return numel(out)

    def constant_factor(self, a):
        return a["factor"]

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return ForwardMemory()    # times a number: autograd keeps nothing

    def make_module(self, a, inputs, out):
        from ..torch_modules import Scale as ScaleModule
        return ScaleModule(a["factor"])

    def describe(self, a):
        return f"x{a['factor']:g}"


@register
class Flatten(OpKind):
    name = "flatten"
    timings = (Timing(channels=64, sizes=False, quick=True),)    # a view: an overhead
    category = Category.RESHAPE
    summary = "flattens [C, H, W] into a vector of C*H*W"
    views_input = True    # of a contiguous tensor, as every layer's output is
    torch_modules = ("Flatten",)
    # x.view(x.size(0), -1) and other reshapes are data movement: the importer works out what they
    # did to the elements and asks `from_movement`
    torch_calls = {"torch.flatten": ("start_dim", "end_dim"), ".flatten": ("start_dim", "end_dim")}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"start_dim": m.start_dim, "end_dim": m.end_dim}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        flattens = len(in_shapes) == 1 and tuple(out_shape) == (numel(in_shapes[0]),)
        refuse_unless(flattens, f"a reshape of {' and '.join(dims_text(s) for s in in_shapes) or 'no tensor'} to "
                       f"{dims_text(out_shape)} per image that is not a flatten")
        return {}

    def from_movement(self, movement, in_shape, out_shape):
        return {} if movement.kind == "flatten" else None

    def output_shape(self, a, inputs):
        return (numel(inputs[0]),)

    def forward_memory(self, a, inputs, out, run, in_place=False):
        return ForwardMemory(Storage.SHARED)      # a view of a contiguous input

    def backward_memory(self, a, inputs, out, run, input_grads):
        return BackwardMemory(Storage.SHARED)     # the gradient reshaped back: a view

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Flatten(1)


@register
class LayerScale(OpKind):
    """A learnable scale per channel (ConvNeXt's layer scale, CaiT's LayerScale): gamma * x with one
    gamma per channel, initialised small so that a deep residual stack starts close to identity."""

    fresh_output = True
    builds_module, builds_parameter = False, True
    name = "layer_scale"
    summary = "multiplies each channel by a learnable factor (ConvNeXt's layer scale, gamma * x)"
    # the parameter's shape as the model holds it: [C] (timm's gamma) or [C, 1, 1] (torchvision's)
    args = (Arg("param_shape", choice("C", "C11"), "C11"),)
    other_flops_rule = "1 per element"
    # x * gamma, gamma * x, x.mul(gamma.reshape(1, -1, 1, 1)): a tensor times a parameter
    torch_calls = {"_operator.mul": ("scale",), "_operator.imul": ("scale",), "torch.mul": ("scale",),
                   ".mul": ("scale",), ".mul_": ("scale",)}

    def from_torch_call(self, values, in_shapes, out_shape):
        gamma = values.get("scale")
        refuse_unless(isinstance(gamma, WeightRef) and gamma.learnable, "a product with a tensor that is no parameter")
        shape = in_shapes[0]
        channels = shape[0]
        per_channel = {(channels,): "C", (channels, 1, 1): "C11"}.get(tuple(gamma.shape))
        seen = tuple(gamma.seen_shape)
        broadcasts = len(shape) == 3 and seen[-3:] == (channels, 1, 1) and all(d == 1 for d in seen[:-3]) \
            or len(shape) == 1 and seen[-1:] == (channels,) and all(d == 1 for d in seen[:-1])
        refuse_unless(per_channel is not None and broadcasts,
                      f"a product with a parameter of shape {list(gamma.shape)} (a layer scale has one per channel)")
        return {"param_shape": per_channel}

    def output_shape(self, a, inputs):
        if a["param_shape"] == "C11" and len(inputs[0]) != 3:
            raise ShapeError(f"layer_scale(param_shape='C11') needs a feature map, got {dims_text(inputs[0])}")
        return inputs[0]

    def params(self, a, inputs, out):
        return inputs[0][0]

    def other_flops(self, a, inputs, out):
        return numel(out)

    def make_module(self, a, inputs, out):
        import torch
        shape = (inputs[0][0],) if a["param_shape"] == "C" else (inputs[0][0], 1, 1)
        return torch.nn.Parameter(torch.ones(shape))

    def apply(self, parameter, tensor):
        if parameter.dim() == 1 and tensor.dim() == 4:
            parameter = parameter.view(1, -1, 1, 1)
        return tensor * parameter

    def describe(self, a):
        return "per channel"

"""The op registry: every op kind in one place, each a small object of pure shape arithmetic.

An op kind knows, from its resolved arguments and its input shapes alone:
  - its signature (positional order, defaults, argument types),
  - its output shape (raising ShapeError when the input cannot go through it),
  - its learnable parameters and its buffers (elements, as torch counts them),
  - its multiply-accumulates (conv and linear only; see docs/conventions.md),
  - its other FLOPs (pooling, normalisation, activations, merges) with the rule stated,
  - what fvcore's FlopCountAnalysis counts for it (so a total can be cross-checked),
  - its receptive-field step (kernel, stride, padding, dilation per axis),
  - how to make its torch module (torch is imported only inside `make_module`).

Analyzers and the builder ask the registry; they never switch on op names. Adding an op is
one class here with `@register`.

Shapes exclude the batch: (C, H, W) for feature maps, (N,) for vectors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from .errors import ShapeError, SpecError, did_you_mean
from .numbers import dims_text, numel

Shape = tuple  # (C, H, W) or (N,)
REQUIRED = object()


# ----------------------------------------------------------------------------- argument types
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# torch (and ONNX) hold sizes as 64-bit integers; beyond that no model exists, and products of
# such sizes would leave the range of the floats that shares and human-readable figures use
MAX_SIZE = 2**63 - 1


def _too_large(name: str, value: int) -> SpecError:
    digits = len(str(value))
    got = f"{value}" if digits <= 30 else f"a number of {digits} digits"
    return SpecError(f"'{name}' must be at most 2**63 - 1 (torch's 64-bit sizes), got {got}")


def positive_int(name: str, value) -> int:
    if not _is_int(value) or value < 1:
        raise SpecError(f"'{name}' must be a positive integer, got {value!r}")
    if value > MAX_SIZE:
        raise _too_large(name, value)
    return value


def non_negative_int(name: str, value) -> int:
    if not _is_int(value) or value < 0:
        raise SpecError(f"'{name}' must be a non-negative integer, got {value!r}")
    if value > MAX_SIZE:
        raise _too_large(name, value)
    return value


def _pair(name: str, value, check) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SpecError(f"'{name}' must be one integer or a pair [h, w], got {list(value)!r}")
        return (check(name, value[0]), check(name, value[1]))
    value = check(name, value)
    return (value, value)


def positive_pair(name: str, value) -> tuple[int, int]:
    return _pair(name, value, positive_int)


def non_negative_pair(name: str, value) -> tuple[int, int]:
    return _pair(name, value, non_negative_int)


def padding_arg(name: str, value):
    """An integer, a pair [h, w], or 'same' / 'valid' (resolved against the kernel later)."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise SpecError(f"'{name}' must be an integer, [h, w], 'same' or 'valid', got {value!r}")
        return value
    return non_negative_pair(name, value)


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"'{name}' must be true or false, got {value!r}")
    return value


def positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(f"'{name}' must be a positive number, got {value!r}")
    return float(value)


def number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"'{name}' must be a number, got {value!r}")
    return float(value)


def probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise SpecError(f"'{name}' must be a probability in [0, 1), got {value!r}")
    return float(value)


def text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"'{name}' must be a non-empty string, got {value!r}")
    return value


def tensor_shape(name: str, value) -> tuple:
    """A per-image shape: [C, H, W] or [N]."""
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        raise SpecError(f"'{name}' must be [C, H, W] or [N], got {value!r}")
    return tuple(positive_int(name, v) for v in value)


def choice(*allowed: str) -> Callable:
    def check_choice(name: str, value):
        if value not in allowed:
            raise SpecError(f"'{name}' must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    return check_choice


def optional(check: Callable) -> Callable:
    def check_optional(name: str, value):
        return None if value is None else check(name, value)
    return check_optional


@dataclass(frozen=True)
class Arg:
    """One argument of an op: its name, its check-and-normalise function, its default."""

    name: str
    check: Callable[[str, Any], Any]
    default: Any = REQUIRED


# ----------------------------------------------------------------------------- shape helpers
def _spatial(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a feature map [C, H, W], got a vector of {dims_text(shape)}")
    return shape


def _window_output(op: str, size: int, kernel: int, stride: int, pad_total: int, dilation: int,
                   ceil_mode: bool, axis: str) -> int:
    """Output length along one axis, torch's formula (with its ceil-mode rule)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad_total - span
    if ceil_mode:  # rounding up, a window a little wider than the input still makes one output
        out = -(-room // stride) + 1
        # torch: the last window must start inside the input or the left padding
        if (out - 1) * stride >= size + pad_total // 2:
            out -= 1
    else:
        out = room // stride + 1
    if out < 1:
        raise ShapeError(f"{op} window of {span} does not fit the {axis} of {size} "
                         f"(with padding {pad_total}): the grid collapses to nothing")
    return out


@dataclass(frozen=True)
class RFStep:
    """A layer's receptive-field step per axis (h, w): r += (k-1)*d*j; j *= s."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]  # leading (top, left) padding
    dilation: tuple[int, int] = (1, 1)


# ----------------------------------------------------------------------------- the op kind
class OpKind:
    """Base of every op kind. Subclasses override the rules that differ from 'no cost'."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    args: ClassVar[tuple[Arg, ...]] = ()
    # what the op is, for analyzers that reason about kinds of layers (the review): "conv",
    # "linear", "pool", "batch_norm", "normalization", "activation", "merge", "reshape", "other"
    category: ClassVar[str] = "other"
    merges: ClassVar[bool] = False          # takes several inputs (concat, add)
    weighted: ClassVar[bool] = False        # counts as a layer of depth (conv, linear)
    builds_module: ClassVar[bool] = True    # merges are done by the enclosing container
    modelled: ClassVar[bool] = True         # False: its MACs and FLOPs are unknown (not zero)
    # its torch op returns new storage that autograd does not keep for the backward pass, so the
    # one activation that reads it may overwrite it (the builder then builds that activation with
    # inplace=True, as torchvision does; measured on the CPU, an out-of-place ReLU costs twice as much)
    fresh_output: ClassVar[bool] = False
    other_flops_rule: ClassVar[str] = "none"
    # torch.fx import (importer.py): the torch.nn classes this op stands for, and the functions
    # ("torch.nn.functional.relu") and tensor methods (".relu") with the names of their arguments
    # after the input tensor(s), so a call's positional arguments can be named
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_calls: ClassVar[dict[str, tuple[str, ...]]] = {}

    # -- arguments
    def bind(self, positional: list, keywords: dict) -> dict:
        """Bind call arguments to this op's signature, check and normalise them."""
        if len(positional) > len(self.args):
            raise SpecError(f"{self.name} takes at most {len(self.args)} positional arguments "
                            f"({', '.join(a.name for a in self.args) or 'none'}), got {len(positional)}")
        names = [a.name for a in self.args]
        bound = dict(zip(names, positional))
        for key, value in keywords.items():
            if key not in names:
                hint = did_you_mean(key, names)
                raise SpecError(f"{self.name} has no argument '{key}'"
                                + (f"; {hint}" if hint else f" (it takes: {', '.join(names) or 'none'})"))
            if key in bound:
                raise SpecError(f"{self.name} got '{key}' twice")
            bound[key] = value
        resolved = {}
        for arg in self.args:
            if arg.name in bound:
                resolved[arg.name] = arg.check(arg.name, bound[arg.name])
            elif arg.default is REQUIRED:
                raise SpecError(f"{self.name} needs '{arg.name}'")
            else:
                resolved[arg.name] = arg.check(arg.name, arg.default)  # normalised like given values
        return resolved

    # -- rules (defaults: shape-preserving, free)
    def output_shape(self, a: dict, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def params(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def buffers(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def macs(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def other_flops(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        return 0

    def fvcore_flops(self, a: dict, inputs: list[Shape], out: Shape, training: bool = False) -> int:
        """What fvcore 0.1.5's default FlopCountAnalysis handles count for this op."""
        return 0

    def rf_step(self, a: dict, inputs: list[Shape], grid: tuple[int, int]) -> RFStep | None:
        """How the op moves the receptive field; None for pointwise ops and merges.

        `grid` is the spatial extent of the input's units: its H, W for feature maps, and for a
        vector the grid it was flattened from (so a linear layer can see all of it)."""
        return None

    def make_module(self, a: dict, inputs: list[Shape], out: Shape):
        raise NotImplementedError(f"{self.name} has no torch module")

    def combine(self, tensors: list):
        """For merges: the torch operation joining the branches' tensors."""
        raise NotImplementedError(f"{self.name} does not merge branches")

    def describe(self, a: dict) -> str:
        """A short argument summary for tables: '3x3/2', 'p=0.5'."""
        return ""

    # -- torch.fx import
    def from_torch_module(self, module, in_shapes: list[Shape], out_shape: Shape) -> dict:
        """This op's arguments read off a torch module of one of `torch_modules`; raises
        Unmodelled for settings the op cannot express. Default: attributes named as our args."""
        return {a.name: getattr(module, a.name) for a in self.args if hasattr(module, a.name)}

    def from_torch_call(self, values: dict, in_shapes: list[Shape], out_shape: Shape) -> dict:
        """This op's arguments from a call's named arguments (as `torch_calls` names them), given
        only where the call passed them. Default: those named as our args; 'inplace' is dropped
        where the op has no such argument (it changes memory use, not the result)."""
        names = {a.name for a in self.args}
        unknown = sorted(set(values) - names - {"inplace"})
        if unknown:
            raise Unmodelled(f"{self.name} cannot express the argument(s) {', '.join(unknown)}")
        return {k: v for k, v in values.items() if k in names}


class Unmodelled(Exception):
    """A torch module or call whose settings no op kind expresses (the importer lists it)."""


def _refuse_unless(condition: bool, reason: str) -> None:
    if not condition:
        raise Unmodelled(reason)


F = "torch.nn.functional."

OPS: dict[str, OpKind] = {}


def register(cls: type[OpKind]) -> type[OpKind]:
    """Class decorator: put one instance of an op kind into the registry under its name."""
    if cls.name in OPS:
        raise ValueError(f"op '{cls.name}' registered twice")
    OPS[cls.name] = cls()
    return cls


def get_op(name: str) -> OpKind | None:
    return OPS.get(name)


def _kernel_text(kernel, stride) -> str:
    k = f"{kernel[0]}x{kernel[1]}"
    s = stride[0] if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
    return f"{k}/{s}" if stride != (1, 1) else k


def _resolve_padding(op: str, padding, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """Return (leading, total) padding per axis; 'same' follows torch (extra pad at the end)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise SpecError(f"{op}: padding='same' needs stride 1 (as in torch); give the padding explicitly")
        total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        return tuple(t // 2 for t in total), total
    return padding, (2 * padding[0], 2 * padding[1])


# ----------------------------------------------------------------------------- convolution
@register
class Conv(OpKind):
    fresh_output = True
    name = "conv"
    category = "conv"
    summary = "2-D convolution (torch.nn.Conv2d); in_channels come from the input"
    args = (Arg("out", positive_int), Arg("kernel", positive_pair), Arg("stride", positive_pair, 1),
            Arg("padding", padding_arg, 0), Arg("dilation", positive_pair, 1), Arg("groups", positive_int, 1),
            Arg("bias", boolean, True))
    weighted = True
    torch_modules = ("Conv2d",)

    def from_torch_module(self, m, in_shapes, out_shape):
        _refuse_unless(m.padding_mode == "zeros", f"conv with padding_mode={m.padding_mode!r} (only zero padding)")
        return {"out": m.out_channels, "kernel": m.kernel_size, "stride": m.stride, "padding": m.padding,
                "dilation": m.dilation, "groups": m.groups, "bias": m.bias is not None}

    def output_shape(self, a, inputs):
        c, h, w = _spatial(self.name, inputs[0])
        if c % a["groups"] or a["out"] % a["groups"]:
            raise ShapeError(f"conv groups={a['groups']} must divide both in_channels {c} and out {a['out']}")
        _, total = _resolve_padding(self.name, a["padding"], a["kernel"], a["stride"], a["dilation"])
        return (a["out"],
                _window_output(self.name, h, a["kernel"][0], a["stride"][0], total[0], a["dilation"][0], False, "height"),
                _window_output(self.name, w, a["kernel"][1], a["stride"][1], total[1], a["dilation"][1], False, "width"))

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
        lead, _ = _resolve_padding(self.name, a["padding"], a["kernel"], a["stride"], a["dilation"])
        return RFStep(a["kernel"], a["stride"], lead, a["dilation"])

    def _torch_padding(self, a):
        """Numbers wherever they pad both sides alike ('valid', 'same' with an odd window): the same
        computation, and the form fvcore counts; 'same' only where torch pads one side more."""
        lead, total = _resolve_padding(self.name, a["padding"], a["kernel"], a["stride"], a["dilation"])
        return lead if total == (2 * lead[0], 2 * lead[1]) else a["padding"]

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Conv2d(inputs[0][0], a["out"], a["kernel"], a["stride"], self._torch_padding(a), a["dilation"],
                         a["groups"], a["bias"])

    def describe(self, a):
        text = _kernel_text(a["kernel"], a["stride"])
        if a["groups"] > 1:
            text += f" g{a['groups']}"
        if a["dilation"] != (1, 1):
            text += f" d{a['dilation'][0]}"
        return text


@register
class Linear(OpKind):
    fresh_output = True
    name = "linear"
    category = "linear"
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


# ----------------------------------------------------------------------------- normalisation
@register
class BatchNorm(OpKind):
    fresh_output = True
    name = "bn"
    category = "batch_norm"
    summary = "batch normalisation over channels (torch.nn.BatchNorm2d)"
    args = (Arg("eps", positive_float, 1e-5), Arg("momentum", optional(probability), 0.1),
            Arg("affine", boolean, True))
    other_flops_rule = "2 per element (scale and shift; foldable into the conv at inference)"
    torch_modules = ("BatchNorm2d",)
    # with its running statistics and weights passed in (timm's BatchNormAct2d calls it so)
    torch_calls = {F + "batch_norm": ("running_mean", "running_var", "weight", "bias", "training",
                                      "momentum", "eps")}

    def from_torch_module(self, m, in_shapes, out_shape):
        _refuse_unless(m.track_running_stats, "batch norm without running statistics")
        return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}

    def from_torch_call(self, values, in_shapes, out_shape):
        _refuse_unless(values.get("running_mean") is not None, "batch norm without running statistics")
        affine = values.get("weight") is not None
        _refuse_unless(affine == (values.get("bias") is not None), "batch norm with a weight but no bias")
        return {"eps": values.get("eps", 1e-5), "momentum": values.get("momentum", 0.1), "affine": affine}

    def output_shape(self, a, inputs):
        return _spatial(self.name, inputs[0])

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

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.BatchNorm2d(inputs[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])

    def describe(self, a):
        return f"eps={a['eps']:g}"


@register
class LocalResponseNorm(OpKind):
    name = "lrn"
    category = "normalization"
    summary = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    args = (Arg("size", positive_int), Arg("alpha", number, 1e-4), Arg("beta", number, 0.75),
            Arg("k", number, 1.0))
    other_flops_rule = "size + 3 per element (sum of squares over `size` channels, scale, power, divide)"
    torch_modules = ("LocalResponseNorm",)
    torch_calls = {F + "local_response_norm": ("size", "alpha", "beta", "k")}

    def output_shape(self, a, inputs):
        return _spatial(self.name, inputs[0])

    def other_flops(self, a, inputs, out):
        return (a["size"] + 3) * numel(out)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])

    def describe(self, a):
        return f"size={a['size']}"


# ----------------------------------------------------------------------------- pooling
class _WindowPool(OpKind):
    """max/avg pooling with torch's arguments; stride defaults to the kernel as in torch."""

    fresh_output = True

    category = "pool"
    other_flops_rule = "kernel area per output element (one compare or add per window element)"

    def output_shape(self, a, inputs):
        c, h, w = _spatial(self.name, inputs[0])
        kernel, stride, padding = a["kernel"], a["stride"] or a["kernel"], a["padding"]
        dilation = a.get("dilation", (1, 1))
        for axis in (0, 1):
            if padding[axis] > kernel[axis] // 2:
                raise ShapeError(f"{self.name} padding {padding[axis]} exceeds half the kernel "
                                 f"{kernel[axis]} (torch refuses it)")
        return (c,
                _window_output(self.name, h, kernel[0], stride[0], 2 * padding[0], dilation[0], a["ceil_mode"], "height"),
                _window_output(self.name, w, kernel[1], stride[1], 2 * padding[1], dilation[1], a["ceil_mode"], "width"))

    def other_flops(self, a, inputs, out):
        return numel(out) * a["kernel"][0] * a["kernel"][1]

    def rf_step(self, a, inputs, grid):
        # ceil_mode changes how many windows there are, not where the first one lies
        return RFStep(a["kernel"], a["stride"] or a["kernel"], a["padding"], a.get("dilation", (1, 1)))

    def describe(self, a):
        text = _kernel_text(a["kernel"], a["stride"] or a["kernel"])
        return text + (" ceil" if a["ceil_mode"] else "")


@register
class MaxPool(_WindowPool):
    name = "maxpool"
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
        _refuse_unless(not values.pop("return_indices", False), "max pooling that returns indices")
        return _pool_arguments(values)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.MaxPool2d(a["kernel"], a["stride"] or a["kernel"], a["padding"], a["dilation"],
                            ceil_mode=a["ceil_mode"])


@register
class AvgPool(_WindowPool):
    name = "avgpool"
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
        _refuse_unless(values.pop("divisor_override", None) is None, "average pooling with divisor_override")
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
    category = "pool"
    args = (Arg("output_size", positive_pair, 1),)
    other_flops_rule = "one add or compare per input element"

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"output_size": m.output_size,
                                     "return_indices": getattr(m, "return_indices", False)}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        _refuse_unless(not values.pop("return_indices", False), "adaptive pooling that returns indices")
        size = values.get("output_size", 1)
        sizes = size if isinstance(size, (tuple, list)) else (size, size)
        _refuse_unless(None not in sizes, "adaptive pooling that keeps an axis (output_size None)")
        return values

    def output_shape(self, a, inputs):
        c, _, _ = _spatial(self.name, inputs[0])
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
    summary = "adaptive average pooling to a fixed grid (torch.nn.AdaptiveAvgPool2d); 1 = global"
    torch_modules = ("AdaptiveAvgPool2d",)
    # a mean over the grid keeping its axes is a global average pooling
    torch_calls = {F + "adaptive_avg_pool2d": ("output_size",), "torch.mean": ("dim", "keepdim"),
                   ".mean": ("dim", "keepdim")}

    def from_torch_call(self, values, in_shapes, out_shape):
        if "dim" in values or "keepdim" in values:
            dims = values.get("dim")
            dims = {d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims])} if dims is not None else None
            _refuse_unless(dims == {2, 3} and values.get("keepdim", False),
                           "a mean that is not over the grid with keepdim=True (write adaptive_avgpool + flatten)")
            return {"output_size": 1}
        return super().from_torch_call(values, in_shapes, out_shape)

    def fvcore_flops(self, a, inputs, out, training=False):
        return numel(inputs[0])  # fvcore: elementwise_flop_counter(1, 0)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.AdaptiveAvgPool2d(a["output_size"])


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    summary = "adaptive max pooling to a fixed grid (torch.nn.AdaptiveMaxPool2d)"
    torch_modules = ("AdaptiveMaxPool2d",)
    torch_calls = {F + "adaptive_max_pool2d": ("output_size", "return_indices")}

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.AdaptiveMaxPool2d(a["output_size"])


# ----------------------------------------------------------------------------- pointwise
class _Activation(OpKind):
    category = "activation"
    other_flops_rule = "1 per element"
    module_name: ClassVar[str] = ""

    def other_flops(self, a, inputs, out):
        return numel(out)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return getattr(nn, self.module_name)(**a)


def _activation(op_name: str, torch_name: str, doc: str, *op_args: Arg, calls: dict | None = None):
    # the same function under torch.nn.functional, torch, and as a tensor method (x.relu(), x.relu_())
    torch_calls = {F + op_name: tuple(a.name for a in op_args if a.name != "inplace") + ("inplace",),
                   f"torch.{op_name}": (), f"torch.{op_name}_": (), f".{op_name}": (), f".{op_name}_": ()}
    torch_calls.update(calls or {})
    cls = type(f"Activation_{op_name}", (_Activation,),
               {"name": op_name, "summary": doc, "module_name": torch_name, "args": op_args,
                "torch_modules": (torch_name,), "torch_calls": torch_calls})
    return register(cls)


_activation("relu", "ReLU", "rectified linear unit", Arg("inplace", boolean, False), calls={F + "relu_": ()})
_activation("relu6", "ReLU6", "ReLU clipped at 6", Arg("inplace", boolean, False))
_activation("leaky_relu", "LeakyReLU", "leaky ReLU", Arg("negative_slope", number, 0.01))
_activation("gelu", "GELU", "Gaussian error linear unit", Arg("approximate", choice("none", "tanh"), "none"))
_activation("silu", "SiLU", "sigmoid linear unit (swish)")
_activation("sigmoid", "Sigmoid", "logistic sigmoid")
_activation("tanh", "Tanh", "hyperbolic tangent")
_activation("hardswish", "Hardswish", "hard swish (MobileNetV3)", Arg("inplace", boolean, False))
_activation("hardsigmoid", "Hardsigmoid", "hard sigmoid (MobileNetV3's squeeze-and-excitation gate)",
            Arg("inplace", boolean, False))


@register
class Softmax(OpKind):
    name = "softmax"
    category = "activation"
    summary = "softmax over the classes of a vector (the papers' last row; not in torchvision models)"
    other_flops_rule = "3 per element (exp, sum, divide)"
    torch_modules = ("Softmax",)
    torch_calls = {F + "softmax": ("dim",), "torch.softmax": ("dim",), ".softmax": ("dim",)}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"dim": m.dim}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        _refuse_unless(len(in_shapes[0]) == 1 and values.get("dim") in (1, -1),
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
    summary = "dropout (identity at inference)"
    args = (Arg("p", probability, 0.5), Arg("inplace", boolean, False))
    torch_modules = ("Dropout", "Dropout2d")  # the same cost; identity at inference
    # torchvision's stochastic depth (EfficientNet, ConvNeXt) drops whole residual branches in
    # training and is the identity at inference, as dropout is
    torch_calls = {F + "dropout": ("p", "training", "inplace"), F + "dropout2d": ("p", "training", "inplace"),
                   "torchvision.ops.stochastic_depth": ("p", "mode", "training")}

    def from_torch_call(self, values, in_shapes, out_shape):
        values.pop("training", None)
        values.pop("mode", None)
        return super().from_torch_call(values, in_shapes, out_shape)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Dropout(a["p"], a["inplace"])

    def describe(self, a):
        return f"p={a['p']:g}"


@register
class Identity(OpKind):
    name = "identity"
    summary = "passes its input through"
    torch_modules = ("Identity",)
    torch_calls = {".contiguous": (), ".clone": (), ".detach": ()}

    def from_torch_call(self, values, in_shapes, out_shape):
        return {}

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Identity()


@register
class Scale(OpKind):
    fresh_output = True
    name = "scale"
    summary = "multiplies by a constant factor (Inception-ResNet's residual scaling, x * 0.17)"
    args = (Arg("factor", number),)
    other_flops_rule = "1 per element"
    # x * 0.17 (a tensor times a number; the importer passes the number as 'factor')
    torch_calls = {"_operator.mul": ("factor",), "torch.mul": ("factor",), ".mul": ("factor",),
                   "_operator.imul": ("factor",), ".mul_": ("factor",)}

    def other_flops(self, a, inputs, out):
        return numel(out)

    def make_module(self, a, inputs, out):
        from .torch_modules import Scale as ScaleModule
        return ScaleModule(a["factor"])

    def describe(self, a):
        return f"x{a['factor']:g}"


@register
class Flatten(OpKind):
    name = "flatten"
    category = "reshape"
    summary = "flattens [C, H, W] into a vector of C*H*W"
    torch_modules = ("Flatten",)
    # x.view(x.size(0), -1) and friends: recognised by what they do to the shape
    torch_calls = {"torch.flatten": ("start_dim", "end_dim"), ".flatten": ("start_dim", "end_dim"),
                   ".view": ("*shape",), ".reshape": ("*shape",), "torch.reshape": ("shape",)}

    def from_torch_module(self, m, in_shapes, out_shape):
        return self.from_torch_call({"start_dim": m.start_dim, "end_dim": m.end_dim}, in_shapes, out_shape)

    def from_torch_call(self, values, in_shapes, out_shape):
        flattens = tuple(out_shape) == (numel(in_shapes[0]),)
        _refuse_unless(flattens, f"a reshape of {dims_text(in_shapes[0])} to {dims_text(out_shape)} per "
                       "image that is not a flatten")
        return {}

    def output_shape(self, a, inputs):
        return (numel(inputs[0]),)

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.Flatten(1)


# ----------------------------------------------------------------------------- merges
@register
class Concat(OpKind):
    fresh_output = True
    name = "concat"
    category = "merge"
    summary = "concatenates branches along channels (the Inception filter concat)"
    merges = True
    builds_module = False
    torch_calls = {"torch.cat": ("dim",), "torch.concat": ("dim",), "torch.concatenate": ("dim",)}

    def from_torch_call(self, values, in_shapes, out_shape):
        dim = values.get("dim", 0)
        _refuse_unless(all(len(s) == 3 for s in in_shapes) and dim in (1, -3),
                       f"a concatenation along dim {dim} (only channels, dim 1, of feature maps)")
        return {}

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
class Add(OpKind):
    fresh_output = True
    name = "add"
    category = "merge"
    summary = "element-wise sum of branches (residual connections)"
    merges = True
    builds_module = False
    other_flops_rule = "(branches - 1) adds per output element"
    torch_calls = {"_operator.add": (), "_operator.iadd": (), "torch.add": ("alpha",), ".add": ("alpha",),
                   ".add_": ("alpha",)}

    def from_torch_call(self, values, in_shapes, out_shape):
        _refuse_unless(values.get("alpha", 1) == 1, "an add with alpha (a scaled second input)")
        return {}

    def output_shape(self, a, inputs):
        if len({tuple(s) for s in inputs}) != 1:
            listed = ", ".join(dims_text(s) for s in inputs)
            raise ShapeError(f"add needs branches of one shape, got {listed}")
        return inputs[0]

    def other_flops(self, a, inputs, out):
        return (len(inputs) - 1) * numel(out)

    def combine(self, tensors):
        total = tensors[0]
        for tensor in tensors[1:]:
            total = total + tensor
        return total


@register
class Multiply(OpKind):
    fresh_output = True
    name = "mul"
    category = "merge"
    summary = "element-wise product of branches, broadcasting [C, 1, 1] over the grid (squeeze-and-excitation gates)"
    merges = True
    builds_module = False
    other_flops_rule = "(branches - 1) multiplies per output element"
    torch_calls = {"_operator.mul": (), "_operator.imul": (), "torch.mul": (), ".mul": (), ".mul_": ()}

    def output_shape(self, a, inputs):
        if len({len(s) for s in inputs}) != 1:
            raise ShapeError(f"mul needs branches of one rank, got {', '.join(dims_text(s) for s in inputs)}")
        out = tuple(max(dims) for dims in zip(*inputs))
        if any(d not in (1, o) for s in inputs for d, o in zip(s, out)):
            raise ShapeError(f"mul needs branches of one shape or of size 1 where they differ (broadcast), "
                             f"got {', '.join(dims_text(s) for s in inputs)}")
        return out

    def other_flops(self, a, inputs, out):
        return (len(inputs) - 1) * numel(out)

    def combine(self, tensors):
        product = tensors[0]
        for tensor in tensors[1:]:
            product = product * tensor
        return product


@register
class Input(OpKind):
    name = "input"
    summary = "the network's input image"
    builds_module = False


@register
class Opaque(OpKind):
    """An operation imported without a model (`import --no-strict`). It keeps what the trace knows
    for sure (its output shape, the weights it reads) and marks what nobody knows: its MACs and
    FLOPs are unknown, not zero, and every total that would include them says it is partial."""

    name = "opaque"
    summary = "an imported operation no op kind models (import --no-strict): shape and weights kept, MACs unknown"
    args = (Arg("shape", tensor_shape), Arg("what", text), Arg("params", non_negative_int, 0),
            Arg("buffers", non_negative_int, 0))
    modelled = False

    def output_shape(self, a, inputs):
        return a["shape"]

    def params(self, a, inputs, out):
        return a["params"]

    def buffers(self, a, inputs, out):
        return a["buffers"]

    def make_module(self, a, inputs, out):
        raise SpecError(f"opaque op ({a['what']}) stands for an operation imported without a model; it "
                        "cannot be built (add an op kind for it to ops.py)")

    def describe(self, a):
        return a["what"]


# ops a spec may not call by name: the merges are written as blocks (`concat: [...]`), the input is given
MERGE_OPS = tuple(name for name, op in OPS.items() if op.merges)
STRUCTURAL_OPS = frozenset({*MERGE_OPS, "input"})

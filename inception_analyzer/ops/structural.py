"""Ops that compute nothing of their own: the network's input, and the opaque stand-in for an
imported operation no op kind models."""
from __future__ import annotations

from ..errors import SpecError
from .args import Arg, non_negative_int, tensor_shape, text
from .base import OpKind, register


@register
class Input(OpKind):
    name = "input"
    timings = ()
    summary = "the network's input image"
    builds_module = False
    min_inputs = max_inputs = 0


@register
class Opaque(OpKind):
    """An operation imported without a model (`import --no-strict`). It keeps what the trace knows
    for sure (its output shape, the weights it reads) and marks what nobody knows: its MACs and
    FLOPs are unknown, not zero, and every total that would include them says it is partial."""

    name = "opaque"
    timings = ()    # no torch module to time
    summary = "an imported operation no op kind models (import --no-strict): shape and weights kept, MACs unknown"
    args = (Arg("shape", tensor_shape), Arg("what", text), Arg("params", non_negative_int, 0),
            Arg("buffers", non_negative_int, 0))
    modelled = False
    max_inputs = None   # torch.maximum(a, b): whatever the traced call read

    def output_shape(self, a, inputs):
        return a["shape"]

    def scaled_args(self, a, old_inputs, new_inputs, width):
        if list(old_inputs) != list(new_inputs):
            raise SpecError(f"an opaque op ({a['what']}) keeps the shape the trace recorded, {a['shape']}: it "
                            "cannot follow a width multiplier")
        return a

    def params(self, a, inputs, out):
        return a["params"]

    def buffers(self, a, inputs, out):
        return a["buffers"]

    def make_module(self, a, inputs, out):
        raise SpecError(f"opaque op ({a['what']}) stands for an operation imported without a model; it "
                        "cannot be built (add an op kind for it to inception_analyzer/ops/)")

    def describe(self, a):
        return a["what"]

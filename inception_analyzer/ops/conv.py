"""2-D convolution."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import numel
from .args import Arg, boolean, padding_arg, positive_int, positive_pair
from .base import (CPU, OUTPUT, Alloc, BackwardMemory, Category, ConvGeometry, Execution, F, ForwardMemory, Free,
                   OpKind, RFStep, WeightRef, refuse_unless, register)
from .windows import feature_map, kernel_text, resolve_padding, window_output

# ATen runs a fp32 convolution on the CPU with its own im2col kernel (`_slow_conv2d`) instead of
# oneDNN when one image of fewer elements than this goes through a small ungrouped kernel
# (ConvParams::use_mkldnn in aten/src/ATen/native/Convolution.cpp, torch 2.x, more than one thread)
ONEDNN_SMALL_INPUT = 20480


@register
class Conv(OpKind):
    fresh_output = True
    name = "conv"
    timings = ()    # the convolution classes: bench/calibrate.py's grid of their own
    category = Category.CONV
    summary = "2-D convolution (torch.nn.Conv2d); in_channels come from the input"
    args = (Arg("out", positive_int), Arg("kernel", positive_pair), Arg("stride", positive_pair, 1),
            Arg("padding", padding_arg, 0), Arg("dilation", positive_pair, 1), Arg("groups", positive_int, 1),
            Arg("bias", boolean, True))
    weighted = True
    autocasts = True
    torch_modules = ("Conv2d",)
    # a Conv2d subclass traced through (timm's Conv2dSame pads, then calls the function with its
    # own weights)
    torch_calls = {F + "conv2d": ("weight", "bias", "stride", "padding", "dilation", "groups"),
                   "torch.conv2d": ("weight", "bias", "stride", "padding", "dilation", "groups")}

    def from_torch_module(self, m, in_shapes, out_shape):
        refuse_unless(m.padding_mode == "zeros", f"conv with padding_mode={m.padding_mode!r} (only zero padding)")
        return {"out": m.out_channels, "kernel": m.kernel_size, "stride": m.stride, "padding": m.padding,
                "dilation": m.dilation, "groups": m.groups, "bias": m.bias is not None}

    def from_torch_call(self, values, in_shapes, out_shape):
        weight, bias = values.get("weight"), values.get("bias")
        # a weight computed in the forward (NFNet's standardised weights) is no module's weight
        refuse_unless(isinstance(weight, WeightRef) and len(weight.shape) == 4 and not weight.computed
                      and (bias is None or isinstance(bias, WeightRef) and not bias.computed),
                      "a convolution whose weight is computed in the forward (weight standardisation)")
        groups = values.get("groups", 1)
        refuse_unless(len(in_shapes[0]) == 3 and in_shapes[0][0] == weight.shape[1] * groups,
                      f"a convolution of {in_shapes[0]} with a {list(weight.shape)} weight in {groups} groups")
        return {"out": weight.shape[0], "kernel": tuple(weight.shape[2:]), "stride": values.get("stride", 1),
                "padding": values.get("padding", 0), "dilation": values.get("dilation", 1), "groups": groups,
                "bias": bias is not None}

    def scaled_args(self, a, old_inputs, new_inputs, width):
        """The output channels scale; a depthwise conv (one group per input channel) stays
        depthwise, with its channel multiplier. Other groups stay as written: output_shape says
        where they no longer divide the scaled channels."""
        old_in, new_in = old_inputs[0][0], new_inputs[0][0]
        if a["groups"] == old_in and a["groups"] > 1:
            return {**a, "groups": new_in, "out": new_in * (a["out"] // old_in)}
        return {**a, "out": width(a["out"])}

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

    def backward_flops(self, a, inputs, out):
        # a transposed convolution to the input and one to the weights: each the forward's MACs
        # (torch's FlopCounterMode counts them so, bias excluded)
        return 2 * self.macs(a, inputs, out), 2 * self.macs(a, inputs, out)

    def flop_counter_flops(self, a, inputs, out, input_grad=True):
        # torch 2.13's rule for the weight gradient sizes it as a convolution of the input's channels
        # with the gradient's, ignoring the groups: a grouped convolution's counts `groups` times over
        macs = self.macs(a, inputs, out)
        return 2 * macs + (2 * macs if input_grad else 0) + 2 * macs * a["groups"]

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """Training keeps the input (and, under autocast, the weight's 16-bit copy). On the CPU the
        call needs a workspace: oneDNN copies the input and the weight into its blocked layouts
        (channels rounded up to the block), computes a blocked output and copies it back into the
        plain one; ATen's own kernel instead unfolds the input into im2col columns. Padded more on
        one side, it computes on a padded copy of its input, which training keeps instead."""
        saved = self._weight_bytes(a, inputs, run) if run.training and run.autocast else 0
        staged = self.staged_input(a, inputs)
        if staged is None:
            return ForwardMemory(saves_inputs=(0,) if run.training else (), saved_bytes=saved,
                                 workspace_bytes=self._forward_workspace(a, inputs, out, run))
        unpadded = {**a, "padding": (0, 0)}
        copy = run.bytes_of(staged)
        workspace = self._forward_workspace(unpadded, [staged], out, run)
        if run.training:
            return ForwardMemory(saved_bytes=saved + copy, workspace_bytes=workspace)
        return ForwardMemory(saved_bytes=saved, workspace_bytes=copy + workspace)

    def staged_input(self, a, inputs):
        if not isinstance(a["padding"][0], tuple):
            return None
        (top, bottom), (left, right) = a["padding"]
        c, h, w = inputs[0]
        return (c, h + top + bottom, w + left + right)

    def call_blocks(self, a, inputs, out, run):
        """On the CPU, as a trace of a forward's mallocs shows them: oneDNN reorders the input and
        the weight, allocates its blocked output, frees the two reorders, and only then is the plain
        output allocated and the blocked one copied into it and freed; ATen's own kernel unfolds
        the columns before it allocates the output. A convolution padded more on one side computes
        on a padded copy of its input made first and freed after it returns."""
        steps: list = []
        staged = self.staged_input(a, inputs)
        if staged is not None:
            steps.append(Alloc(run.bytes_of(staged)))
            a, inputs = {**a, "padding": (0, 0)}, [staged]
        if run.backend != CPU:
            return (*steps, OUTPUT)
        if not self._onednn(a, inputs, run):
            columns = self._columns(a, inputs, out, run)
            return (*steps, Alloc(columns), OUTPUT) if columns else (*steps, OUTPUT)
        blocked_input, blocked_weight, blocked_output = self._blocks(a, inputs, out, run)
        reordered_input = len(steps) if blocked_input else None
        if blocked_input:
            steps.append(Alloc(blocked_input))
        reordered_weight = len(steps)
        steps += [Alloc(blocked_weight), Alloc(blocked_output), Free(reordered_weight)]
        if reordered_input is not None:
            steps.append(Free(reordered_input))
        return (*steps, OUTPUT)

    def backward_memory(self, a, inputs, out, run, input_grads):
        staged = self.staged_input(a, inputs)
        if staged is None:
            return BackwardMemory(workspace_bytes=self._backward_workspace(a, inputs, out, run, input_grads[0]))
        return BackwardMemory(workspace_bytes=self._backward_workspace({**a, "padding": (0, 0)}, [staged], out, run,
                                                                       input_grads[0]))

    # -- the CPU's workspaces (measured with torch's profiler: tests/test_memory.py checks them)
    def _onednn(self, a, inputs, run: Execution) -> bool:
        if not run.onednn:
            return False
        if run.element_bytes != 4:
            return True               # bf16 and fp16 always go to oneDNN
        c, h, w = inputs[0]
        kh, kw = a["kernel"]
        return a["groups"] > 1 or (kh > 3 and kw > 3) or run.batch > 1 or c * h * w > ONEDNN_SMALL_INPUT

    def _blocks(self, a, inputs, out, run: Execution) -> tuple[int, int, int]:
        """(input, weight, output) bytes in oneDNN's blocked layouts: the output's and the weight's
        channels rounded up to the block; the input is copied only from a block's worth of
        channels on (an RGB image is read as it is)."""
        block = run.channel_block
        rounded = lambda n: -(-n // block) * block  # noqa: E731
        c, h, w = inputs[0]
        copies_input = c >= block
        per_group = c // a["groups"]
        weight_in = rounded(per_group) if copies_input else per_group
        e = run.element_bytes
        blocked_input = run.batch * rounded(c) * h * w * e if copies_input else 0
        blocked_weight = rounded(a["out"]) * weight_in * a["kernel"][0] * a["kernel"][1] * e
        blocked_output = run.batch * rounded(out[0]) * out[1] * out[2] * e
        return blocked_input, blocked_weight, blocked_output

    def _columns(self, a, inputs, out, run: Execution) -> int:
        """ATen's im2col columns: every output position's window, unless the kernel is a plain 1x1."""
        lead, _ = self._padding(a)
        if a["kernel"] == (1, 1) and a["stride"] == (1, 1) and lead == (0, 0):
            return 0
        return run.bytes_of((inputs[0][0] * a["kernel"][0] * a["kernel"][1], out[1], out[2]))

    def _forward_workspace(self, a, inputs, out, run: Execution) -> int:
        if run.backend != CPU:
            return 0                  # cuDNN's workspace depends on the algorithm it picks: not modelled
        if not self._onednn(a, inputs, run):
            return self._columns(a, inputs, out, run)
        blocked_input, blocked_weight, blocked_output = self._blocks(a, inputs, out, run)
        output = run.bytes_of(out)
        # the reordered input and weight with the blocked output, then the blocked and the plain output
        return max(blocked_input + blocked_weight + blocked_output, blocked_output + output) - output

    def _backward_workspace(self, a, inputs, out, run: Execution, input_grad: bool) -> int:
        if run.backend != CPU:
            return 0
        params = self.params(a, inputs, out)
        master = params * run.master_bytes          # the .grad the analyzer counts
        # under autocast the kernel makes the 16-bit copy's gradient; autograd then frees the saved
        # copy and casts it to the fp32 master's: that peak is no higher than the .grad it counts
        weights = params * (run.element_bytes if run.autocast else run.master_bytes)
        grad_input = run.bytes_of(inputs[0]) if input_grad else 0
        if not self._onednn(a, inputs, run):      # fp32 only: 16-bit dtypes always go to oneDNN
            return self._columns(a, inputs, out, run)
        blocked_input, blocked_weight, blocked_output = self._blocks(a, inputs, out, run)
        peaks = [grad_input + blocked_output + blocked_input + blocked_weight,   # the weights' pass
                 grad_input + blocked_weight + weights]
        if input_grad:                                                          # the input's pass first
            blocked_grad_input = blocked_input or grad_input
            peaks += [blocked_output + blocked_weight + blocked_grad_input, blocked_grad_input + grad_input]
        return max(max(peaks) - grad_input - master, 0)

    def _weight_bytes(self, a, inputs, run: Execution) -> int:
        return a["out"] * (inputs[0][0] // a["groups"]) * a["kernel"][0] * a["kernel"][1] * run.element_bytes

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

    def with_border(self, a, border):
        """Zeros put around its input first are more zero padding, one side at a time."""
        lead, total = self._padding(a)
        sides = [(lead[axis] + border[axis][0], total[axis] - lead[axis] + border[axis][1]) for axis in (0, 1)]
        return {**a, "padding": padding_arg("padding", sides)}

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
        if isinstance(a["padding"][0], tuple):    # more on one side: torch's Conv2d pads both alike
            from ..torch_modules import SidePaddedConv2d
            return SidePaddedConv2d(inputs[0][0], a["out"], a["kernel"], a["stride"], a["padding"], a["dilation"],
                                    a["groups"], a["bias"])
        return nn.Conv2d(inputs[0][0], a["out"], a["kernel"], a["stride"], self._torch_padding(a), a["dilation"],
                         a["groups"], a["bias"])

    def describe(self, a):
        text = kernel_text(a["kernel"], a["stride"])
        if a["groups"] > 1:
            text += f" g{a['groups']}"
        if a["dilation"] != (1, 1):
            text += f" d{a['dilation'][0]}"
        if isinstance(a["padding"], tuple) and isinstance(a["padding"][0], tuple):
            (top, bottom), (left, right) = a["padding"]
            text += f" pad {top}+{bottom},{left}+{right}"
        return text

"""Data movement along channels: a piece of a tensor split along its channels (chunk, a range of
channels), and ShuffleNet's channel shuffle. They compute nothing: 0 FLOPs, no parameters; pieces
are views of their input (not fresh storage)."""
from __future__ import annotations

from ..errors import ShapeError
from ..numbers import dims_text
from .args import Arg, non_negative_int, positive_int
from .base import F, Category, ForwardMemory, OpKind, Storage, Timing, refuse_unless, register


class _ChannelMove(OpKind):
    category = Category.RESHAPE
    views_input = True

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """A piece is a view of its input, and its backward needs only the shapes: nothing kept."""
        return ForwardMemory(Storage.SHARED)


def _dim_is_channels(values: dict, in_shapes) -> bool:
    return len(in_shapes[0]) == 3 and values.get("dim", 0) in (1, -3)


def _chunk_sizes(channels: int, chunks: int) -> list[int]:
    """torch.chunk's pieces: ceil(C / chunks) channels each, the last one what is left; fewer
    pieces than asked when the rounding uses the channels up (torch's rule)."""
    size = -(-channels // chunks)
    return [min(size, channels - start) for start in range(0, channels, size)]


@register
class Chunk(_ChannelMove):
    name = "chunk"
    timings = (Timing({"chunks": 2, "index": 0}, channels=64, sizes=False, quick=True),)
    summary = "one of `chunks` equal pieces of the channels, x.chunk(chunks, dim=1)[index] (ShuffleNet's split)"
    args = (Arg("chunks", positive_int), Arg("index", non_negative_int))
    torch_piece_calls = {".chunk": ("chunks", "dim"), "torch.chunk": ("chunks", "dim")}

    def from_torch_call(self, values, in_shapes, out_shape):
        refuse_unless(_dim_is_channels(values, in_shapes), f"a chunk along dim {values.get('dim', 0)} (only channels)")
        return {"chunks": values["chunks"], "index": values["index"]}

    def output_shape(self, a, inputs):
        c, h, w = _feature_map(self.name, inputs[0])
        sizes = _chunk_sizes(c, a["chunks"])
        if a["index"] >= len(sizes):
            raise ShapeError(f"chunk of {c} channels into {a['chunks']} has {len(sizes)} pieces, no piece {a['index']}")
        return (sizes[a["index"]], h, w)

    def make_module(self, a, inputs, out):
        from ..torch_modules import ChannelChunk
        return ChannelChunk(a["chunks"], a["index"])

    def describe(self, a):
        return f"{a['index']} of {a['chunks']}"


@register
class ChannelSlice(_ChannelMove):
    name = "channel_slice"
    timings = (Timing({"start": 0, "end": 32}, channels=64, sizes=False, quick=True),)
    summary = "the channels start to end-1, x[:, start:end] (a piece of torch.split, x.narrow(1, ...))"
    args = (Arg("start", non_negative_int), Arg("end", positive_int))
    torch_calls = {"_operator.getitem": ("index",), ".narrow": ("dim", "start", "length"),
                   "torch.narrow": ("dim", "start", "length")}
    torch_piece_calls = {".split": ("split_size_or_sections", "dim"), "torch.split": ("split_size_or_sections", "dim")}

    def from_torch_call(self, values, in_shapes, out_shape):
        shape = in_shapes[0]
        refuse_unless(len(shape) == 3, f"a slice of a {dims_text(shape)} tensor (only channels of a feature map)")
        channels = shape[0]
        if "index" in values and "split_size_or_sections" in values:   # a piece of torch.split
            refuse_unless(_dim_is_channels(values, in_shapes), f"a split along dim {values.get('dim', 0)} (only channels)")
            sizes = values["split_size_or_sections"]
            if isinstance(sizes, int):
                sizes = [min(sizes, channels - start) for start in range(0, channels, sizes)]
            start = sum(sizes[:values["index"]])
            return {"start": start, "end": start + sizes[values["index"]]}
        if "length" in values:   # x.narrow(1, start, length)
            refuse_unless(values.get("dim") in (1, -3), f"a narrow along dim {values.get('dim')} (only channels)")
            start = values["start"] % channels
            return {"start": start, "end": start + values["length"]}
        return {"start": _channel_range(values.get("index"), channels)[0],
                "end": _channel_range(values.get("index"), channels)[1]}

    def scaled_args(self, a, old_inputs, new_inputs, width):
        """The same fraction of the scaled channels (a split into halves stays one), where it
        falls on whole channels."""
        old, new = old_inputs[0][0], new_inputs[0][0]
        if old == new:
            return a
        start, end = a["start"] * new // old, a["end"] * new // old
        if start * old != a["start"] * new or end * old != a["end"] * new:
            raise ShapeError(f"channel_slice({a['start']}, {a['end']}) of {old} channels does not fall on whole "
                             f"channels of {new}")
        return {**a, "start": start, "end": end}

    def output_shape(self, a, inputs):
        c, h, w = _feature_map(self.name, inputs[0])
        if not a["start"] < a["end"] <= c:
            raise ShapeError(f"channel_slice({a['start']}, {a['end']}) of {c} channels: needs start < end <= {c}")
        return (a["end"] - a["start"], h, w)

    def make_module(self, a, inputs, out):
        from ..torch_modules import ChannelSlice as ChannelSliceModule
        return ChannelSliceModule(a["start"], a["end"])

    def describe(self, a):
        return f"{a['start']}:{a['end']}"


def _channel_range(index, channels: int) -> tuple[int, int]:
    """x[:, a:b] (fx gives the index as a tuple of slices): the channel range, or Unmodelled."""
    everything = slice(None, None, None)
    parts = index if isinstance(index, tuple) else (index,)
    if Ellipsis in parts and parts[-1] is Ellipsis:
        parts = parts[:-1]
    refuse_unless(len(parts) >= 2 and parts[0] == everything and isinstance(parts[1], slice)
                  and all(p == everything for p in parts[2:]),
                  "an index other than a range of channels (x[:, a:b])")
    start, end, step = parts[1].indices(channels)
    refuse_unless(step == 1 and start < end, "a slice of channels with a step, or an empty one")
    return start, end


@register
class ChannelShuffle(_ChannelMove):
    """ShuffleNet's channel shuffle: C = groups x k channels read as a groups x k matrix and written
    out transposed, so that the next grouped convolution sees channels of every group."""

    name = "channel_shuffle"
    timings = (Timing({"groups": 2}, channels=2),)
    summary = "interleaves the channels of `groups` groups (ShuffleNet; view, transpose, view)"
    views_input = False   # the last view of the transposed tensor copies it
    args = (Arg("groups", positive_int),)
    torch_modules = ("ChannelShuffle",)
    torch_calls = {F + "channel_shuffle": ("groups",), "torch.channel_shuffle": ("groups",),
                   "torch.native_channel_shuffle": ("groups",)}

    def from_movement(self, movement, in_shape, out_shape):
        if movement.kind != "channels" or len(in_shape) != 3:
            return None
        channels = in_shape[0]
        for groups in range(2, channels):
            if channels % groups == 0 and movement.order == _shuffled(channels, groups):
                return {"groups": groups}
        return None

    def output_shape(self, a, inputs):
        c, h, w = _feature_map(self.name, inputs[0])
        if c % a["groups"]:
            raise ShapeError(f"channel_shuffle groups={a['groups']} must divide the {c} channels")
        return inputs[0]

    def forward_memory(self, a, inputs, out, run, in_place=False):
        """view, transpose, view: the last view of a transposed tensor copies it; nothing is kept."""
        return ForwardMemory()

    def make_module(self, a, inputs, out):
        import torch.nn as nn
        return nn.ChannelShuffle(a["groups"])

    def describe(self, a):
        return f"g{a['groups']}"


def _shuffled(channels: int, groups: int) -> tuple[int, ...]:
    """The input channel of each output channel: output j * groups + g reads input g * k + j."""
    k = channels // groups
    return tuple(g * k + j for j in range(k) for g in range(groups))


def _feature_map(op: str, shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a feature map [C, H, W], got a vector of {dims_text(shape)}")
    return shape

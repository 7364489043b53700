"""Sliding-window arithmetic shared by convolution and pooling: output lengths as torch computes
them, 'same' / 'valid' padding resolved against the kernel, the kernel's table text."""
from __future__ import annotations

from ..errors import ShapeError, SpecError
from ..numbers import dims_text
from .base import Shape


def feature_map(op: str, shape: Shape) -> tuple[int, int, int]:
    """The shape as (C, H, W), or ShapeError when it is a vector."""
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a feature map [C, H, W], got a vector of {dims_text(shape)}")
    return shape


def window_output(op: str, size: int, kernel: int, stride: int, pad_total: int, dilation: int,
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


def resolve_padding(op: str, padding, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """Return (leading, total) padding per axis; 'same' follows torch (extra pad at the end)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise SpecError(f"{op}: padding='same' needs stride 1 (as in torch); give the padding explicitly")
        total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        return tuple(t // 2 for t in total), total
    if isinstance(padding[0], tuple):   # ((top, bottom), (left, right))
        return (padding[0][0], padding[1][0]), (sum(padding[0]), sum(padding[1]))
    return padding, (2 * padding[0], 2 * padding[1])


def kernel_text(kernel, stride) -> str:
    """'3x3/2' for tables: the kernel, and the stride where it is not 1."""
    k = f"{kernel[0]}x{kernel[1]}"
    s = stride[0] if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
    return f"{k}/{s}" if stride != (1, 1) else k

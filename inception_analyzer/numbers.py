"""How numbers and shapes read in every renderer and message, and the one element count.

Shapes exclude the batch: (C, H, W) for feature maps, (N,) for vectors.
"""
from __future__ import annotations

import math
from typing import Sequence


def numel(shape: Sequence[int]) -> int:
    """Elements of a tensor of this shape (1 for the empty shape)."""
    return math.prod(shape)


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; keeps three significant figures, SI prefixes."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:#.3g}".rstrip(".") + f"{prefix}{unit}"
    return f"{n:g}{unit}"


def shape_text(shape: Sequence[int]) -> str:
    """The papers' HxWxC order for a feature map ('35x35x288'), N for a vector."""
    if len(shape) == 3:
        return f"{shape[1]}x{shape[2]}x{shape[0]}"
    return dims_text(shape)


def dims_text(shape: Sequence[int]) -> str:
    """The dimensions in storage order, as torch prints them: '288x35x35'."""
    return "x".join(str(d) for d in shape)


def grid_text(shape: Sequence[int]) -> str:
    """'35x35' for a feature map, 'vector' for a vector."""
    return f"{shape[1]}x{shape[2]}" if len(shape) == 3 else "vector"

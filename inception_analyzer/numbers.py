"""How numbers and shapes read in every renderer."""
from __future__ import annotations


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; keeps three significant figures, SI prefixes."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:#.3g}".rstrip(".") + f"{prefix}{unit}"
    return f"{n:g}{unit}"


def shape_text(shape: list[int]) -> str:
    if len(shape) == 3:
        return f"{shape[1]}x{shape[2]}x{shape[0]}"  # the papers' HxWxC order
    return "x".join(map(str, shape))

"""Argument types of the op kinds: each checks one value of a spec (or of an imported module)
and returns it normalised (a pair for `3`, a float for `1`), or raises SpecError saying what
the argument must be."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SpecError, shown

# the default of an argument a call must give
REQUIRED = object()

# torch (and ONNX) hold sizes as 64-bit integers; beyond that no model exists, and products of
# such sizes would leave the range of the floats that shares and human-readable figures use
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Arg:
    """One argument of an op: its name, its check-and-normalise function, its default."""

    name: str
    check: Callable[[str, Any], Any]
    default: Any = REQUIRED


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _too_large(name: str, value: int) -> SpecError:
    return SpecError(f"'{name}' must be at most 2**63 - 1 (torch's 64-bit sizes), got {shown(value)}")


def _int_from(name: str, value, least: int, what: str) -> int:
    if not _is_int(value) or value < least:
        raise SpecError(f"'{name}' must be {'a ' + what if what else 'an'} integer, got {shown(value)}")
    if value > MAX_SIZE:
        raise _too_large(name, value)
    return value


def positive_int(name: str, value) -> int:
    return _int_from(name, value, 1, "positive")


def non_negative_int(name: str, value) -> int:
    return _int_from(name, value, 0, "non-negative")


def _pair(name: str, value, check) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SpecError(f"'{name}' must be one integer or a pair [h, w], got {shown(list(value))}")
        return (check(name, value[0]), check(name, value[1]))
    value = check(name, value)
    return (value, value)


def positive_pair(name: str, value) -> tuple[int, int]:
    return _pair(name, value, positive_int)


def non_negative_pair(name: str, value) -> tuple[int, int]:
    return _pair(name, value, non_negative_int)


def padding_arg(name: str, value):
    """An integer, a pair [h, w], or 'same' / 'valid' (resolved against the kernel later). h and w
    may each be [before, after] where the two sides differ, as TensorFlow's 'same' padding of a
    strided convolution pads ([[0, 1], [0, 1]]: the odd pixel after the map); padding that is
    the same on both sides is kept in the plain form."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise SpecError(f"'{name}' must be an integer, [h, w], 'same' or 'valid', got {shown(value)}")
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and any(isinstance(v, (list, tuple)) for v in value):
        sides = []
        for axis in value:
            if isinstance(axis, (list, tuple)) and len(axis) != 2:
                raise SpecError(f"'{name}' of one axis is an integer or [before, after], got {shown(list(axis))}")
            pair = tuple(axis) if isinstance(axis, (list, tuple)) else (axis, axis)
            sides.append((non_negative_int(name, pair[0]), non_negative_int(name, pair[1])))
        if all(before == after for before, after in sides):
            return (sides[0][0], sides[1][0])
        return tuple(sides)
    return non_negative_pair(name, value)


def four_sides(name: str, value) -> tuple[int, int, int, int]:
    """Padding of the four sides in torch's order, (left, right, top, bottom): one integer for
    all four, [left, right] for the width alone, or all four (nn.ZeroPad2d's argument). A negative
    side crops (NASNet's ZeroPad2d((-1, 1, -1, 1)) shifts the map by a pixel)."""
    if isinstance(value, (list, tuple)):
        if len(value) not in (2, 4):
            raise SpecError(f"'{name}' must be one integer, [left, right] or [left, right, top, bottom], "
                            f"got {shown(list(value))}")
        values = tuple(_int_from(name, v, -MAX_SIZE, "") for v in value)
        return values if len(values) == 4 else (*values, 0, 0)
    side = _int_from(name, value, -MAX_SIZE, "")
    return (side, side, side, side)


def fill_value(name: str, value) -> float:
    """What padding fills in: a finite number, or -inf (before a max pool: TensorFlow's 'same'),
    written '-inf' in a call (or -.inf, YAML's spelling, in a mapping)."""
    if value == "-inf" or isinstance(value, (int, float)) and not isinstance(value, bool) and value == -math.inf:
        return -math.inf
    return _finite(name, value, "number or -.inf")


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"'{name}' must be true or false, got {shown(value)}")
    return value


def _finite(name: str, value, what: str) -> float:
    """A number as a float; NaN, infinity and integers beyond a float's range make no sense here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"'{name}' must be a {what}, got {shown(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise SpecError(f"'{name}' must be a finite {what}, got {shown(value)}")
    return result


def positive_float(name: str, value) -> float:
    result = _finite(name, value, "positive number")
    if result <= 0:
        raise SpecError(f"'{name}' must be a positive number, got {shown(value)}")
    return result


def number(name: str, value) -> float:
    return _finite(name, value, "number")


def probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise SpecError(f"'{name}' must be a probability in [0, 1), got {shown(value)}")
    return float(value)


def text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"'{name}' must be a non-empty string, got {shown(value)}")
    return value


def tensor_shape(name: str, value) -> tuple:
    """A per-image shape: [C, H, W] or [N]."""
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        raise SpecError(f"'{name}' must be [C, H, W] or [N], got {shown(value)}")
    return tuple(positive_int(name, v) for v in value)


def choice(*allowed: str) -> Callable:
    def check_choice(name: str, value):
        if value not in allowed:
            raise SpecError(f"'{name}' must be one of {', '.join(map(repr, allowed))}, got {shown(value)}")
        return value
    return check_choice


def optional(check: Callable) -> Callable:
    def check_optional(name: str, value):
        return None if value is None else check(name, value)
    return check_optional

"""The design space of a sweep: the product of argument grids, width multipliers and input sizes,
walked in order or sampled at random (with a seed, without building the product)."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import AnalyzerError

MAX_VARIANTS = 1_000_000   # a product past this is refused before anything runs (--random samples it)


class SweepError(AnalyzerError):
    kind = "sweep error"


@dataclass(frozen=True)
class Variant:
    """One point of the space: spec arguments set, a width multiplier, an input size."""

    arguments: tuple[tuple[str, Any], ...] = ()
    width: float | None = None
    input_size: int | None = None

    def label(self) -> str:
        """'aux_logits=false, width x0.5, 224 px' ('as written' for the spec itself)."""
        parts = [f"{key}={_text(value)}" for key, value in self.arguments]
        if self.width is not None:
            parts.append(f"width x{self.width:g}")
        if self.input_size is not None:
            parts.append(f"{self.input_size} px")
        return ", ".join(parts) or "as written"


def _text(value: Any) -> str:
    return "true" if value is True else "false" if value is False else "null" if value is None else str(value)


@dataclass(frozen=True)
class DesignSpace:
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    widths: tuple[float | None, ...] = (None,)
    input_sizes: tuple[int | None, ...] = (None,)
    axes: tuple[tuple[Any, ...], ...] = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "axes", (*(values for _, values in self.grid), self.widths, self.input_sizes))

    @property
    def size(self) -> int:
        total = 1
        for values in self.axes:
            total *= len(values)
        return total

    def variant(self, index: int) -> Variant:
        """The index-th variant of the product, in the order `variants` walks it (mixed radix)."""
        picks = []
        for values in reversed(self.axes):
            index, digit = divmod(index, len(values))
            picks.append(values[digit])
        *arguments, width, input_size = reversed(picks)
        return Variant(tuple(zip((key for key, _ in self.grid), arguments)), width, input_size)

    def variants(self) -> Iterator[Variant]:
        if self.size > MAX_VARIANTS:
            raise SweepError(f"the space holds {self.size:,} variants, more than {MAX_VARIANTS:,}: sample it "
                             "with --random N")
        for picks in itertools.product(*self.axes):
            *arguments, width, input_size = picks
            yield Variant(tuple(zip((key for key, _ in self.grid), arguments)), width, input_size)

    def sample(self, count: int, seed: int = 0) -> list[Variant]:
        """`count` distinct variants drawn at random (all of them, in order, when there are fewer)."""
        if count >= self.size:
            return list(self.variants())
        picks = random.Random(seed).sample(range(self.size), count)
        return [self.variant(index) for index in sorted(picks)]

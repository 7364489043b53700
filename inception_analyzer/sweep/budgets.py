"""`--max KEY=VALUE`: limits a variant must keep to survive a sweep. Values take SI prefixes
(6e9, 6G, 25M), bytes take binary ones too (512MiB), latency takes a unit (5ms, 200us, 0.01s)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import shown
from ..numbers import human
from .evaluate import VariantResult
from .space import SweepError

# budget key -> the result's field, what it measures
FIGURES = {"macs": ("macs", "multiply-accumulates per image"),
           "params": ("params", "learnable parameters"),
           "activations": ("activations", "output elements per image"),
           "memory": ("peak_memory_bytes", "peak memory of an inference pass, bytes"),
           "latency": ("latency_seconds", "predicted latency of one batch (--batch), seconds (needs --profile)")}
_NUMBER = re.compile(r"(?P<number>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")
_COUNT = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BYTES = {**_COUNT, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_SECONDS = {"s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
# the units each budget reads: a count takes no unit of bytes or time, a latency must name its unit
_UNITS = {"macs": _COUNT, "params": _COUNT, "activations": _COUNT, "memory": _BYTES, "latency": _SECONDS}
_EXAMPLES = {"macs": "6e9 or 6G", "params": "25M", "activations": "20M", "memory": "512MiB", "latency": "5ms"}


@dataclass(frozen=True)
class Budget:
    key: str
    limit: float

    def limit_text(self) -> str:
        """The limit as a reader writes it: 6G, 25M, 512MB, 5 ms."""
        if self.key == "latency":
            return f"{self.limit * 1e3:g} ms"
        return human(self.limit, "B" if self.key == "memory" else "")

    def allows(self, result: VariantResult) -> bool:
        value = getattr(result, FIGURES[self.key][0])
        return value is not None and value <= self.limit


def parse_budget(text: str) -> Budget:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in FIGURES:
        raise SweepError(f"--max takes KEY=VALUE with KEY one of {', '.join(FIGURES)}, got {shown(text)}")
    match = _NUMBER.fullmatch(value.strip())
    units = _UNITS[key]
    if match is None or match["unit"] not in units:
        raise SweepError(f"--max {key}: cannot read {shown(value)} as a number with a unit of "
                         f"{', '.join(repr(u) for u in units if u) } (e.g. {_EXAMPLES[key]})")
    limit = float(match["number"]) * units[match["unit"]]
    if not math.isfinite(limit) or limit <= 0:
        raise SweepError(f"--max {key} must be a positive finite number, got {shown(value)}")
    return Budget(key, limit)

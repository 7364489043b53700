"""torch modules for op kinds that torch.nn has no module for. Imported only by `make_module`."""
from __future__ import annotations

import torch
from torch import nn


class Scale(nn.Module):
    """Multiplies its input by a fixed factor: Inception-ResNet scales each residual branch (by
    0.1 to 0.3) before the add, which keeps very wide residual stacks stable in training. The
    factor is a constant, not a parameter, as in the paper and timm."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"

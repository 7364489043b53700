"""torch modules for op kinds that torch.nn has no module for. Imported only by `make_module`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
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


class ChannelLinear(nn.Linear):
    """torch.nn.Linear over the channels of every position of an NCHW feature map (what ConvNeXt's
    blocks compute on a channels-last tensor); its weights are a Linear's, [out, in]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


class ChannelLayerNorm(nn.LayerNorm):
    """Layer normalisation over the channels of every position of an NCHW feature map (torchvision's
    and timm's LayerNorm2d); its weights are a LayerNorm's, [C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class SidePaddedConv2d(nn.Conv2d):
    """A convolution that pads one side of an axis more than the other, ((top, bottom), (left,
    right)): TensorFlow's 'same' padding of a strided convolution (timm's Conv2dSame), which
    torch's Conv2d, padding both sides alike, cannot say. Its weights are a Conv2d's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, sides, dilation, groups: int,
                 bias: bool):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)
        (top, bottom), (left, right) = sides
        self.sides = (left, right, top, bottom)     # F.pad's order: the last axis first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.sides))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", sides={self.sides}"


class GlobalAvgPool(nn.Module):
    """The mean over the grid as a vector: x.mean((2, 3))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


class ChannelChunk(nn.Module):
    """One piece of x.chunk(chunks, dim=1)."""

    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks, self.index = chunks, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, 1)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}"


class ChannelSlice(nn.Module):
    """The channels start to end-1: x[:, start:end]."""

    def __init__(self, start: int, end: int):
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.end]

    def extra_repr(self) -> str:
        return f"start={self.start}, end={self.end}"

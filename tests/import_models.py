"""Small PyTorch models for the importer's tests, written the ways real model code is written:
modules and functional calls, cat and residual adds, x.view(x.size(0), -1), a shared ReLU, an
auxiliary head that runs only in training, and a few things the registry cannot express."""
from __future__ import annotations

import math
from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

Outputs = namedtuple("Outputs", ["logits", "aux_logits"])


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Mixed(nn.Module):
    """An Inception module: 1x1, 1x1 -> 3x3, 3x3 max pool -> 1x1, concatenated."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 8, 1)
        self.branch3x3_1 = ConvBN(cin, 4, 1)
        self.branch3x3_2 = ConvBN(4, 8, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x):
        pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), self.branch3x3_2(self.branch3x3_1(x)), self.branch_pool(pool)], 1)


class Residual(nn.Module):
    """An Inception-ResNet block: a scaled residual branch added to the identity, one shared ReLU."""

    def __init__(self, channels: int, scale: float = 0.2):
        super().__init__()
        self.reduce = ConvBN(channels, channels // 4, 1)
        self.expand = nn.Conv2d(channels // 4, channels, [1, 3], padding=[0, 1])
        self.relu = nn.ReLU()
        self.scale = scale

    def forward(self, x):
        return self.relu(x + self.expand(self.reduce(x)) * self.scale)


class TinyInception(nn.Module):
    def __init__(self, num_classes: int = 10, aux_logits: bool = True):
        super().__init__()
        self.stem = ConvBN(3, 16, 3, stride=2, padding=1)
        self.Mixed_a = Mixed(16, 8)
        self.Mixed_b = Mixed(24, 16)
        self.res = nn.Sequential(Residual(32), Residual(32))
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes)) \
            if aux_logits else None
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.Mixed_a(x)
        x = self.Mixed_b(x)
        x = self.res(x)
        aux = self.aux(x) if self.training and self.aux is not None else None
        x = torch.mean(x, (2, 3), keepdim=True)
        x = self.fc(self.dropout(x.view(x.size(0), -1)))
        return Outputs(x, aux) if self.training and self.aux is not None else x


class Unmodelled(nn.Module):
    """Operations no op kind expresses: a channel slice, a sort (a tuple), the maximum of two tensors."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = self.conv(x)
        x = x[:, ::2]
        x = torch.sort(x, 1).values
        return torch.maximum(x, torch.sigmoid(x))


class SqueezeExcite(nn.Module):
    """A squeeze-and-excitation block (Hu et al. 2018): a gate of one value per channel, computed
    from the global average, multiplies the feature map."""

    def __init__(self, channels: int = 16, reduction: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.head = nn.Linear(channels, 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        x = x * gate
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ChannelSlice(nn.Module):
    """One unmodelled operation on one tensor (a channel slice) between two convs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        return self.conv2(self.conv1(x)[:, ::2])


class SharedWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):  # one conv applied twice: its weights serve two layers
        return self.conv(self.conv(x))


class DenseBlock(nn.Module):
    """DenseNet's pattern: every layer reads the concatenation of all earlier ones. It analyses,
    but it is not series-parallel, so no spec can be written for it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(7, 4, 3, padding=1)

    def forward(self, x):
        y1 = self.conv1(x)
        y2 = self.conv2(torch.cat([x, y1], 1))
        return torch.cat([x, y1, y2], 1)


class NotExecuted(nn.Module):
    """A layer that holds weights but never runs: reported, not silently dropped."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.spare = nn.Linear(5, 5)

    def forward(self, x):
        return self.conv(x)


class TreeBlock(nn.Module):
    """A residual block whose shortcut the caller computes and passes in (DLA's blocks)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x, shortcut):
        return F.relu(self.bn(self.conv(x)) + shortcut)


class Tree(nn.Module):
    """A DLA tree (Yu et al. 2018): its input is pooled first and only the root, many modules
    later, reads the pool; its first block adds a projection the tree makes, not the block."""

    def __init__(self, cin: int = 4, cout: int = 8):
        super().__init__()
        self.downsample = nn.MaxPool2d(2)
        self.project = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.widen = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.tree1 = TreeBlock(cout)
        self.tree2 = TreeBlock(cout)
        self.root = nn.Conv2d(2 * cout + cin, cout, 1)

    def forward(self, x):
        bottom = self.downsample(x)
        x1 = self.tree1(self.widen(x), self.project(bottom))
        x2 = self.tree2(x1, x1)
        return self.root(torch.cat([x2, x1, bottom], 1))


class Trees(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.level1 = Tree(4, 8)
        self.level2 = Tree(8, 16)

    def forward(self, x):
        return self.level2(self.level1(self.stem(x)))


class HierarchicalSplit(nn.Module):
    """Res2Net's pattern: a ModuleList of convs and one of norms, called in turn in one loop, each
    scale adding the previous scale's output to its own slice of the channels."""

    def __init__(self, channels: int = 12, scales: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 1)
        self.width = channels // scales
        self.convs = nn.ModuleList(nn.Conv2d(self.width, self.width, 3, padding=1) for _ in range(scales - 1))
        self.bns = nn.ModuleList(nn.BatchNorm2d(self.width) for _ in range(scales - 1))

    def forward(self, x):
        parts = torch.split(self.stem(x), self.width, 1)
        outputs, previous = [], None
        for index, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            part = parts[index] if previous is None else previous + parts[index]
            previous = F.relu(bn(conv(part)))
            outputs.append(previous)
        return torch.cat(outputs + [parts[-1]], 1)


class PoolsWhenLarge(nn.Module):
    """A head that pools only a map larger than its kernel, as timm's VGG head does: control flow
    on a shape, which symbolic tracing cannot follow."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Conv2d(4, 5, 4)

    def forward(self, x):
        x = F.relu(self.conv(x))
        if x.shape[-2] > 4 or x.size(-1) > 4:
            x = F.adaptive_avg_pool2d(x, 4)
        return torch.flatten(self.fc(x), 1)


class ChecksItsInput(nn.Module):
    """An assertion on the input's size (as transformers' patch embeddings make)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        assert x.shape[-1] == 16, f"needs 16 x 16 images, got {x.shape[-1]}"
        return self.conv(x)


class BranchesOnValues(nn.Module):
    """Control flow on a tensor's values: no trace can follow it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        x = self.conv(x)
        return x if x.sum() > 0 else -x


class Conv2dSame(nn.Conv2d):
    """TensorFlow's 'same' padding, as timm writes it: pad by what the input's size needs (the odd
    pixel after the map), then the convolution function with the module's own weights."""

    def forward(self, x):
        ih, iw = x.size()[-2:]
        pad_h = max((math.ceil(ih / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - ih, 0)
        pad_w = max((math.ceil(iw / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - iw, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class TensorFlowPadded(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dSame(3, 8, 3, stride=2)
        self.widen = nn.ZeroPad2d((1, 1, 0, 0))
        self.conv = Conv2dSame(8, 8, 3, stride=2, groups=8, bias=False)

    def forward(self, x):
        return self.conv(self.widen(F.relu(self.stem(x))))


class PaddedTwice(nn.Module):
    """Zero padding that two convolutions read, and zero padding that a pool reads."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d(1)
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(3, 4, 3)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        padded = self.pad(x)
        wide = F.pad(self.conv1(padded), (0, 1, 0, 1))
        return self.pool(wide) + self.pool(self.conv2(padded))


class TinyUNet(nn.Module):
    """An encoder and a decoder: upsampled by nn.Upsample and F.interpolate (bilinear), skips
    concatenated, and a gate brought back to the map's size read off the map (GhostNetV2)."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.enc3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.dec2 = nn.Conv2d(32, 8, 3, padding=1)
        self.dec1 = nn.Conv2d(16, 4, 1)
        self.gate = nn.Conv2d(3, 4, 3, stride=3, padding=1)

    def forward(self, x):
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(e1))
        e3 = F.relu(self.enc3(e2))
        d2 = F.relu(self.dec2(torch.cat([self.up(e3), e2], 1)))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False), e1], 1))
        return d1 * F.interpolate(torch.sigmoid(self.gate(x)), size=(d1.shape[-2], d1.shape[-1]), mode="nearest")


class Shrinks(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=0.5, mode="bicubic")


class MlpHead(nn.Module):
    """A classifier head of linear layers with BatchNorm1d between them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5))
        self.sequence_norm = nn.BatchNorm1d(8)

    def forward(self, x):
        return self.head(self.conv(x))


class NormalisesSequences(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.BatchNorm1d(8)

    def forward(self, x):
        return self.norm(self.conv(x).flatten(2))


class StandardisedConv(nn.Conv2d):
    """NFNet's weight standardisation: the weight the convolution uses is computed in the forward."""

    def forward(self, x):
        weight = (self.weight - self.weight.mean((1, 2, 3), keepdim=True)) / (self.weight.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class ReflectPadded(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


# Not model factories: `import` must refuse to call these (importing this module is harmless).
from os import remove  # noqa: E402,F401 - re-exported from os, defined there


def make_file(path: str) -> None:
    """A function of this module that is no model factory: it runs, then import says so."""
    open(path, "w").close()


class NeedsLargeInput(nn.Module):
    """Its forward fails on small inputs (the flatten no longer matches the linear layer)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 30 * 30, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


# Words the spec language gives a meaning to, as module names (the writer must still write a spec
# that loads), and Python keywords (torch.fx cannot compile code for `self.block.from`)
RESERVED_WORDS = ("layers", "concat", "add", "mul", "call", "from", "name", "when", "aux", "doc", "args",
                  "true", "null", "on", "yes")


class Words(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        for word in RESERVED_WORDS:
            setattr(self, word, nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        for word in RESERVED_WORDS:
            x = getattr(self, word)(x)
        return x


class ReservedNames(nn.Module):
    """Submodules called like the spec language's keywords, at every level, and a functional `add`
    beside a ModuleList called `add`."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.concat = Words()
        self.layers = Words()
        self.add = nn.ModuleList([Words(), Words()])

    def forward(self, x):
        x = self.stem(x)
        x = self.layers(self.concat(x)) + x
        return self.add[1](self.add[0](x))


class ContainsItself(nn.Module):
    """A module that is its own descendant: torch's own tree walks (model.train()) never end."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.inner = nn.Sequential(nn.ReLU())
        self.inner.parent = self

    def forward(self, x):
        return self.inner(self.conv(x))


class InputModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.input(x)

"""PyTorch modules of MobileNetV3 / Once-for-All chain networks (MBConv with optional SE)."""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of `divisor`, never below 90% of `v` (MobileNet rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected 'relu' or 'hswish'")


class ConvBNAct(nn.Sequential):
    def __init__(self, c_in, c_out, kernel=1, stride=1, groups=1, act: str | None = "relu"):
        layers = [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        mid = make_divisible(channels // reduction)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand, kxk depthwise, optional SE, 1x1 project, residual."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: float, stride: int,
                 se: bool = False, act: str = "relu"):
        super().__init__()
        mid = make_divisible(round(c_in * expand)) if expand != 1 else c_in
        self.expand = ConvBNAct(c_in, mid, 1, act=act) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = ConvBNAct(mid, c_out, 1, act=None)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class ClassifierHead(nn.Module):
    """1x1 expand, global pool, optional 1x1 feature mix, dropout, linear."""

    def __init__(self, c_in: int, expand: int, feature: int | None, num_classes: int,
                 act: str = "hswish", dropout: float = 0.0):
        super().__init__()
        self.expand = ConvBNAct(c_in, expand, 1, act=act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if feature:
            self.feature = nn.Sequential(nn.Conv2d(expand, feature, 1, bias=False), activation(act))
            out = feature
        else:
            self.feature = nn.Identity()
            out = expand
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(out, num_classes)

    def forward(self, x):
        x = self.feature(self.pool(self.expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


class ChainNetwork(nn.Module):
    """stem -> blocks -> head; the module every chain space's `build()` returns."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))

"""PyTorch modules of FBNet's blocks (grouped 1x1 convs with channel shuffle, depthwise kxk)."""

from __future__ import annotations

import torch
from torch import nn

from .fbnet import parse_op


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in, c_out, kernel=1, stride=1, groups=1, relu=True):
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(c_out)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class FBNetBlock(nn.Module):
    """1x1 (grouped) expand, shuffle, kxk depthwise, 1x1 (grouped) project, residual if shapes match."""

    def __init__(self, c_in, c_out, kernel, expand, groups, stride):
        super().__init__()
        mid = c_in * expand
        self.expand = ConvBNReLU(c_in, mid, 1, groups=groups)
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = ConvBNReLU(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBNReLU(mid, c_out, 1, groups=groups, relu=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.depthwise(self.shuffle(self.expand(x))))
        return x + y if self.residual else y


def make_op(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    parsed = parse_op(op)
    if parsed is None:
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return ConvBNReLU(c_in, c_out, 1, stride, relu=False)
    k, e, g = parsed
    return FBNetBlock(c_in, c_out, k, e, g, stride)


class Head(nn.Module):
    def __init__(self, c_in, channels, num_classes):
        super().__init__()
        self.conv = ConvBNReLU(c_in, channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.conv(x)), 1))

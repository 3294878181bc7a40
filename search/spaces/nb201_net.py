"""PyTorch modules of the NAS-Bench-201 macro skeleton (as in AutoDL-Projects' `InferCell`).

Shared by the stand-alone network (`NB201Space.build`) and the weight-sharing supernet, which
swaps the cell for one that holds every op on every edge.
"""

from __future__ import annotations

import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of the six edges, in arch-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The `none` op: a zero tensor of the input's shape (kept in the graph, as NB201 does)."""

    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}; expected one of {OPS}")


class InferCell(nn.Module):
    """One fixed cell: node_j = sum over edges (j, i) of op(node_i)."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(
                sum(self.edges[e](nodes[i]) for e, (to, i) in enumerate(EDGES) if to == j)
            )
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two 3x3 ReLUConvBN plus an avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = nn.Identity()

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Stem(nn.Sequential):
    def __init__(self, in_channels: int, channels: int):
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )


class Head(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.lastact(x)), 1))


def stage_channels(C: int, stages: int = 3) -> tuple[int, ...]:
    return tuple(C * 2**s for s in range(stages))


class NB201Network(nn.Module):
    """Stem, `stages` stages (NB201: 3) of N cells, a reduction block between stages, head.

    `cell_factory(channels)` builds one cell: a fixed `InferCell` for a stand-alone network, or a
    mixed cell for the supernet.
    """

    def __init__(self, cell_factory, C: int = 16, N: int = 5, in_channels: int = 3,
                 num_classes: int = 10, stages: int = 3):
        super().__init__()
        self.stem = Stem(in_channels, C)
        layers: list[nn.Module] = []
        chans = stage_channels(C, stages)
        for s, c in enumerate(chans):
            if s > 0:
                layers.append(ResNetBasicBlock(chans[s - 1], c, 2))
            layers.extend(cell_factory(c) for _ in range(N))
        self.cells = nn.ModuleList(layers)
        self.head = Head(chans[-1], num_classes)

    def forward(self, x, *cell_args):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, *cell_args) if cell_args and not isinstance(cell, ResNetBasicBlock) else cell(x)
        return self.head(x)

"""The gated cell supernet MGAS searches on cell spaces (`CellGraph`): every op of the space on
every edge, each gated per (edge, op); the convs carry filter gates and a weight mask.

Built from the space: its `edges` and `ops`, and its macro skeleton (`cell_network`, the stem,
reductions and head around the cells). The ops are the gated forms of the space's op names:
`skip_connect` (identity), `nor_conv_KxK` (ReLU-conv-BN with a weight mask `mask(|W| - t_w)` and
filter gates `sigmoid(beta) * mask(sigmoid(beta) - t_f)` on its output) and `avg_pool_3x3`; `none`
is the op every gate leaves, so it has no module. The hard `mask` (a step with the method's
surrogate gradient) and the op gates come from the method: `forward(x, gates)` takes the
[edges, gated ops] gate tensor, shared by every cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

_CONV = re.compile(r"^nor_conv_(\d)x\1$")


class GatedConv(nn.Module):
    """ReLU-conv-BN with a weight mask (`mask(|W| - t_w)`) and filter gates on its output;
    `edge` and `op` say where it sits in its cell."""

    def __init__(self, c: int, k: int, beta_init: float, mask: Callable, edge: int = -1, op: int = -1):
        super().__init__()
        self.conv = nn.Conv2d(c, c, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.beta = nn.Parameter(torch.full((c,), float(beta_init)))
        self.t_f = nn.Parameter(torch.zeros(()))
        self.t_w = nn.Parameter(torch.zeros(()))
        self.mask, self.edge, self.op = mask, edge, op

    def filter_gates(self):
        w = torch.sigmoid(self.beta)
        return w, self.mask(w - self.t_f)

    def weight_mask(self):
        return self.mask(self.conv.weight.abs() - self.t_w)

    def forward(self, x):
        y = self.bn(F.conv2d(F.relu(x), self.conv.weight * self.weight_mask(), padding=self.conv.padding))
        w, m = self.filter_gates()
        return y * (w * m).view(1, -1, 1, 1)


class AvgPool3(nn.Module):
    """avg_pool_3x3 (stride 1, padding not counted) as a depthwise conv of ones over the
    window count: the same numbers, several times faster than avg_pool2d's CPU kernel."""

    def __init__(self, c: int):
        super().__init__()
        self.register_buffer("ones", torch.ones(c, 1, 3, 3), persistent=False)
        self._count = None

    def forward(self, x):
        if self._count is None or self._count.shape[-2:] != x.shape[-2:]:
            one = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype)
            self._count = F.conv2d(one, self.ones[:1], padding=1)
        return F.conv2d(x, self.ones, padding=1, groups=x.shape[1]) / self._count


def gated_op(name: str, c: int, beta_init: float, mask: Callable, edge: int, op: int) -> nn.Module:
    """The gated module of op `name` (see the module docstring)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return AvgPool3(c)
    m = _CONV.match(name)
    if m:
        return GatedConv(c, int(m.group(1)), beta_init, mask, edge, op)
    raise ValueError(f"the gated cell supernet has no gated form of op {name!r}; "
                     "it knows skip_connect, nor_conv_KxK and avg_pool_3x3 (and none, left ungated)")


def node_edges(edges) -> tuple[tuple[int, ...], ...]:
    """Per intermediate / output node (1, 2, ...), the indices of the edges into it."""
    last = max(to for to, _ in edges)
    return tuple(tuple(e for e, (to, _) in enumerate(edges) if to == j) for j in range(1, last + 1))


class GatedCell(nn.Module):
    """`edges[e][k]` is gated op k (the space's ops without `none`, in order) of edge e."""

    def __init__(self, space, c: int, beta_init: float, mask: Callable):
        super().__init__()
        self.src = tuple(i for _, i in space.edges)
        self.nodes = node_edges(space.edges)
        self.edges = nn.ModuleList(
            nn.ModuleList(gated_op(name, c, beta_init, mask, e, o) for o, name in enumerate(space.ops) if name != "none")
            for e in range(len(space.edges)))

    def forward(self, x, gates):
        nodes = [x]
        for edges in self.nodes:
            nodes.append(sum(gates[e, k] * op(nodes[self.src[e]])
                             for e in edges for k, op in enumerate(self.edges[e])))
        return nodes[-1]


class GatedCellNet(nn.Module):
    """The space's skeleton whose cells share one gated cell structure: op gate logits `alpha`
    [edges, gated ops] and per-edge thresholds `t_op` (what the method learns and gates with);
    `forward(x, gates)`."""

    def __init__(self, space, in_channels: int, num_classes: int, C: int, cells_per_stage: int, stages: int,
                 beta_init: float, mask: Callable):
        super().__init__()
        self.ops = tuple(space.ops)
        self.gated = tuple(o for o, name in enumerate(space.ops) if name != "none")
        self.nodes = node_edges(space.edges)
        self.alpha = nn.Parameter(torch.zeros(len(space.edges), len(self.gated)))
        self.t_op = nn.Parameter(torch.zeros(len(space.edges)))
        body = space.cell_network(lambda c: GatedCell(space, c, beta_init, mask), C=C, N=cells_per_stage,
                                  stages=stages, in_channels=in_channels, num_classes=num_classes)
        self.stem, self.cells, self.head = body.stem, body.cells, body.head

    def gated_convs(self) -> list[GatedConv]:
        return [m for m in self.modules() if isinstance(m, GatedConv)]

    def forward(self, x, gates):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, gates) if isinstance(cell, GatedCell) else cell(x)
        return self.head(x)


class WeightMask(nn.Module):
    """A weight parametrisation `W * mask(|W| - t)` with a learned threshold t (MGAS's weight
    level on the convs of a mixed chain supernet; `torch.nn.utils.parametrize`)."""

    def __init__(self, mask: Callable):
        super().__init__()
        self.t = nn.Parameter(torch.zeros(()))
        self.mask = mask

    def forward(self, W):
        return W * self.mask(W.abs() - self.t)

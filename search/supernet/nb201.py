"""NAS-Bench-201 supernet: every op on every edge, one sampled op per edge per step (SPOS).

The macro skeleton is `NB201Network` itself with a mixed cell, so a subnet extracted from the
supernet has exactly the parameter names of `NB201Space.build(arch)` once the op index is dropped.
"""

from __future__ import annotations

from hwnas.search.spaces.nb201 import N_EDGES, OPS
from hwnas.search.spaces.nb201_net import EDGES, NB201Network, make_op
from torch import nn

from .base import Supernet, register_supernet


class MixedCell(nn.Module):
    """`edges[e][o]` is op `o` of edge `e`; `forward(x, arch)` runs op `arch[e]` on edge e."""

    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, channels) for op in OPS) for _ in range(N_EDGES)
        )

    def forward(self, x, arch):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[e][arch[e]](nodes[i]) for e, (to, i) in enumerate(EDGES) if to == j))
        return nodes[3]


class NB201Supernet(Supernet):
    def __init__(self, space):
        super().__init__()
        self.space = space
        self.net = NB201Network(MixedCell, C=space.C, N=space.N, in_channels=space.input_shape[0],
                                num_classes=space.num_classes)

    def largest(self):
        return (OPS.index("nor_conv_3x3"),) * N_EDGES

    def smallest(self):
        return (OPS.index("skip_connect"),) * N_EDGES

    def forward(self, x, arch=None):
        arch = self.largest() if arch is None else arch
        return self.net(x, tuple(arch))

    def extract(self, arch) -> nn.Module:
        arch = self.space.validate(arch)
        sub = self.space.build(arch)
        state = {}
        for name, tensor in self.net.state_dict().items():
            parts = name.split(".")
            if parts[0] == "cells" and len(parts) > 4 and parts[2] == "edges":
                e, o = int(parts[3]), int(parts[4])
                if o != arch[e]:
                    continue
                name = ".".join(parts[:4] + parts[5:])
            state[name] = tensor
        sub.load_state_dict(state)
        return sub


@register_supernet("nb201")
def nb201_supernet(space, **_) -> NB201Supernet:
    return NB201Supernet(space)

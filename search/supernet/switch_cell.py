"""The switch network BayesNAS searches on cell spaces (`CellGraph`): every op of the space on
every edge, each scaled by a switch, built from the space's `edges`, `ops`, `make_op` and macro
skeleton (`cell_network`).

Switch column 0 of an edge is its origin switch: it scales the edge's input and plays the `none`
op; columns 1.. scale the other ops' outputs (so switch columns and op indices coincide). What
the switches mean (priors, updates, pruning) is the method's.
"""

from __future__ import annotations

import torch
from torch import nn


class SwitchCell(nn.Module):
    """A cell with every op but `none` on every edge; `forward(x, s, alive)` with s (E, K)."""

    def __init__(self, space, channels: int):
        super().__init__()
        self.links = tuple(space.edges)
        self.n_nodes = max(to for to, _ in self.links)
        self.edges = nn.ModuleList(nn.ModuleList(space.make_op(op, channels) for op in space.ops[1:])
                                   for _ in self.links)

    def forward(self, x, s, alive):
        if s.dim() == 3:  # per-sample switches (B, E, K), for the Gauss-Newton diagonal
            s = s.permute(1, 2, 0)[..., None, None, None]
        nodes = [x]
        for j in range(1, self.n_nodes + 1):
            acc = 0
            for e, (to, i) in enumerate(self.links):
                if to != j or not alive[e, 0]:
                    continue
                inp = nodes[i] * s[e, 0]
                for o, op in enumerate(self.edges[e], start=1):
                    if alive[e, o]:
                        acc = acc + s[e, o] * op(inp)
            nodes.append(acc if torch.is_tensor(acc) else torch.zeros_like(x))
        return nodes[-1]


class SwitchNetwork(nn.Module):
    """The space's skeleton (stem, stages of `N` switch cells, reduction blocks between, head);
    `switches` is (n_cells, E, K), column 0 the origin switches."""

    def __init__(self, space, C: int, N: int, in_channels: int, num_classes: int):
        super().__init__()
        body = space.cell_network(lambda c: SwitchCell(space, c), C=C, N=N, in_channels=in_channels,
                                  num_classes=num_classes)
        self.stem, self.cells, self.head = body.stem, body.cells, body.head
        self.n_cells = sum(isinstance(c, SwitchCell) for c in self.cells)
        self.switches = nn.Parameter(torch.ones(self.n_cells, len(space.edges), len(space.ops)))

    def weights(self):
        return [p for n, p in self.named_parameters() if n != "switches"]

    def forward(self, x, alive, switches=None):
        """`switches`: None (the parameter) or per-sample copies (B, n_cells, E, K)."""
        sw = self.switches if switches is None else switches
        x, k = self.stem(x), 0
        for layer in self.cells:
            if isinstance(layer, SwitchCell):
                x = layer(x, sw[k] if sw.dim() == 3 else sw[:, k], alive)
                k += 1
            else:
                x = layer(x)
        return self.head(x)

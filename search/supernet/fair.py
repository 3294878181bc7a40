"""Fair single-path supernets (FairNAS style) DI-NAS trains: an independent module per candidate
of every layer, so each candidate keeps its own weights and BN and can be scored on its own.

- chains (`Chain`): `candidates[s][b][c]` is the space's own block `build_block(block_spec(s,
  b == 0, c))`; stem and head are the space's fixed blocks;
- cells (`CellGraph`): the space's macro skeleton (`cell_network`) whose cells hold one module
  per (edge, op) from `make_op`; all cells share one genotype per forward.

A parameter-free candidate (skip, pooling) carries a BN (`ScoredSkip`) so it has a gamma and is
scored like the others. `init(module, generator)` is the method's initialisation (DI-NAS: the
dynamical-isometry init), applied to every candidate as it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .base import Supernet


@contextmanager
def one_thread():
    """Tiny QRs and Jacobian products: one thread is faster, and on a shared machine several
    intra-op threads slowed them down ~10x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class ScoredSkip(nn.Module):
    """A parameter-free candidate with a BN, so it gets a gamma and is scored like the others."""

    def __init__(self, op: nn.Module, channels: int):
        super().__init__()
        self.op = op
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.op(x))


class FairChainSupernet(Supernet):
    """Independent candidates per (stage, position, choice) of a chain space (FairNAS style)."""

    def __init__(self, space, init: Callable | None = None, seed: int = 0):
        super().__init__()
        with one_thread():
            self._build(space, init, seed)

    def _build(self, space, init, seed: int) -> None:
        self.space, self.di_init, self.seed = space, init is not None, seed
        gen = torch.Generator().manual_seed(seed)
        stem, head = space.fixed_blocks()
        self.stem, self.head = space.build_block(stem), space.build_block(head)
        stages = []
        for s, st in enumerate(space.stages):
            positions = []
            for b in range(st.max_depth):
                cands = []
                for c in range(len(st.choices)):
                    spec = space.block_spec(s, b == 0, c)
                    mod = space.build_block(spec)
                    if not any(True for _ in mod.parameters()):
                        mod = ScoredSkip(mod, st.width)
                    if init is not None:
                        init(mod, gen)
                    cands.append(mod)
                positions.append(nn.ModuleList(cands))
            stages.append(nn.ModuleList(positions))
        self.candidates = nn.ModuleList(stages)

    def config(self) -> dict:
        return {"di_init": self.di_init, "seed": self.seed}

    def _params(self, s: int, c: int) -> int:
        return sum(p.numel() for p in self.candidates[s][0][c].parameters())

    def largest(self):
        return tuple((max(range(len(st.choices)), key=lambda c, s=s: self._params(s, c)),) * st.max_depth
                     for s, st in enumerate(self.space.stages))

    def smallest(self):
        return tuple((min(range(len(st.choices)), key=lambda c, s=s: self._params(s, c)),) * st.min_depth
                     for s, st in enumerate(self.space.stages))

    def forward(self, x, arch=None):
        arch = self.largest() if arch is None else arch
        x = self.stem(x)
        for s, blocks in enumerate(arch):
            for b, c in enumerate(blocks):
                x = self.candidates[s][b][c](x)
        return self.head(x)

    def candidate_scores(self) -> list[np.ndarray]:
        """Per stage, [max_depth, n_choices]: mean |gamma| of each candidate's last BN."""
        out = []
        for positions in self.candidates:
            rows = []
            for cands in positions:
                row = []
                for mod in cands:
                    bns = [m for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]
                    row.append(float(bns[-1].weight.detach().abs().mean()) if bns else 0.0)
                rows.append(row)
            out.append(np.asarray(rows, dtype=np.float64))
        return out


class FairCell(nn.Module):
    """A cell with an independent module per (edge, op); parameter-free ops carry a BN
    (`ScoredSkip`) so they are scored like the convs; `none` stays the space's zero op."""

    def __init__(self, space, c: int, init: Callable | None, gen):
        super().__init__()
        self.links = tuple(space.edges)
        self.n_nodes = max(to for to, _ in self.links)
        edges = []
        for _ in self.links:
            ops = []
            for op in space.ops:
                m = space.make_op(op, c)
                if op != "none" and not any(True for _ in m.parameters()):
                    m = ScoredSkip(m, c)
                if init is not None and op != "none":
                    init(m, gen)
                ops.append(m)
            edges.append(nn.ModuleList(ops))
        self.edges = nn.ModuleList(edges)

    def forward(self, x, arch, record=None):
        nodes = [x]
        for j in range(1, self.n_nodes + 1):
            terms = [(e, i, self.edges[e][arch[e]](nodes[i])) for e, (to, i) in enumerate(self.links) if to == j]
            node = sum(t for _, _, t in terms)
            if record is not None:
                record.append((self, j, node, [(e, nodes[i], t) for e, i, t in terms]))
            nodes.append(node)
        return nodes[-1]


class FairCellSupernet(Supernet):
    """The space's skeleton (stem, stages of N fair cells, reduction blocks, head) whose cells
    share one genotype per forward: `forward(x, arch)`; without `arch`, every edge runs its op
    with the most parameters."""

    def __init__(self, space, C: int = 8, N: int = 1, in_channels: int = 1, num_classes: int = 10,
                 init: Callable | None = None, seed: int = 0):
        super().__init__()
        self.space, self.C, self.N, self.di_init, self.seed = space, C, N, init is not None, seed
        gen = torch.Generator().manual_seed(seed)
        with one_thread():
            self.net = space.cell_network(lambda c: FairCell(space, c, init, gen), C=C, N=N,
                                          in_channels=in_channels, num_classes=num_classes)
        first = self.fair_cells()[0].edges[0]
        sizes = [sum(p.numel() for p in m.parameters()) for m in first]
        self._largest = (int(np.argmax(sizes)),) * len(space.edges)

    def config(self) -> dict:
        return {"C": self.C, "N": self.N, "di_init": self.di_init, "seed": self.seed}

    def largest(self):
        return self._largest

    def forward(self, x, arch=None, record=None):
        arch = self._largest if arch is None else arch
        x = self.net.stem(x)
        for cell in self.net.cells:
            x = cell(x, arch, record) if isinstance(cell, FairCell) else cell(x)
        return self.net.head(x)

    def fair_cells(self) -> list[FairCell]:
        return [c for c in self.net.cells if isinstance(c, FairCell)]


class FixedCell(nn.Module):
    """One fair cell run with a fixed genotype (a module of x alone, for Jacobian checks)."""

    def __init__(self, cell: FairCell, arch):
        super().__init__()
        self.cell, self.arch = cell, arch

    def forward(self, x):
        return self.cell(x, self.arch)

"""Two spaces written only here, through the public API, to show that a new space needs no change
outside its own file: a 3-node cell with 3 ops (27 cells) and a 2-stage chain of plain convs.

Neither is registered; each has a cost table and an accuracy function of its own
(`cell_problem`, `chain_problem`), so every registered method can be run on it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hwnas.core.capabilities import CellGraph, Enumerable, FeatureEncodable
from hwnas.search.constraints import resolve
from hwnas.search.spaces import ArchError, BlockSpec, SearchSpace
from hwnas.search.spaces.chain import ChainSpace, StageSpec
from torch import nn


# ---- a toy cell space ------------------------------------------------------------------------
class _Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out))


class _Cell(nn.Module):
    def __init__(self, space, ops, c: int):
        super().__init__()
        self.links = space.edges
        self.edges = nn.ModuleList(space.make_op(space.ops[o], c) for o in ops)

    def forward(self, x):
        nodes = [x, None, None]
        for j in (1, 2):
            nodes[j] = sum(self.edges[e](nodes[i]) for e, (to, i) in enumerate(self.links) if to == j)
        return nodes[2]


class _Skeleton(nn.Module):
    """stem, `stages` stages of N cells with a strided conv between, head."""

    def __init__(self, cell_factory, C: int, N: int, stages: int, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers, c = [], C
        for s in range(stages):
            if s:
                layers.append(_conv_bn(c, 2 * c, 3, 2))
                c *= 2
            layers += [cell_factory(c) for _ in range(N)]
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.head(x)


class ToyCellSpace(SearchSpace, Enumerable, CellGraph, FeatureEncodable):
    """Nodes 0 (input), 1, 2 (output); edges 1<-0, 2<-0, 2<-1; ops none, skip, conv 3x3."""

    name = "toy-cell"
    input_shape = (1, 8, 8)
    ops = ("none", "skip_connect", "nor_conv_3x3")
    edges = ((1, 0), (2, 0), (2, 1))
    C, N = 4, 1

    def size(self) -> int:
        return len(self.ops) ** len(self.edges)

    def validate(self, arch):
        if not isinstance(arch, tuple | list) or len(arch) != 3 or not all(
                isinstance(o, int | np.integer) and 0 <= o < 3 for o in arch):
            raise ArchError(f"toy-cell arch must be 3 op indices in 0..2, got {arch!r}")
        return tuple(int(o) for o in arch)

    def to_str(self, arch) -> str:
        return "-".join(self.ops[o] for o in self.validate(arch))

    def from_str(self, s: str):
        try:
            return self.validate(tuple(self.ops.index(p) for p in s.split("-")))
        except ValueError:
            raise ArchError(f"toy-cell arch string {s!r}: ops joined by '-' from {self.ops}") from None

    def iter_all(self):
        return iter(itertools.product(range(3), repeat=3))

    def to_index(self, arch) -> int:
        a = self.validate(arch)
        return a[0] * 9 + a[1] * 3 + a[2]

    def from_index(self, idx: int):
        return (idx // 9, idx // 3 % 3, idx % 3)

    def sample(self, rng):
        return tuple(int(o) for o in rng.integers(0, 3, 3))

    def mutate(self, arch, rng, p: float = 1 / 3):
        a = list(self.validate(arch))
        e = int(rng.integers(3))
        a[e] = int((a[e] + rng.integers(1, 3)) % 3)
        return tuple(a)

    def crossover(self, a, b, rng):
        take = rng.random(3) < 0.5
        return tuple(int(b[e] if take[e] else a[e]) for e in range(3))

    def encode(self, arch):
        x = np.zeros((3, 3), dtype=np.float32)
        x[np.arange(3), self.validate(arch)] = 1.0
        return x.ravel()

    def graph(self, arch):
        """Op-on-node: input, the 3 edge ops, output."""
        a = self.validate(arch)
        adj = np.zeros((5, 5), dtype=np.float32)
        feat = np.zeros((5, 2 + 3), dtype=np.float32)
        feat[0, 0] = feat[4, 1] = 1.0
        for e, (to, frm) in enumerate(self.edges):
            feat[e + 1, 2 + a[e]] = 1.0
            if frm == 0:
                adj[0, e + 1] = 1.0
            for f, (_, frm2) in enumerate(self.edges):
                if frm2 == to:
                    adj[e + 1, f + 1] = 1.0
            if to == 2:
                adj[e + 1, 4] = 1.0
        return adj, feat

    # FeatureEncodable: the encodings the predictors ask for, in a toy form of their own
    encodings = ("onehot", "struct", "ops", "cost", "graf", "graf-struct")

    def encode_as(self, archs, encoding: str) -> np.ndarray:
        def ops(a):  # op counts on live edges, plus the number of live edges
            live = self.live_edges(a)
            return [float(sum(live[e] and a[e] == o for e in range(3))) for o in (1, 2)] + [float(live.sum())]

        rows = {
            "onehot": lambda a: self.encode(a),
            "struct": lambda a: self.encode(self.representative(a)),
            "ops": ops,
            "cost": lambda a: [float(sum(o == 2 for o in a)), float(sum(o == 1 for o in a))],
            "graf": lambda a: ops(a) + [float(self.live_edges(a)[1]), float(self.live_edges(a)[0])],
            "graf-struct": lambda a: ops(self.representative(a)) + [float(self.representative(a)[1] != 0)],
        }
        if encoding not in rows:
            raise ValueError(f"toy-cell has no encoding {encoding!r}; it offers {', '.join(self.encodings)}")
        return np.asarray([rows[encoding](self.validate(a)) for a in archs], dtype=np.float32)

    # CellGraph
    def live_edges(self, arch):
        a = self.validate(arch)  # node 1 reaches the output only through edge 2<-1
        through_1 = a[0] != 0 and a[2] != 0
        return np.array([through_1, a[1] != 0, through_1])

    def canonical(self, arch) -> str:
        a = self.validate(arch)
        n1 = "#" if a[0] == 0 else ("0" if a[0] == 1 else "(0)@conv")
        terms = []
        for e, src in ((1, "0"), (2, n1)):
            if a[e] == 0 or src == "#":
                continue
            terms.append(src if a[e] == 1 else f"({src})@conv")
        return "+".join(sorted(terms)) if terms else "#"

    def representative(self, arch):
        first: dict[str, tuple] = {}
        for b in self.iter_all():
            first.setdefault(self.canonical(b), tuple(int(o) if live else 0 for o, live in zip(b, self.live_edges(b), strict=True)))
        return first[self.canonical(arch)]

    def make_op(self, name: str, channels: int):
        return {"none": _Zero, "skip_connect": nn.Identity}.get(name, lambda: _conv_bn(channels, channels, 3))()

    def cell_network(self, cell_factory, C=None, N=None, stages=3, in_channels=None, num_classes=None):
        return _Skeleton(cell_factory, C or self.C, N or self.N, stages, in_channels or self.input_shape[0],
                         num_classes or self.num_classes)

    # hardware tables: the whole cell is the measured unit
    def blocks(self, arch):
        return [BlockSpec(f"cell{self.to_index(arch)}", (self.C, 8, 8), {"ops": self.validate(arch)})]

    def fixed_blocks(self):
        return []

    def all_blocks(self):
        return (self.blocks(a)[0] for a in self.iter_all())

    def build_block(self, block):
        return _Cell(self, block.params["ops"], self.C)

    def build(self, arch, **kwargs):
        return self.cell_network(lambda c: _Cell(self, self.validate(arch), c))


# ---- a toy chain space -------------------------------------------------------------------------
class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU())
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class ToyChainSpace(ChainSpace):
    """Two stages (widths 8, 16; depth 1..2) of plain conv blocks, kernel 1 or 3."""

    name = "toy-chain"
    input_shape = (1, 8, 8)
    stem_channels = 8
    stages = (StageSpec(8, 1, 1, 2, ("k1_e1", "k3_e1")), StageSpec(16, 2, 1, 2, ("k1_e1", "k3_e1")))

    def block_spec(self, stage: int, first: bool, choice: int) -> BlockSpec:
        c_in, r_in, _ = self.stage_io()[stage]
        st = self.stages[stage]
        c_in, stride = (c_in, st.stride) if first else (st.width, 1)
        r = r_in if first else -(-r_in // st.stride)
        k = int(st.choices[choice][1])
        return BlockSpec(f"s{stage}:{'first' if first else 'next'}:k{k}:i{c_in}o{st.width}:{r}x{r}", (c_in, r, r),
                         {"kind": "conv", "c_in": c_in, "c_out": st.width, "kernel": k, "stride": stride})

    def fixed_blocks(self):
        c_last = self.stages[-1].width
        r = self.stage_io()[-1][2]
        return [BlockSpec("stem", self.input_shape, {"kind": "stem"}),
                BlockSpec("head", (c_last, r, r), {"kind": "head", "c_in": c_last})]

    def build_block(self, block):
        p = block.params
        if p["kind"] == "stem":
            return nn.Sequential(nn.Conv2d(self.input_shape[0], self.stem_channels, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(self.stem_channels), nn.ReLU())
        if p["kind"] == "head":
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(p["c_in"], self.num_classes))
        return _Block(p["c_in"], p["c_out"], p["kernel"], p["stride"])


# ---- problems: a cost table and an accuracy function per space ---------------------------------
def cell_problem(space: ToyCellSpace, folder):
    """(latency constraint at the median cell, accuracy function); conv costs 3, skip 1."""
    cost = np.array([0.0, 1.0, 3.0])
    archs = list(space.iter_all())
    lat = [1.0 + cost[list(a)].sum() for a in archs]
    path = folder / "toy_cell_lat.csv"
    pd.DataFrame({"arch_idx": range(len(archs)), "arch_str": [space.to_str(a) for a in archs],
                  "latency_ms": lat}).to_csv(path, index=False)
    bound = float(np.median(lat))
    gain = np.array([0.0, 2.0, 5.0])

    def accuracy(batch):
        return np.array([50.0 + gain[list(a)].sum() + (10.0 if space.live_edges(a).any() else 0.0) + 0.1 * space.to_index(a)
                         for a in batch])

    return resolve(space, [f"latency_ms<={bound}@table:{path}:latency_ms"]), accuracy


def chain_problem(space: ToyChainSpace, folder):
    """(latency constraint at the median of random archs, accuracy function); a block costs
    kernel^2 / 9, the stem and head 1 ms."""
    rows = [(b.key, "block", b.params["kernel"] ** 2 / 9) for b in space.all_blocks()]
    rows += [(b.key, "fixed", 1.0) for b in space.fixed_blocks()]
    path = folder / "toy_chain_lat.csv"
    pd.DataFrame(rows, columns=["block_key", "kind", "latency_norm_ms"]).to_csv(path, index=False)
    loose = resolve(space, [f"latency_ms<=1000@table:{path}"])[0]
    rng = np.random.default_rng(0)
    bound = float(np.median(loose.values([space.sample(rng) for _ in range(200)])))

    def accuracy(batch):
        return np.array([60.0 + sum(len(b) for b in a) + 0.5 * sum(c for b in a for c in b) for a in batch])

    return resolve(space, [f"latency_ms<={bound}@table:{path}"]), accuracy


"""NAS-Bench-201: a 4-node cell, 6 edges, 5 ops, 15,625 cells in the official index order.

The official order is the NB201 generator's: `CellStructure.gen_all` (edge 0 varies slowest)
shuffled by `random.seed(88); random.shuffle(...)`. Reproducing it here means `arch_idx` needs no
data file; `tests/spaces/test_nb201.py` checks it row by row against the shared benchmark table.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
from hwnas.core.capabilities import CellGraph, Enumerable

from .base import ArchError, BlockSpec, SearchSpace
from .encoders import EncodedByFamily
from .registry import register_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), arch-string order
N_EDGES = len(EDGES)
N_OPS = len(OPS)
SIZE = N_OPS**N_EDGES
_ARCH_STR: dict[tuple[int, ...], str] = {}  # valid cell -> its string (bounded by SIZE)
_STR_ARCH: dict[str, tuple[int, ...]] = {}  # string read -> its cell (searches read their history back)
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EDGE_RE = re.compile(r"^([a-z0-9_]+)~(\d)$")


@lru_cache(maxsize=1)
def _all_cells() -> tuple[tuple[int, ...], ...]:
    """Every cell in official `arch_idx` order (built once: searches and optima walk them often)."""
    o2g = _official_order()[0]
    return tuple(_from_gen_index(int(o2g[i])) for i in range(SIZE))


@lru_cache(maxsize=1)
def _official_order() -> tuple[np.ndarray, np.ndarray]:
    """(official idx -> generator idx, generator idx -> official idx)."""
    perm = list(range(SIZE))
    random.Random(88).shuffle(perm)  # random.shuffle depends only on the list's length
    official_to_gen = np.asarray(perm, dtype=np.int64)
    gen_to_official = np.empty_like(official_to_gen)
    gen_to_official[official_to_gen] = np.arange(SIZE)
    return official_to_gen, gen_to_official


def _gen_index(arch: tuple[int, ...]) -> int:
    idx = 0
    for op in arch:
        idx = idx * N_OPS + op
    return idx


def _from_gen_index(g: int) -> tuple[int, ...]:
    ops = []
    for _ in range(N_EDGES):
        g, r = divmod(g, N_OPS)
        ops.append(r)
    return tuple(reversed(ops))


class NB201Space(SearchSpace, Enumerable, CellGraph, EncodedByFamily):
    """Archs are 6-tuples of op indices into `OPS`, edge order as in the arch string."""

    ENCODER_FAMILY = "nb201"

    ops = OPS
    edges = EDGES

    def __init__(self, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10,
                 resolution: int = 32):
        self.name = "nb201"
        self.C, self.N = C, N
        self.input_shape = (in_channels, resolution, resolution)
        self.num_classes = num_classes

    # ---- identity -------------------------------------------------------------------
    def size(self) -> int:
        return SIZE

    def validate(self, arch) -> tuple[int, ...]:
        if not isinstance(arch, tuple | list) or len(arch) != N_EDGES:
            raise ArchError(f"nb201 arch must be 6 op indices, got {arch!r}")
        for e, op in enumerate(arch):
            if not isinstance(op, int | np.integer) or not 0 <= op < N_OPS:
                raise ArchError(f"nb201 edge {e} has op index {op!r}; expected 0..{N_OPS - 1}")
        return tuple(int(o) for o in arch)

    def to_str(self, arch) -> str:
        if type(arch) is tuple and all(type(o) is int for o in arch):
            s = _ARCH_STR.get(arch)  # a search keys every arch it draws: 15,625 strings at most
            if s is not None:
                return s
        a = self.validate(arch)
        names = [f"{OPS[a[e]]}~{EDGES[e][1]}" for e in range(N_EDGES)]
        s = "|" + "|+|".join(["|".join(names[0:1]), "|".join(names[1:3]), "|".join(names[3:6])]) + "|"
        _ARCH_STR[a] = s
        return s

    def from_str(self, s: str) -> tuple[int, ...]:
        if not isinstance(s, str):
            raise ArchError(f"nb201 arch string must be a str, got {type(s).__name__}")
        arch = _STR_ARCH.get(s)
        if arch is None:
            arch = self._parse(s)
            if len(_STR_ARCH) < 2 * SIZE:  # bounded: past it, odd spellings are parsed each time
                _STR_ARCH[s] = arch
        return arch

    def _parse(self, s: str) -> tuple[int, ...]:
        nodes = s.strip().split("+")
        if len(nodes) != 3:
            raise ArchError(
                f"nb201 arch string needs 3 nodes separated by '+', got {len(nodes)} in {s!r}"
            )
        ops: list[int] = []
        for j, node in enumerate(nodes, start=1):
            parts = [p for p in node.strip().strip("|").split("|")]
            if len(parts) != j:
                raise ArchError(f"nb201 node {j} needs {j} inputs, got {len(parts)} in {s!r}")
            for i, part in enumerate(parts):
                m = _EDGE_RE.match(part)
                if not m:
                    raise ArchError(f"nb201 edge {part!r} (node {j}) is not 'op~input' in {s!r}")
                op, src = m.group(1), int(m.group(2))
                if op not in _OP_INDEX:
                    raise ArchError(f"nb201 op {op!r} (node {j}) unknown; expected one of {OPS}")
                if src != i:
                    raise ArchError(f"nb201 edge {part!r} of node {j} must read node {i}")
                ops.append(_OP_INDEX[op])
        return tuple(ops)

    def to_index(self, arch) -> int:
        return int(_official_order()[1][_gen_index(self.validate(arch))])

    def from_index(self, idx: int) -> tuple[int, ...]:
        if not 0 <= int(idx) < SIZE:
            raise ArchError(f"nb201 arch_idx {idx} out of range 0..{SIZE - 1}")
        return _from_gen_index(int(_official_order()[0][int(idx)]))

    def iter_all(self) -> Iterator[tuple[int, ...]]:
        """All cells in official `arch_idx` order."""
        return iter(_all_cells())

    # ---- structure ------------------------------------------------------------------
    def swap_twins(self) -> list[tuple[int, int]]:
        """Pairs of `arch_idx` that run the very same ops on the same tensors (1,500 pairs).

        With edge 1->2 `none`, nodes 1 and 2 are interchangeable: swapping them (edges 1<-0 with
        2<-0, 3<-1 with 3<-2) relabels the graph without changing any op or shape. A benchmark
        table measures each twin separately, so their disagreement is its measurement noise.
        """
        pairs = []
        for a in self.iter_all():
            if a[2] == 0:
                b = (a[1], a[0], 0, a[3], a[5], a[4])
                i, j = self.to_index(a), self.to_index(b)
                if i < j:
                    pairs.append((i, j))
        return pairs

    def live_edges(self, arch) -> np.ndarray:
        """Boolean mask of edges on some input->output path of non-`none` ops."""
        a = self.validate(arch)
        fwd = {0}
        for e, (to, frm) in enumerate(EDGES):  # edges are topologically ordered by `to`
            if a[e] != 0 and frm in fwd:
                fwd.add(to)
        bwd = {3}
        for e in reversed(range(N_EDGES)):
            to, frm = EDGES[e]
            if a[e] != 0 and to in bwd:
                bwd.add(frm)
        return np.array(
            [a[e] != 0 and EDGES[e][1] in fwd and EDGES[e][0] in bwd for e in range(N_EDGES)]
        )

    def is_degenerate(self, arch) -> bool:
        """True when `none` ops cut the input from the output (accuracy is chance level)."""
        return not self.live_edges(arch).any()

    def canonical(self, arch) -> str:
        """Isomorphism-canonical expression of the cell's function.

        Like NB201's `to_unique_str(consider_zero=True)`, but zero terms are dropped from sums
        (x + 0 == x), so cells that compute the same function get the same string.
        """
        a = self.validate(arch)
        nodes = {0: "0"}
        for j in range(1, 4):
            terms = []
            for e, (to, i) in enumerate(EDGES):
                if to != j:
                    continue
                op, src = OPS[a[e]], nodes[i]
                if op == "none" or src == "#":
                    continue
                terms.append(src if op == "skip_connect" else f"({src})@{op}")
            nodes[j] = "+".join(sorted(terms)) if terms else "#"
        return nodes[3]

    def representative(self, arch) -> tuple[int, ...]:
        """The live-masked representative of the cell's isomorphism class (5,390 classes)."""
        from .encoders import nb201_representatives

        return nb201_representatives(type(self))[self.validate(arch)]

    # ---- sampling ------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(x) for x in rng.integers(0, N_OPS, size=N_EDGES))

    def sample_draws(self, k: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
        # one call draws the same bounded integers, in the same order, as k calls of `sample`
        # (numpy's Generator takes each from the bit generator in turn; a test checks it)
        return list(map(tuple, rng.integers(0, N_OPS, size=(k, N_EDGES)).tolist()))

    def mutate(self, arch, rng: np.random.Generator, p: float = 1 / 6) -> tuple[int, ...]:
        a = list(self.validate(arch))
        flips = rng.random(N_EDGES) < p
        if not flips.any():
            flips[rng.integers(N_EDGES)] = True
        for e in np.flatnonzero(flips):
            a[e] = int((a[e] + rng.integers(1, N_OPS)) % N_OPS)  # always a different op
        return tuple(a)

    def crossover(self, a, b, rng: np.random.Generator) -> tuple[int, ...]:
        a, b = self.validate(a), self.validate(b)
        take = rng.random(N_EDGES) < 0.5
        return tuple(int(b[e] if take[e] else a[e]) for e in range(N_EDGES))

    # ---- encodings -----------------------------------------------------------------
    def encode(self, arch) -> np.ndarray:
        a = self.validate(arch)
        x = np.zeros((N_EDGES, N_OPS), dtype=np.float32)
        x[np.arange(N_EDGES), a] = 1.0
        return x.ravel()

    def graph(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """Op-on-node graph (BRP-NAS style): input, the 6 edge ops, output; 8 nodes.

        Features: [is_input, is_output, one-hot op (5)].
        """
        a = self.validate(arch)
        n = N_EDGES + 2
        adj = np.zeros((n, n), dtype=np.float32)
        feat = np.zeros((n, 2 + N_OPS), dtype=np.float32)
        feat[0, 0] = 1.0
        feat[n - 1, 1] = 1.0
        for e, (to, frm) in enumerate(EDGES):
            feat[e + 1, 2 + a[e]] = 1.0
            if frm == 0:
                adj[0, e + 1] = 1.0
            for f, (_to2, frm2) in enumerate(EDGES):
                if frm2 == to:
                    adj[e + 1, f + 1] = 1.0
            if to == 3:
                adj[e + 1, n - 1] = 1.0
        return adj, feat

    # ---- hardware tables ------------------------------------------------------------
    def _resolutions(self) -> list[int]:
        r = self.input_shape[1]
        return [r, (r + 1) // 2, (r + 3) // 4]

    def _channels(self) -> tuple[int, int, int]:
        return (self.C, 2 * self.C, 4 * self.C)

    def _cell_block(self, arch, stage: int) -> BlockSpec:
        c, r = self._channels()[stage], self._resolutions()[stage]
        idx = self.to_index(arch)
        return BlockSpec(
            key=f"cell{idx}:C{c}:{r}x{r}",
            input_shape=(c, r, r),
            params={"kind": "cell", "arch_idx": idx, "ops": tuple(OPS[o] for o in arch), "channels": c},
        )

    def blocks(self, arch) -> list[BlockSpec]:
        a = self.validate(arch)
        return [self._cell_block(a, s) for s in range(3) for _ in range(self.N)]

    def cell_blocks(self, arch) -> list[BlockSpec]:
        """The three distinct cells of `arch` (one per stage), each used N times."""
        a = self.validate(arch)
        return [self._cell_block(a, s) for s in range(3)]

    def fixed_blocks(self) -> list[BlockSpec]:
        (c1, c2, c3), (r1, r2, r3) = self._channels(), self._resolutions()
        cin = self.input_shape[0]
        return [
            BlockSpec(f"stem:i{cin}o{c1}:{r1}x{r1}", (cin, r1, r1), {"kind": "stem", "c_in": cin, "c_out": c1}),
            BlockSpec(f"reduction:i{c1}o{c2}:{r1}x{r1}", (c1, r1, r1), {"kind": "reduction", "c_in": c1, "c_out": c2}),
            BlockSpec(f"reduction:i{c2}o{c3}:{r2}x{r2}", (c2, r2, r2), {"kind": "reduction", "c_in": c2, "c_out": c3}),
            BlockSpec(f"head:i{c3}o{self.num_classes}:{r3}x{r3}", (c3, r3, r3), {"kind": "head", "c_in": c3, "c_out": self.num_classes}),
        ]

    def all_blocks(self) -> Iterator[BlockSpec]:
        """Every cell at every stage: stage-major, then official arch_idx order."""
        for s in range(3):
            for arch in self.iter_all():
                yield self._cell_block(arch, s)

    def build_block(self, block: BlockSpec):
        from . import nb201_net as net

        p = block.params
        kind = p.get("kind")
        if kind == "cell":
            return net.InferCell(p["ops"], p["channels"])
        if kind == "stem":
            return net.Stem(p["c_in"], p["c_out"])
        if kind == "reduction":
            return net.ResNetBasicBlock(p["c_in"], p["c_out"], 2)
        if kind == "head":
            return net.Head(p["c_in"], p["c_out"])
        raise ArchError(f"nb201 has no block kind {kind!r} (key {block.key})")

    def build(self, arch, **kwargs):
        from . import nb201_net as net

        a = self.validate(arch)
        ops = tuple(OPS[o] for o in a)
        return net.NB201Network(
            lambda c: net.InferCell(ops, c),
            C=kwargs.get("C", self.C),
            N=kwargs.get("N", self.N),
            in_channels=kwargs.get("in_channels", self.input_shape[0]),
            num_classes=kwargs.get("num_classes", self.num_classes),
        )

    # ---- one-shot models (CellGraph) -------------------------------------------------
    def make_op(self, name: str, channels: int):
        from . import nb201_net as net

        return net.make_op(name, channels)

    def cell_network(self, cell_factory, C: int | None = None, N: int | None = None, stages: int = 3,
                     in_channels: int | None = None, num_classes: int | None = None):
        from . import nb201_net as net

        return net.NB201Network(cell_factory, C=self.C if C is None else C, N=self.N if N is None else N,
                                in_channels=self.input_shape[0] if in_channels is None else in_channels,
                                num_classes=self.num_classes if num_classes is None else num_classes, stages=stages)

    def describe(self) -> dict:
        d = super().describe()
        d.update(C=self.C, N=self.N, edges=N_EDGES, ops=list(OPS))
        return d


@register_space("nb201")
def nb201(**kwargs) -> NB201Space:
    return NB201Space(**kwargs)

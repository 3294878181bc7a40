"""Feature encodings owned by the spaces (`core.capabilities.FeatureEncodable.encode_as`).

Predictors ask a space for `space.encode_as(archs, name)` and know no space by name; the
spaces implement the names below here (NB201Space and ChainSpace delegate to this module).

- `onehot`: the space's own `encode` (what NASLib's baselines use).
- `struct` (structure-aware one-hot):
  * NB201: every cell is first mapped to the representative of its isomorphism class (cells that
    compute the same function share one encoding), edges dead behind `none` set to `none`, then
    one-hot + path encoding (the op sequence on each of the 4 input->output paths, BANANAS
    style) + counts of live ops + a degenerate flag.
  * chain spaces: one-hot + whole-network choice histogram + per-stage depth and choice
    histograms where stages have several blocks.
- `ops` (for cost): NB201 counts of each op over all 6 edges plus over live edges (dead edges
  still run, on zeros); chain spaces counts of each measured block key plus the choice histogram.
- `cost`: `ops` plus what the work looks like to hardware. NB201: per intermediate node, how
  many non-`none` edges feed it (raw and live) and the adds they need. Chain spaces: MACs,
  activation elements and conv/linear layers (search/spaces/complexity.py) summed per output
  width and in total, in units of the space's largest block.
- `graf`: neural graph features in the manner of GRAF (Kadlecova et al., ICML 2024), computed
  from the graph only (no image data):
  * NB201: op counts (live and raw), a degenerate flag and the number of live input->output
    paths; then for each of the 15 non-empty subsets S of the 4 real ops, on the graph of live
    edges whose op is in S: shortest and longest input->output path (0 when none), the number of
    such paths, the output node's in-degree, the input node's out-degree and the mean in- and
    out-degree of the two intermediate nodes; and per op, the number of live paths through it.
  * chain spaces: whole-network and per-width-group statistics of the blocks: depth (non-skip
    blocks), mean and max kernel, mean and max expansion, grouped-conv and skip counts, and
    MACs / activations (in units of the largest block), plus total depth and MACs.
- `graf-struct`: `graf` next to `struct` (trees get both the summary and the exact cell).
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from hwnas.core.capabilities import FeatureEncodable

NB201_ENCODINGS = ("onehot", "struct", "ops", "cost", "graf", "graf-struct")
CHAIN_ENCODINGS = ("onehot", "struct", "ops", "cost", "graf", "graf-struct")

# NB201 input->output paths as edge index sequences (edges in arch-string order:
# 0: 1<-0, 1: 2<-0, 2: 2<-1, 3: 3<-0, 4: 3<-1, 5: 3<-2).
NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def unknown(space, encoding: str, names: Sequence[str]) -> ValueError:
    return ValueError(f"unknown encoding {encoding!r} for space {space.name!r}; expected one of {', '.join(names)}")


# ---- NB201 --------------------------------------------------------------------------------
def nb201_encode(space, archs: Sequence, encoding: str) -> np.ndarray:
    """[n, f] float32: the whole space is 15,625 cells, so each is encoded once per process and
    every call is a row lookup (memory: 15,625 * f * 4 bytes per encoding used)."""
    if encoding not in NB201_ENCODINGS:
        raise unknown(space, encoding, NB201_ENCODINGS)
    m = _nb201_matrix(type(space), encoding)
    if not len(archs):
        return np.zeros((0, m.shape[1]), dtype=np.float32)
    a = np.asarray([space.validate(x) for x in archs], dtype=np.int64)
    return m[a @ (5 ** np.arange(5, -1, -1))]


@lru_cache(maxsize=16)
def _nb201_matrix(cls, encoding: str) -> np.ndarray:
    """[15625, f] encodings of every cell, row = generator index (base-5 digits of the ops)."""
    space = cls()
    cells = list(itertools.product(range(5), repeat=6))
    if encoding.startswith("graf"):
        m = _nb201_graf(space, np.asarray(cells))
        if encoding == "graf-struct":
            m = np.concatenate([m, _nb201_matrix(cls, "struct")], 1)
    else:
        fn = {"onehot": space.encode, "struct": lambda a: _nb201_struct(space, a),
              "ops": lambda a: _nb201_ops(space, a), "cost": lambda a: _nb201_cost(space, a)}[encoding]
        m = np.stack([fn(a) for a in cells]).astype(np.float32)
    m.setflags(write=False)
    return m


@lru_cache(maxsize=2)
def nb201_representatives(cls) -> dict[tuple[int, ...], tuple[int, ...]]:
    """arch -> live-masked representative of its isomorphism class (5,390 classes)."""
    space = cls()
    rep_of_class: dict[str, tuple[int, ...]] = {}
    for a in space.iter_all():
        live = space.live_edges(a)
        masked = tuple(int(o) if live[e] else 0 for e, o in enumerate(a))
        key = space.canonical(a)
        rep = rep_of_class.get(key)
        if rep is None or masked < rep:
            rep_of_class[key] = masked
    return {a: rep_of_class[space.canonical(a)] for a in space.iter_all()}


@lru_cache(maxsize=16384)
def _nb201_struct_cached(rep: tuple[int, ...]) -> np.ndarray:
    n_ops = 5
    onehot = np.zeros((6, n_ops), dtype=np.float32)
    onehot[np.arange(6), rep] = 1.0
    paths = []
    for path in NB201_PATHS:
        # one-hot over the sequences of the 4 non-`none` ops; all zero if the path is cut
        v = np.zeros(4 ** len(path), dtype=np.float32)
        if all(rep[e] != 0 for e in path):
            idx = 0
            for e in path:
                idx = idx * 4 + (rep[e] - 1)
            v[idx] = 1.0
        paths.append(v)
    counts = np.bincount(np.asarray(rep), minlength=n_ops).astype(np.float32)
    degenerate = np.float32(all(o == 0 for o in rep))
    out = np.concatenate([onehot.ravel(), *paths, counts, [degenerate]])
    out.setflags(write=False)
    return out


def _nb201_struct(space, arch) -> np.ndarray:
    return _nb201_struct_cached(space.representative(arch))


def _nb201_ops(space, arch) -> np.ndarray:
    a = np.asarray(space.validate(arch))
    live = space.live_edges(arch)
    return np.concatenate([np.bincount(a, minlength=5), np.bincount(a[live], minlength=5)]).astype(np.float32)


def _nb201_cost(space, arch) -> np.ndarray:
    arch = space.validate(arch)
    live = space.live_edges(arch)
    graph = []
    for node in (1, 2, 3):
        into = [e for e, (to, _) in enumerate(space.edges) if to == node]
        raw = sum(arch[e] != 0 for e in into)
        alive = sum(arch[e] != 0 and live[e] for e in into)
        graph += [raw, alive, max(raw - 1, 0), max(alive - 1, 0), float(raw == 0)]
    adds = [sum(graph[2::5]), sum(graph[3::5])]
    return np.concatenate([_nb201_ops(space, arch), np.asarray(graph + adds, dtype=np.float32)])


_OP_SUBSETS = [s for r in range(1, 5) for s in itertools.combinations((1, 2, 3, 4), r)]


def _op_counts(M: np.ndarray) -> np.ndarray:
    return np.stack([(M == op).sum(1) for op in (1, 2, 3, 4)], 1)


def _nb201_graf(space, archs: np.ndarray) -> np.ndarray:
    """[n, 119] graf features of the cells in `archs` ([n, 6] op indices), vectorised over cells."""
    A = np.asarray(archs, dtype=np.int64).reshape(-1, 6)
    live = np.stack([space.live_edges(tuple(int(o) for o in a)) for a in A])
    L = np.where(live, A, 0)  # dead edges count as absent
    # NB201's only input->output paths are NB201_PATHS; a subgraph keeps those whose edges it keeps
    lens = np.asarray([len(p) for p in NB201_PATHS], dtype=np.float64)
    alive = np.stack([(L[:, list(p)] != 0).all(1) for p in NB201_PATHS], 1)
    through = np.stack([sum(((L[:, list(p)] == op).any(1) & alive[:, i]) for i, p in enumerate(NB201_PATHS))
                        for op in (1, 2, 3, 4)], 1)
    feats = [_op_counts(L), _op_counts(A), (~live.any(1))[:, None], alive.sum(1)[:, None], through]
    into = {n: [e for e, (t, _) in enumerate(space.edges) if t == n] for n in range(4)}
    out_of = {n: [e for e, (_, f) in enumerate(space.edges) if f == n] for n in range(4)}
    for subset in _OP_SUBSETS:
        K = np.isin(L, subset)
        kept = np.stack([K[:, list(p)].all(1) for p in NB201_PATHS], 1) & alive
        n_kept = kept.sum(1)
        shortest = np.where(n_kept > 0, np.where(kept, lens, np.inf).min(1), 0.0)
        longest = np.where(kept, lens, 0.0).max(1)
        indeg = {n: K[:, into[n]].sum(1) for n in range(4)}
        outdeg = {n: K[:, out_of[n]].sum(1) for n in range(4)}
        feats.append(np.stack([shortest, longest, n_kept, indeg[3], outdeg[0],
                               (indeg[1] + indeg[2]) / 2, (outdeg[1] + outdeg[2]) / 2], 1))
    return np.concatenate([np.asarray(f, dtype=np.float32) for f in feats], 1)


# ---- chain spaces --------------------------------------------------------------------------
def chain_encode(space, archs: Sequence, encoding: str) -> np.ndarray:
    if encoding not in CHAIN_ENCODINGS:
        raise unknown(space, encoding, CHAIN_ENCODINGS)
    fn = {"onehot": space.encode, "struct": lambda a: _chain_struct(space, a),
          "ops": lambda a: _chain_ops(space, a), "cost": lambda a: _chain_cost(space, a),
          "graf": lambda a: _chain_graf(space, a),
          "graf-struct": lambda a: np.concatenate([_chain_graf(space, a), _chain_struct(space, a)])}[encoding]
    if not len(archs):
        return np.zeros((0, len(fn(space.sample(np.random.default_rng(0))))), dtype=np.float32)
    # rows are memoised per space object and encoding: a comparison re-encodes the same few
    # thousand archs in every fit and cross-validation fold (memory: archs x features x 4 bytes)
    memo = _ROWS.setdefault(space, {}).setdefault(encoding, {})
    rows = []
    for a in archs:
        a = space.validate(a)
        row = memo.get(a)
        if row is None:
            row = memo[a] = np.asarray(fn(a), dtype=np.float32)
        rows.append(row)
    return np.stack(rows)


_ROWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


_BLOCK_VOCAB: dict[str, dict[str, int]] = {}


def _chain_ops(space, a) -> np.ndarray:
    vocab = _BLOCK_VOCAB.get(space.name)
    if vocab is None:
        vocab = _BLOCK_VOCAB[space.name] = {b.key: i for i, b in enumerate(space.all_blocks())}
    counts = np.zeros(len(vocab), dtype=np.float32)
    for k in space.block_keys(a):
        counts[vocab[k]] += 1.0
    names = {n: i for i, n in enumerate(space.choice_names)}
    hist = np.zeros(len(names), dtype=np.float32)
    for blocks, st in zip(a, space.stages, strict=True):
        for c in blocks:
            hist[names[st.choices[c]]] += 1.0
    return np.concatenate([counts, hist])


def _chain_struct(space, a) -> np.ndarray:
    vocab = {n: i for i, n in enumerate(space.choice_names)}
    total = np.zeros(len(vocab), dtype=np.float32)
    extra: list = []
    for blocks, st in zip(a, space.stages, strict=True):
        for c in blocks:
            total[vocab[st.choices[c]]] += 1.0
        if st.min_depth < st.max_depth:  # stage summaries only where a stage has several blocks
            extra.append(np.float32(len(blocks)))
            extra.extend(np.bincount(np.asarray(blocks, dtype=int), minlength=len(st.choices)))
    return np.concatenate([space.encode(a), total, np.asarray(extra, dtype=np.float32)])


class _CostLayout:
    """Per space: a group row per output width, the scale (the space's largest block), and a
    memo of each (stage, first block?, choice) slot's group, scaled figures and shape."""

    def __init__(self, space):
        from .complexity import block_complexity

        self.space = weakref.proxy(space)
        specs = list(space.all_blocks())
        widths = sorted({s.params.get("c_out", -1) for s in specs})
        self.groups = {w: i for i, w in enumerate(widths)}
        figures = np.array([_complexity_row(block_complexity(space, s)) for s in specs])
        self.scale = np.maximum(figures.max(0), 1.0)
        self._slots: dict[tuple[int, bool, int], tuple[int, np.ndarray]] = {}

    def slot(self, stage: int, first: bool, choice: int) -> tuple[int, np.ndarray]:
        from .complexity import block_complexity

        key = (stage, first, choice)
        if key not in self._slots:
            spec = self.space.block_spec(stage, first, choice)
            figures = np.asarray(_complexity_row(block_complexity(self.space, spec))) / self.scale
            self._slots[key] = (self.groups[spec.params.get("c_out", -1)], figures)
        return self._slots[key]


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layout(space) -> _CostLayout:
    layout = _LAYOUTS.get(space)
    if layout is None:
        layout = _LAYOUTS[space] = _CostLayout(space)
    return layout


def _complexity_row(c) -> tuple[float, float, float]:
    return float(c.macs), float(c.activations), float(c.layers)


def _chain_cost(space, a) -> np.ndarray:
    layout = _layout(space)
    per_group = np.zeros((len(layout.groups) + 1, len(layout.scale)))
    for s, blocks in enumerate(a):
        for b, c in enumerate(blocks):
            group, figures = layout.slot(s, b == 0, c)
            per_group[group] += figures
            per_group[-1] += figures
    return np.concatenate([_chain_ops(space, a), per_group.ravel()])


_CHOICE_RE = re.compile(r"^k(\d+)_?e(\d+)(?:_g(\d+))?$")


@lru_cache(maxsize=256)
def parse_block_choice(name: str) -> tuple[int, int, int, bool]:
    """'k5_e1_g2' / 'k3e4' -> (kernel, expansion, groups, is_skip); 'skip' -> (0, 0, 0, True)."""
    if name == "skip":
        return 0, 0, 0, True
    m = _CHOICE_RE.match(name)
    if not m:
        raise ValueError(f"block choice {name!r} is not kK_eE[_gG] or skip; the graf encoding cannot read it")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 1), False


def _block_stats(rows: list[tuple[int, int, int, bool, float, float]]) -> list[float]:
    """depth, mean/max kernel, mean/max expansion, grouped count, skip count, MACs, activations."""
    real = [r for r in rows if not r[3]]
    ks = [r[0] for r in real] or [0]
    es = [r[1] for r in real] or [0]
    return [float(len(real)), float(np.mean(ks)), float(max(ks)), float(np.mean(es)), float(max(es)),
            float(sum(r[2] > 1 for r in real)), float(len(rows) - len(real)),
            float(sum(r[4] for r in rows)), float(sum(r[5] for r in rows))]


def _chain_graf(space, a) -> np.ndarray:
    layout = _layout(space)
    groups: list[list] = [[] for _ in layout.groups]
    every = []
    for s, (blocks, st) in enumerate(zip(a, space.stages, strict=True)):
        for b, c in enumerate(blocks):
            g, figures = layout.slot(s, b == 0, c)
            row = (*parse_block_choice(st.choices[c]), float(figures[0]), float(figures[1]))
            groups[g].append(row)
            every.append(row)
    feats = _block_stats(every)
    for rows in groups:
        feats += _block_stats(rows)
    return np.asarray(feats, dtype=np.float32)


# ---- the spaces' side ----------------------------------------------------------------------
_FAMILIES = {"nb201": (NB201_ENCODINGS, nb201_encode), "chain": (CHAIN_ENCODINGS, chain_encode)}


class EncodedByFamily(FeatureEncodable):
    """FeatureEncodable through one of this module's families: a space sets `ENCODER_FAMILY`."""

    ENCODER_FAMILY: str

    @property
    def encodings(self) -> tuple[str, ...]:
        return _FAMILIES[self.ENCODER_FAMILY][0]

    def encode_as(self, archs, encoding: str) -> np.ndarray:
        return _FAMILIES[self.ENCODER_FAMILY][1](self, archs, encoding)

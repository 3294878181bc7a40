"""Architecture encodings for predictors: plain one-hot, and encodings that know the structure.

`onehot` is the space's own `encode` (what NASLib's baselines use). `struct` adds what plain
one-hot hides:
- NB201: every cell is first mapped to the representative of its isomorphism class (cells that
  compute the same function, via `space.canonical`, share one encoding), edges that are dead
  behind `none` are set to `none`, then one-hot + path encoding (the op sequence on each of the
  4 input->output paths, BANANAS-style) + counts of live ops + a degenerate flag.
- chain spaces: one-hot + whole-network choice histogram + per-stage depth and choice histograms
  where stages have several blocks (order-free summaries that tree models and ridge cannot
  build from slot one-hots on their own).

`ops` is for cost: NB201 runs the ops on dead edges too (on zeros), so latency follows the raw
op counts, not the live-masked cell: counts of each op over all 6 edges plus counts over live
edges (10 numbers, far fewer parameters than one-hot, so 100 samples go further). Chain spaces:
counts of each measured block key (layers of the same shape and choice share a key, so they share
one cost) plus the whole-network choice histogram (a common per-choice cost that ridge shrinks
towards).

`cost` is `ops` plus what the work of an arch looks like to hardware:
- NB201: per intermediate node, how many non-`none` edges feed it (raw and live) and the adds
  they need; latency on phones and CPUs follows this graph, not only the op counts.
- chain spaces: MACs, activation elements and conv/linear layers (search/spaces/complexity.py,
  counted on the built blocks), summed per output width (one group per stage of the macro
  skeleton) and in total, each in units of the space's largest block.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

ENCODINGS = ("onehot", "struct", "ops", "cost")

# NB201 input->output paths as edge index sequences (edges in arch-string order:
# 0: 1<-0, 1: 2<-0, 2: 2<-1, 3: 3<-0, 4: 3<-1, 5: 3<-2).
NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def encode(space, archs: Sequence, encoding: str = "onehot") -> np.ndarray:
    """[n, f] float32 features of `archs` under `encoding` (memory: n * f * 4 bytes)."""
    fn = _encoder(space, encoding)
    if not len(archs):
        return np.zeros((0, encoding_size(space, encoding)), dtype=np.float32)
    if space.name == "nb201" and type(space).__name__ == "NB201Space":
        # the whole space is 15,625 cells: encode each once, then every call is a row lookup
        a = np.asarray([space.validate(x) for x in archs], dtype=np.int64)
        return _nb201_matrix(encoding)[a @ (5 ** np.arange(5, -1, -1))]
    return np.stack([fn(a) for a in archs]).astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def _nb201_matrix(encoding: str) -> np.ndarray:
    """[15625, f] encodings of every NB201 cell, row = generator index (base-5 digits of the ops)."""
    import itertools

    from search.spaces import create_space

    space = create_space("nb201")
    fn = _encoder(space, encoding)
    m = np.stack([fn(a) for a in itertools.product(range(5), repeat=6)]).astype(np.float32)
    m.setflags(write=False)
    return m


def encoding_size(space, encoding: str = "onehot") -> int:
    return int(_encoder(space, encoding)(space.sample(np.random.default_rng(0))).shape[0])


def _encoder(space, encoding: str) -> Callable:
    if encoding == "onehot":
        return space.encode
    if encoding == "ops" and space.name == "nb201":
        return lambda a: _nb201_ops(space, space.validate(a))
    if encoding == "ops" and hasattr(space, "stages"):
        return lambda a: _chain_ops(space, a)
    if encoding == "cost" and space.name == "nb201":
        return lambda a: _nb201_cost(space, space.validate(a))
    if encoding == "cost" and hasattr(space, "stages"):
        return lambda a: _chain_cost(space, a)
    if encoding in ("struct", "ops", "cost"):
        if space.name == "nb201":
            return lambda a: _nb201_struct(space, space.validate(a))
        if hasattr(space, "stages"):
            return lambda a: _chain_struct(space, a)
        raise ValueError(f"encoding {encoding!r} has no form for space {space.name!r}; use 'onehot'")
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


# ---- NB201 --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def nb201_representatives() -> dict[tuple[int, ...], tuple[int, ...]]:
    """arch -> live-masked representative of its isomorphism class (5,390 classes)."""
    from search.spaces import create_space

    space = create_space("nb201")
    rep_of_class: dict[str, tuple[int, ...]] = {}
    out: dict[tuple[int, ...], tuple[int, ...]] = {}
    for a in space.iter_all():
        live = space.live_edges(a)
        masked = tuple(int(o) if live[e] else 0 for e, o in enumerate(a))
        key = space.canonical(a)
        rep = rep_of_class.get(key)
        if rep is None or masked < rep:
            rep_of_class[key] = masked
    for a in space.iter_all():
        out[a] = rep_of_class[space.canonical(a)]
    return out


def nb201_representative(space, arch) -> tuple[int, ...]:
    return nb201_representatives()[space.validate(arch)]


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
    return _nb201_struct_cached(nb201_representative(space, arch))


def _nb201_ops(space, arch) -> np.ndarray:
    a = np.asarray(arch)
    live = space.live_edges(arch)
    return np.concatenate([np.bincount(a, minlength=5), np.bincount(a[live], minlength=5)]).astype(np.float32)


def _nb201_cost(space, arch) -> np.ndarray:
    from search.spaces.nb201 import EDGES

    live = space.live_edges(arch)
    graph = []
    for node in (1, 2, 3):
        into = [e for e, (to, _) in enumerate(EDGES) if to == node]
        raw = sum(arch[e] != 0 for e in into)
        alive = sum(arch[e] != 0 and live[e] for e in into)
        graph += [raw, alive, max(raw - 1, 0), max(alive - 1, 0), float(raw == 0)]
    adds = [sum(graph[2::5]), sum(graph[3::5])]
    return np.concatenate([_nb201_ops(space, arch), np.asarray(graph + adds, dtype=np.float32)])


# ---- chain spaces --------------------------------------------------------------------------
_BLOCK_VOCAB: dict[str, dict[str, int]] = {}


def _chain_ops(space, arch) -> np.ndarray:
    vocab = _BLOCK_VOCAB.get(space.name)
    if vocab is None:
        vocab = _BLOCK_VOCAB[space.name] = {b.key: i for i, b in enumerate(space.all_blocks())}
    a = space.validate(arch)
    counts = np.zeros(len(vocab), dtype=np.float32)
    for k in space.block_keys(a):
        counts[vocab[k]] += 1.0
    names = {n: i for i, n in enumerate(space.choice_names)}
    hist = np.zeros(len(names), dtype=np.float32)
    for blocks, st in zip(a, space.stages, strict=True):
        for c in blocks:
            hist[names[st.choices[c]]] += 1.0
    return np.concatenate([counts, hist])


def _chain_struct(space, arch) -> np.ndarray:
    a = space.validate(arch)
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
    memo of each (stage, first block?, choice) slot's group and scaled figures."""

    def __init__(self, space):
        from search.spaces.complexity import block_complexity

        self.space = weakref.proxy(space)
        specs = list(space.all_blocks())
        widths = sorted({s.params.get("c_out", -1) for s in specs})
        self.groups = {w: i for i, w in enumerate(widths)}
        figures = np.array([_complexity_row(block_complexity(space, s)) for s in specs])
        self.scale = np.maximum(figures.max(0), 1.0)
        self._slots: dict[tuple[int, bool, int], tuple[int, np.ndarray]] = {}

    def slot(self, stage: int, first: bool, choice: int) -> tuple[int, np.ndarray]:
        from search.spaces.complexity import block_complexity

        key = (stage, first, choice)
        if key not in self._slots:
            spec = self.space.block_spec(stage, first, choice)
            figures = np.asarray(_complexity_row(block_complexity(self.space, spec))) / self.scale
            self._slots[key] = (self.groups[spec.params.get("c_out", -1)], figures)
        return self._slots[key]


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _complexity_row(c) -> tuple[float, float, float]:
    return float(c.macs), float(c.activations), float(c.layers)


def _chain_cost(space, arch) -> np.ndarray:
    a = space.validate(arch)
    layout = _LAYOUTS.get(space)
    if layout is None:
        layout = _LAYOUTS[space] = _CostLayout(space)
    per_group = np.zeros((len(layout.groups) + 1, len(layout.scale)))
    for s, blocks in enumerate(a):
        for b, c in enumerate(blocks):
            group, figures = layout.slot(s, b == 0, c)
            per_group[group] += figures
            per_group[-1] += figures
    return np.concatenate([_chain_ops(space, a), per_group.ravel()])

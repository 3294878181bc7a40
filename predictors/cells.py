"""Every cell of an enumerable cell space, and the encodings the cell-space surrogates read.

A leaderboard runs thousands of searches in one worker process; each of them needs every cell,
its position, its isomorphism class and (for the surrogates) a structure-aware feature matrix
and graph tensors. Computing those per run costs more than the search itself, so they are built
on first use and kept here, keyed by the space's class and size (spaces are value objects). They
depend on the space alone, so the search layer (`search.methods.enumerated`) and the surrogates
(`predictors.bayes_linear.CellRidgePredictor`, `predictors.gcn.CellGCNPredictor`) share them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from hwnas.core.capabilities import CellGraph, is_enumerable

from .encodings import normalised_adjacency

_SPACE_CACHE: dict = {}


def space_key(space) -> tuple:
    """What identifies a space in the per-process caches (spaces are value objects)."""
    return (type(space).__module__, type(space).__qualname__, space.size(), getattr(space, "name", ""))


class Cells:
    """Every arch of an enumerable space with O(1) arch -> position look-ups."""

    def __init__(self, space):
        self.archs: list = list(space.iter_all())
        self.pos: dict = {a: i for i, a in enumerate(self.archs)}
        self.strs: list[str] | None = None
        self._space = space

    def __len__(self) -> int:
        return len(self.archs)

    def index(self, archs: Sequence) -> np.ndarray:
        return np.fromiter((self.pos[self._space.validate(a)] for a in archs), dtype=np.int64, count=len(archs))

    def to_str(self, i: int) -> str:
        if self.strs is None:
            self.strs = [self._space.to_str(a) for a in self.archs]
        return self.strs[i]


def cells(space) -> Cells | None:
    """The cached `Cells` of an enumerable space, or None when the space is too large to list."""
    if not is_enumerable(space):
        return None
    k = space_key(space)
    if k not in _SPACE_CACHE:
        _SPACE_CACHE[k] = {"cells": Cells(space)}
    return _SPACE_CACHE[k]["cells"]


def _cell_cache(space) -> dict:
    cells(space)
    return _SPACE_CACHE[space_key(space)]


def cached(space, key: str, build: Callable[[], object]):
    """`build()`, computed once per process and space and kept under `key` beside the cells."""
    d = _cell_cache(space)
    if key not in d:
        d[key] = build()
    return d[key]


def canonical_ids(space) -> np.ndarray:
    """[n] integer id of each cell's isomorphism class (equal for cells computing the same
    function, dead edges masked): `CellGraph.canonical`."""
    d = _cell_cache(space)
    if "canon" not in d:
        ids: dict[str, int] = {}
        d["canon"] = np.array([ids.setdefault(space.canonical(a), len(ids)) for a in cells(space).archs])
    return d["canon"]


def live_ops(space) -> np.ndarray:
    """[n, E] op index of each edge with dead edges (off every input->output path) set to op 0
    (`none`), taken from the first cell of each isomorphism class so isomorphic cells agree."""
    d = _cell_cache(space)
    if "live_ops" not in d:
        A = np.asarray(cells(space).archs, dtype=np.int64)
        live = np.array([space.live_edges(a) for a in cells(space).archs], dtype=bool)
        L = np.where(live, A, 0)
        d["live_ops"] = L[class_rep(space)]
    return d["live_ops"]


def class_rep(space) -> np.ndarray:
    """[n] index of the first cell (in enumeration order) of each cell's isomorphism class."""
    d = _cell_cache(space)
    if "rep" not in d:
        canon = canonical_ids(space)
        first = np.full(canon.max() + 1, -1)
        for i in range(len(canon) - 1, -1, -1):
            first[canon[i]] = i
        d["rep"] = first[canon]
    return d["rep"]


def struct_features(space) -> np.ndarray:
    """[n, f] structure-aware features of every cell (float64): for the isomorphism
    representative with dead edges masked, one-hot of each edge's non-`none` op, the product of
    every pair of edges' op one-hots (the pairwise terms: which ops meet on the same path), live
    op counts, and a degenerate flag (no live edge). Cells that compute the same function share
    one row."""
    if not isinstance(space, CellGraph):
        raise TypeError(f"struct features need a CellGraph space, not {type(space).__name__}")
    d = _cell_cache(space)
    if "struct" not in d:
        L = live_ops(space)
        n, E = L.shape
        K = int(L.max()) + 1 if L.size else 1
        K = max(K, len(getattr(space, "ops", range(K))))
        U = np.zeros((n, E, K - 1))
        rows = np.arange(n)
        for e in range(E):
            on = L[:, e] > 0
            U[rows[on], e, L[on, e] - 1] = 1.0
        pairs = [np.einsum("ni,nj->nij", U[:, e], U[:, f]).reshape(n, -1)
                 for e, f in itertools.combinations(range(E), 2)]
        counts = U.sum(1)
        degenerate = (L.sum(1) == 0).astype(float)[:, None]
        d["struct"] = np.hstack([U.reshape(n, -1), *pairs, counts, degenerate])
    return d["struct"]


def path_features(space) -> np.ndarray:
    """[n, f] struct features plus one indicator per op sequence of every input->output path of
    three or more edges (BANANAS's path encoding beyond the pairwise terms, which already hold
    the one- and two-edge paths): on NB201 the path 0->1->2->3, 4^3 = 64 columns."""
    d = _cell_cache(space)
    if "paths" not in d:
        L = live_ops(space)
        n, E = L.shape
        K = len(space.ops)
        cols = []
        for path in _long_paths(space.edges):
            code = np.zeros(n, dtype=np.int64)
            alive = np.ones(n, dtype=bool)
            for e in path:
                alive &= L[:, e] > 0
                code = code * (K - 1) + np.maximum(L[:, e] - 1, 0)
            P = np.zeros((n, (K - 1) ** len(path)))
            P[np.flatnonzero(alive), code[alive]] = 1.0
            cols.append(P)
        d["paths"] = np.hstack([struct_features(space), *cols])
    return d["paths"]


def _long_paths(edges) -> list[tuple[int, ...]]:
    """Edge-index sequences of the input->output paths with at least three edges."""
    src, dst = min(f for _, f in edges), max(t for t, _ in edges)
    out: list[tuple[int, ...]] = []

    def walk(node, path):
        if node == dst:
            if len(path) >= 3:
                out.append(tuple(path))
            return
        for e, (to, frm) in enumerate(edges):
            if frm == node:
                walk(to, path + [e])

    walk(src, [])
    return out


def additive_features(space) -> np.ndarray:
    """[n, E*K] one-hot of each edge's op (BINAS's additive NB201 form, no structure)."""
    d = _cell_cache(space)
    if "onehot" not in d:
        A = np.asarray(cells(space).archs, dtype=np.int64)
        n, E = A.shape
        K = len(getattr(space, "ops", range(int(A.max()) + 1)))
        X = np.zeros((n, E, K))
        X[np.arange(n)[:, None], np.arange(E)[None, :], A] = 1.0
        d["onehot"] = X.reshape(n, -1)
    return d["onehot"]


def cell_graphs(space) -> tuple[np.ndarray, np.ndarray]:
    """(Â [n, V, V], X [n, V, F]) float32 op-on-node graphs of every cell: node 0 the cell input,
    one node per edge, the last node the output. A node's features are [is input, is output,
    one-hot op, one-hot edge position]; the op is the live-masked isomorphism representative's
    (`live_ops`), and `none` / dead edge nodes keep only their self loop, so the graph is the
    data flow the cell really computes. Â = D^-1/2 (A + A^T + I) D^-1/2."""
    d = _cell_cache(space)
    if "graphs" not in d:
        L = live_ops(space)
        n, E = L.shape
        edges = space.edges  # (to, from) per edge; node ids 0..3 of the cell
        K = len(space.ops)
        V = E + 2
        X = np.zeros((n, V, 2 + K + E), dtype=np.float32)
        X[:, 0, 0] = 1.0
        X[:, V - 1, 1] = 1.0
        rows = np.arange(n)
        out_node = max(t for t, _ in edges)
        A = np.zeros((n, V, V), dtype=np.float32)
        for e, (to, frm) in enumerate(edges):
            X[rows, e + 1, 2 + L[:, e]] = 1.0
            X[:, e + 1, 2 + K + e] = 1.0
            on = (L[:, e] > 0).astype(np.float32)
            if frm == 0:
                A[:, 0, e + 1] = on
            for f, (_, frm2) in enumerate(edges):
                if frm2 == to:
                    A[:, e + 1, f + 1] = on * (L[:, f] > 0)
            if to == out_node:
                A[:, e + 1, V - 1] = on
        d["graphs"] = (normalised_adjacency(A), X)
    return d["graphs"]


def cell_features(space, features: str) -> np.ndarray:
    """[n, f] float64 feature matrix of every cell by name: `struct`, `struct-paths`, `additive`."""
    build = {"struct": struct_features, "struct-paths": path_features, "additive": additive_features}
    if features not in build:
        raise ValueError(f"unknown cell features {features!r}; expected one of {', '.join(build)}")
    return build[features](space)


def cell_positions(model, archs: Sequence) -> np.ndarray:
    """Positions in `cells(space).archs` of archs of `model.space_`, for the cell surrogates: a
    clear error when the space is not an enumerable cell graph."""
    space = model.space_
    cs = cells(space) if isinstance(space, CellGraph) else None
    if cs is None:
        raise ValueError(f"{model.name} needs an enumerable cell-graph space (every cell listed), not "
                         f"{space.name!r}; use a registered predictor (list_predictors()) on other spaces")
    return cs.index(archs)


def check_targets(model, idx, y) -> np.ndarray:
    """y as float64, checked against the cell positions it goes with (the `Predictor.fit` rules)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(idx) != len(y):
        raise ValueError(f"{model.name}: {len(idx)} cells but {len(y)} target values")
    if not np.isfinite(y).all():
        raise ValueError(f"{model.name}: target has NaN or infinite values; drop or fill those rows")
    return y


class CellSurrogate:
    """What the cell surrogates (`CellRidgePredictor`, `CellGCNPredictor`) share as `Predictor`s:
    archs are answered through their cell positions (`fit_cells`, `predict_cells`, which a search
    over the enumerated cells calls directly), and a surrogate refitted every round is not saved."""

    def _fit(self, archs, y, prior) -> None:
        self.fit_cells(cell_positions(self, archs), y)

    def _predict(self, archs) -> np.ndarray:
        return self.predict_cells(cell_positions(self, archs))

    def _state(self, folder):
        raise NotImplementedError(f"{self.name} is a search surrogate refitted every round; it is not saved")

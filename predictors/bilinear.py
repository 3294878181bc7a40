"""BINAS bilinear estimator (docs/methods.md section 1): one class for accuracy and for cost.

Chain spaces (stages s, block slots b = 0..max_depth-1, choices c, depths d):

    value = A0 + sum_{s,c} a[s,0,c] dA[s,0,c]
               + sum_{s,d} beta[s,d] ( dB[s,d] + sum_{b=1..d-1} sum_c a[s,b,c] dA[s,b,c] )

Fitted attributes (the search layer's MILP / Frank-Wolfe reads these):
- `A0_`  float, the constant (for cost: `T0_`, the fixed stem/head part).
- `dA_`  float64 [S, max_depth, max_choices]: block (s, b) with choice c; slot b is 0-based, so
  `dA_[s, 0]` is the always-present first block (docs/methods.md's b=1). Entries for choices a stage
  does not have are NaN. For cost, `t_` is the same array.
- `dB_`  float64 [S, max_depth + 1]: `dB_[s, d]` for depth d (index = the depth itself); NaN for
  depths outside the stage's range. The space's one-hot encoding is exactly this design (depth
  one-hot + slot one-hots, zero where absent), so least squares fits the same form.

NB201 (no depth variable): `value = A0 + sum_e dA[e, op_e] (+ sum_{e<f} dP[e,f,op_e,op_f])`;
`dA_` is [edges, ops] (NB201: [6, 5]; edge in arch-string order, op in `space.ops` order), `dP_` [E, E, K, K]
(upper triangle e < f used, zero elsewhere) when `pairwise=True`, and `dB_` is empty.

Two ways to get the coefficients:
- `fit(archs, y)`: least squares (ridge with a small, LOO-chosen penalty) on (arch, value) pairs.
- `fit_measured(space, evaluate, n_per_cell, rng)`: BINAS's measured coefficients, no
  regression: A0 = mean of uniform subnets; each coefficient = mean with that variable fixed,
  minus its reference. Common random numbers: every cell reuses the same uniform base subnets.
  For b >= 1 the reference is the mean at depth b+1 (A0 + dB), not A0: docs/methods.md's literal
  "minus A0" would count the depth effect twice once dA and dB are summed (a documented choice).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hwnas.core.capabilities import CellGraph

from .base import Predictor, register_predictor, resolve_space
from .encodings import representative


@register_predictor("bilinear")
@register_predictor("bilinear-struct", live_only=True)
class BilinearPredictor(Predictor):
    """BINAS estimator; `live_only` (NB201) reads each cell as its live-masked representative."""

    def __init__(self, space="nb201", seed: int = 0, pairwise: bool = True,
                 live_only: bool = False, alphas: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)):
        super().__init__(space, seed)
        self.pairwise, self.live_only, self.alphas = pairwise, live_only, alphas

    # ---- design matrix in the coefficient layout ------------------------------------------
    @property
    def _nb201(self) -> bool:
        return isinstance(self.space_, CellGraph)

    def _design(self, archs) -> np.ndarray:
        sp = self.space_
        if self._nb201:
            rows = []
            for a in archs:
                if self.live_only:
                    a = representative(sp, a)
                rows.append(a)
            E, K = len(sp.edges), len(sp.ops)
            A = np.asarray(rows, dtype=np.int64).reshape(-1, E)
            x = np.zeros((len(A), E, K))
            x[np.arange(len(A))[:, None], np.arange(E)[None, :], A] = 1.0
            feats = [x.reshape(len(A), E * K)]
            if self.pairwise:
                iu = np.triu_indices(E, 1)
                feats.append(np.einsum("nei,nfj->nefij", x, x)[:, iu[0], iu[1]].reshape(len(A), -1))
            return np.concatenate(feats, axis=1)
        return np.asarray([sp.encode(a) for a in archs], dtype=np.float64)

    def _fit(self, archs, y, prior) -> None:
        from sklearn.linear_model import RidgeCV

        X = self._design(archs)
        m = RidgeCV(alphas=list(self.alphas)).fit(X, y)
        self.alpha_ = float(m.alpha_)
        self._unpack(float(m.intercept_), m.coef_.astype(np.float64))
        self.mode_ = "least_squares"

    def _unpack(self, intercept: float, coef: np.ndarray) -> None:
        sp = self.space_
        if self._nb201:
            E, K = len(sp.edges), len(sp.ops)
            self.A0_ = intercept
            self.dA_ = coef[:E * K].reshape(E, K).copy()
            self.dB_ = np.zeros((0, 0))
            self.dP_ = np.zeros((E, E, K, K))
            if self.pairwise:
                iu = np.triu_indices(E, 1)
                self.dP_[iu] = coef[E * K:].reshape(len(iu[0]), K, K)
            return
        S = len(sp.stages)
        maxd = max(st.max_depth for st in sp.stages)
        maxc = max(len(st.choices) for st in sp.stages)
        dA = np.full((S, maxd, maxc), np.nan)
        dB = np.full((S, maxd + 1), np.nan)
        A0, i = intercept, 0
        for s, st in enumerate(sp.stages):
            if st.min_depth < st.max_depth:
                n = st.max_depth - st.min_depth + 1
                dB[s, st.min_depth:st.max_depth + 1] = coef[i:i + n]
                i += n
            else:
                dB[s, st.min_depth] = 0.0
            C = len(st.choices)
            block = coef[i:i + st.max_depth * C].reshape(st.max_depth, C)
            i += st.max_depth * C
            dA[s, :st.max_depth, :C] = block
        self.A0_, self.dA_, self.dB_ = A0, dA, dB

    @property
    def T0_(self) -> float:
        return self.A0_

    @property
    def t_(self) -> np.ndarray:
        return self.dA_

    # ---- prediction from the coefficients (what the search layer will optimise) -----------
    def _predict(self, archs) -> np.ndarray:
        if self._nb201:  # the design matrix times the flattened coefficients, vectorised
            coef = [self.dA_.ravel()]
            if self.pairwise:
                coef.append(self.dP_[np.triu_indices(self.dA_.shape[0], 1)].ravel())
            return self._design(archs) @ np.concatenate(coef) + self.A0_
        out = np.full(len(archs), self.A0_, dtype=np.float64)
        for i, a in enumerate(archs):
            for s, blocks in enumerate(a):
                out[i] += self.dB_[s, len(blocks)]
                out[i] += sum(self.dA_[s, b, c] for b, c in enumerate(blocks))
        return out

    # ---- BINAS measured coefficients --------------------------------------------------------
    def fit_measured(self, space, evaluate: Callable[[list], np.ndarray], n_per_cell: int = 32,
                     rng: np.random.Generator | int | None = None) -> BilinearPredictor:
        """Measure A0, dA, dB by fixing one variable at a time on uniform subnets (no regression).

        `evaluate(list_of_archs) -> array` is any accuracy (or cost) source: a supernet's
        `SubnetEvaluator`, a table lookup, a synthetic function. It is called once, on all
        `n_per_cell * (1 + number of cells)` subnets.
        """
        sp = resolve_space(space) if isinstance(space, str) else space
        if sp.name != self.space_.name:
            raise ValueError(f"bilinear was created for space {self.space_.name!r}, not {sp.name!r}")
        if n_per_cell < 1:
            raise ValueError(f"n_per_cell must be >= 1, got {n_per_cell}")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(self.seed if rng is None else rng)
        base = [sp.sample(rng) for _ in range(n_per_cell)]
        cells: list[tuple] = []  # (kind, index tuple, archs)
        if self._nb201:
            for e in range(len(sp.edges)):
                for o in range(len(sp.ops)):
                    cells.append(("A", (e, o), [tuple(o if k == e else x for k, x in enumerate(a)) for a in base]))
        else:
            for s, st in enumerate(sp.stages):
                for d in st.depths:
                    if st.min_depth < st.max_depth:
                        cells.append(("B", (s, d), [_with_depth(a, s, d, st, rng) for a in base]))
                for c in range(len(st.choices)):
                    cells.append(("A", (s, 0, c), [_with_block(a, s, 0, c) for a in base]))
                for b in range(1, st.max_depth):
                    if b + 1 < st.min_depth:
                        # always-present slot: fixed only, depth free
                        for c in range(len(st.choices)):
                            cells.append(("A", (s, b, c), [_with_block(a, s, b, c) for a in base]))
                        continue
                    for c in range(len(st.choices)):
                        cells.append(("A", (s, b, c), [
                            _with_block(_with_depth(a, s, b + 1, st, rng), s, b, c) for a in base]))
        flat = list(base) + [a for _, _, archs in cells for a in archs]
        vals = np.asarray(evaluate(flat), dtype=np.float64).ravel()
        if len(vals) != len(flat) or not np.isfinite(vals).all():
            raise ValueError(f"evaluate returned {len(vals)} values for {len(flat)} archs (or NaN); it must return one finite value per arch")
        A0 = float(vals[:n_per_cell].mean())
        means = vals[n_per_cell:].reshape(len(cells), n_per_cell).mean(axis=1)
        if self._nb201:
            E, K = len(sp.edges), len(sp.ops)
            dA = np.zeros((E, K))
            for (_, (e, o), _), m in zip(cells, means, strict=True):
                dA[e, o] = m - A0
            self.A0_, self.dA_, self.dB_, self.dP_ = A0, dA, np.zeros((0, 0)), np.zeros((E, E, K, K))
            self.pairwise, self.live_only = False, False
        else:
            S = len(sp.stages)
            maxd = max(st.max_depth for st in sp.stages)
            maxc = max(len(st.choices) for st in sp.stages)
            dA, dB = np.full((S, maxd, maxc), np.nan), np.full((S, maxd + 1), np.nan)
            for s, st in enumerate(sp.stages):
                if st.min_depth == st.max_depth:
                    dB[s, st.min_depth] = 0.0
            for (kind, idx, _), m in zip(cells, means, strict=True):
                if kind == "B":
                    dB[idx] = m - A0
            for (kind, idx, _), m in zip(cells, means, strict=True):
                if kind == "A":
                    s, b, c = idx
                    st = sp.stages[s]
                    ref = A0 if b == 0 or b + 1 < st.min_depth else A0 + dB[s, b + 1]
                    dA[s, b, c] = m - ref
            self.A0_, self.dA_, self.dB_ = A0, dA, dB
        self.mode_ = "measured"
        self.alpha_ = 0.0
        self.n_train_ = len(flat)
        return self

    # ---- persistence -----------------------------------------------------------------------
    def _state(self, folder):
        arrays = {"dA": self.dA_, "dB": self.dB_}
        if self._nb201:
            arrays["dP"] = self.dP_
        return {"A0": self.A0_, "mode": self.mode_, "alpha": self.alpha_}, arrays

    def _set_state(self, state, arrays, folder) -> None:
        self.A0_, self.mode_, self.alpha_ = float(state["A0"]), state["mode"], float(state["alpha"])
        self.dA_, self.dB_ = arrays["dA"], arrays["dB"]
        if "dP" in arrays:
            self.dP_ = arrays["dP"]


def _with_block(arch, s: int, b: int, c: int):
    stages = [list(x) for x in arch]
    stages[s][b] = c
    return tuple(tuple(x) for x in stages)


def _with_depth(arch, s: int, d: int, st, rng: np.random.Generator):
    stages = [list(x) for x in arch]
    blocks = stages[s]
    while len(blocks) < d:
        blocks.append(int(rng.integers(len(st.choices))))
    stages[s] = blocks[:d]
    return tuple(tuple(x) for x in stages)

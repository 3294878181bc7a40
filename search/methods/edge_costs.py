"""Additive per-(edge, op) costs of NB201 cells, fitted on a constraint's own cost model.

Differentiable methods (BayesNAS, MGAS) weigh each candidate op by what it costs on the target
device. An arch table gives only whole-cell costs, so each method needs the same thing: a least-
squares fit `cost ~ c0 + sum_e d[e, op_e]` over all 15,625 cells (look-ups are free), with
`d[e, none] = 0`. Rows a table lacks are left out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EdgeCostFit:
    c0: float  # fitted cost of the all-`none` cell
    d: np.ndarray  # [E, K] cost added by op k on edge e over `none`; d[:, 0] = 0
    values: np.ndarray  # the cost model's value on every cell (NaN where the table has no row)


def fit_edge_costs(space, constraint, archs: np.ndarray | None = None) -> EdgeCostFit:
    archs = np.asarray(list(space.iter_all()) if archs is None else archs, dtype=np.int64)
    n, E = archs.shape
    K = len(space.ops)
    X = np.zeros((n, 1 + E * (K - 1)))
    X[:, 0] = 1.0
    for e in range(E):
        on = archs[:, e] > 0
        X[np.flatnonzero(on), 1 + e * (K - 1) + archs[on, e] - 1] = 1.0
    y = _values(constraint, [tuple(int(o) for o in a) for a in archs])
    ok = np.isfinite(y)
    coef, *_ = np.linalg.lstsq(X[ok], y[ok], rcond=None)
    d = np.zeros((E, K))
    d[:, 1:] = coef[1:].reshape(E, K - 1)
    return EdgeCostFit(float(coef[0]), d, y)


def _values(constraint, archs: list) -> np.ndarray:
    try:
        return np.asarray(constraint.values(archs), dtype=np.float64)
    except LookupError:  # a table with missing rows: fit on the rows it has
        out = np.full(len(archs), np.nan)
        for i, a in enumerate(archs):
            try:
                out[i] = constraint.values([a])[0]
            except LookupError:
                pass
        return out

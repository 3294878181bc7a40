"""Every rank and error metric of a predictor, computed one way for all (NASLib's evaluator idea).

Correlations come from scipy.stats. `precision_at_top5pct`: of the best 5% of the test archs
(highest accuracy, or lowest cost), the fraction the predictor also puts in its best 5%.
`within_10pct` (cost only): fraction of predictions within 10% of the measured value.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

METRICS = ("kendall_tau", "spearman", "pearson", "mae", "rmse", "precision_at_top5pct", "within_10pct")


def precision_at_top(y_true, y_pred, frac: float = 0.05, higher_is_better: bool = True) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    k = max(1, int(math.ceil(frac * len(y_true))))
    sign = -1.0 if higher_is_better else 1.0
    true_top = set(np.argsort(sign * y_true, kind="stable")[:k].tolist())
    pred_top = set(np.argsort(sign * y_pred, kind="stable")[:k].tolist())
    return len(true_top & pred_top) / k


def evaluate_predictions(y_true, y_pred, cost: bool = False) -> dict[str, float]:
    """All metrics; `within_10pct` is NaN (empty in the CSV) for accuracy targets."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if y_true.shape != y_pred.shape or len(y_true) < 2:
        raise ValueError(f"need >= 2 matching values, got {y_true.shape} and {y_pred.shape}")
    const = np.ptp(y_pred) == 0
    err = y_pred - y_true
    out = {
        # a constant prediction ranks nothing: 0 correlation, not scipy's NaN + warning
        "kendall_tau": 0.0 if const else float(stats.kendalltau(y_true, y_pred).statistic),
        "spearman": 0.0 if const else float(stats.spearmanr(y_true, y_pred).statistic),
        "pearson": 0.0 if const else float(stats.pearsonr(y_true, y_pred).statistic),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "precision_at_top5pct": precision_at_top(y_true, y_pred, 0.05, higher_is_better=not cost),
        "within_10pct": float("nan"),
    }
    if cost:
        denom = np.abs(y_true)
        ok = denom > 0
        out["within_10pct"] = float(np.mean(np.abs(err[ok]) <= 0.1 * denom[ok])) if ok.any() else float("nan")
    return out

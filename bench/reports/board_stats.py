"""Paired significance on a leaderboard: each method against each baseline, cell by cell.

A board cell (device, bound, budget) holds one run per method and seed, and seed s of every
method sees the same problem, so methods are compared on paired seeds: the per-seed regret
differences d = regret(method) - regret(baseline) are tested by the Wilcoxon signed-rank test
(scipy.stats.wilcoxon, two-sided; zero differences dropped, Wilcoxon's own rule), and the p-values
of one comparison (method, baseline, budget) over the board's cells are Holm-corrected (a
family-wise error of 5% over the cells, not per cell). The effect is the mean difference in pp
with a 95% bootstrap interval (scipy.stats.bootstrap, BCa, 2,000 resamples, fixed seed).
A cell is "below" (the method's regret is lower) or "above" when its Holm-adjusted p < ALPHA, in
the direction of the larger signed-rank sum, else "tied".

Boards with many methods (the chain board) first test whether the methods differ at all, by the
Friedman test over blocks (a bound and a seed), then compare every pair over the same blocks
(`friedman_blocks`, `pairwise_blocks`: Wilcoxon signed-rank, Holm over all pairs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as `p`; NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def signed_rank(d) -> tuple[float, int]:
    """(two-sided Wilcoxon signed-rank p, direction: -1 when the negative differences carry the
    larger rank sum, +1 the positive, 0 when every difference is zero). p is NaN when all are zero."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    if len(nz) == 0:
        return float("nan"), 0
    r = stats.rankdata(np.abs(nz))
    plus, minus = r[nz > 0].sum(), r[nz < 0].sum()
    p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return p, (-1 if minus > plus else 1 if plus > minus else 0)


def mean_ci(d, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 95% bootstrap interval low, high) of the paired differences: BCa, or the percentile
    interval where BCa is undefined (a resample distribution with no spread)."""
    import warnings

    from scipy import stats

    d = np.asarray(d, dtype=float)
    mean = float(d.mean()) if len(d) else float("nan")
    if len(d) < 2 or np.all(d == d[0]):
        return mean, mean, mean
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=2000, method=method,
                                 random_state=np.random.default_rng(seed)).confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            break
    return mean, float(ci.low), float(ci.high)


def paired_table(df: pd.DataFrame, pairs: list[tuple[str, str]], cell=("device", "quantile"),
                 value: str = "regret") -> pd.DataFrame:
    """One row per (method, baseline, budget, cell): seeds paired, mean difference and CI, raw
    and Holm-adjusted p (over the cells of that method, baseline and budget), and the verdict."""
    rows = []
    for m, base in pairs:
        for b in sorted(df.budget.unique()):
            part = df[df.budget == b]
            for key, g in part.groupby(list(cell), sort=False):
                x = g[g.method == m].set_index("seed")[value]
                y = g[g.method == base].set_index("seed")[value]
                both = x.index.intersection(y.index)
                if not len(both):
                    continue
                d = (x.loc[both] - y.loc[both]).to_numpy(float)
                p, sign = signed_rank(d)
                mean, lo, hi = mean_ci(d)
                rows.append({"method": m, "baseline": base, "budget": int(b),
                             **dict(zip(cell, key if isinstance(key, tuple) else (key,), strict=True)),
                             "pairs": len(d), "mean_diff": mean, "ci_low": lo, "ci_high": hi,
                             "p": p, "direction": sign})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["method", "baseline", "budget"]).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy())
    sig = out.p_holm < ALPHA
    out["verdict"] = np.where(sig & (out.direction < 0), "below", np.where(sig & (out.direction > 0), "above", "tied"))
    return out


def describe(r) -> str:
    """'significantly below: -0.210 pp [-0.300, -0.120], p_Holm 0.001' (one table cell)."""
    word = {"below": "significantly below", "above": "significantly above", "tied": "tied"}[r.verdict]
    p = "n/a (all pairs equal)" if pd.isna(r.p_holm) else f"{r.p_holm:.2g}"
    return f"{word}: {r.mean_diff:+.3f} pp [{r.ci_low:+.3f}, {r.ci_high:+.3f}], p_Holm {p}"


def friedman_blocks(df: pd.DataFrame, value: str, block=("quantile", "seed")) -> dict:
    """Friedman test across methods (scipy.stats.friedmanchisquare) over the blocks (a bound and
    a seed: one problem every method saw) in which every method has `value`; blocks missing a
    method are left out and counted. {"p", "statistic", "blocks", "blocks_all", "methods"}; p is
    NaN with fewer than 3 methods or 2 complete blocks (the test needs them)."""
    from scipy import stats

    wide = df.pivot_table(index=list(block), columns="method", values=value, aggfunc="first")
    full = wide.dropna()
    out = {"p": float("nan"), "statistic": float("nan"), "blocks": len(full), "blocks_all": len(wide),
           "methods": list(wide.columns)}
    if wide.shape[1] >= 3 and len(full) >= 2:
        if np.ptp(full.to_numpy(float), axis=1).any():  # every block tied: no ranking to test
            r = stats.friedmanchisquare(*[full[c].to_numpy(float) for c in full.columns])
            out.update(p=float(r.pvalue), statistic=float(r.statistic))
    return out


def pairwise_blocks(df: pd.DataFrame, value: str, block=("quantile", "seed")) -> pd.DataFrame:
    """Every pair of methods, paired over the blocks where both have `value`: mean difference
    (first minus second, pp) with its 95% bootstrap interval, the Wilcoxon signed-rank p and its
    Holm adjustment over all pairs, and the verdict ("higher", "lower" or "tied" at ALPHA)."""
    wide = df.pivot_table(index=list(block), columns="method", values=value, aggfunc="first")
    methods = sorted(wide.columns)
    rows = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            both = wide[[a, b]].dropna()
            if both.empty:
                continue
            d = (both[a] - both[b]).to_numpy(float)
            p, sign = signed_rank(d)
            mean, lo, hi = mean_ci(d)
            rows.append({"method": a, "other": b, "pairs": len(d), "mean_diff": mean, "ci_low": lo, "ci_high": hi,
                         "p": p, "direction": sign})
    out = pd.DataFrame(rows, columns=["method", "other", "pairs", "mean_diff", "ci_low", "ci_high", "p", "direction"])
    out["p_holm"] = holm(out["p"].to_numpy()) if len(out) else []
    sig = out.p_holm < ALPHA
    out["verdict"] = np.where(sig & (out.direction > 0), "higher", np.where(sig & (out.direction < 0), "lower", "tied"))
    return out

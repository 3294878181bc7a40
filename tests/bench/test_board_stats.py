"""The boards' paired statistics against a hand computation (issue 21)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.reports import board_stats


def _exact_signed_rank_p(d) -> float:
    """Two-sided exact Wilcoxon p by enumerating every sign pattern (no ties, no zeros)."""
    d = np.asarray(d, float)
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    t = ranks[d > 0].sum()
    sums = np.array([sum(r for r, s in zip(ranks, signs, strict=True) if s)
                     for signs in itertools.product((0, 1), repeat=len(d))])
    return min(1.0, 2 * min((sums <= t).mean(), (sums >= t).mean()))


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (step-down)
    adj = board_stats.holm([0.01, 0.04, 0.03, np.nan])
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adj[3])
    assert board_stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_a_small_board_equals_the_hand_computation():
    # two cells, eight paired seeds; method "m" against baseline "r"
    base = np.array([1.0, 2.0, 1.5, 0.5, 3.0, 2.5, 1.0, 2.0])
    d1 = np.array([-0.9, -1.7, -0.2, -0.45, -2.6, 0.3, -0.8, -1.1])  # mostly lower: below
    d2 = np.array([0.1, -0.2, 0.35, -0.4, 0.5, -0.6, 0.7, -0.8])  # mixed: tied
    rows = []
    for cell, d in (("a", d1), ("b", d2)):
        for s in range(8):
            rows += [{"device": cell, "quantile": 0.25, "budget": 100, "seed": s, "method": "r", "regret": base[s]},
                     {"device": cell, "quantile": 0.25, "budget": 100, "seed": s, "method": "m",
                      "regret": base[s] + d[s]}]
    t = board_stats.paired_table(pd.DataFrame(rows), [("m", "r")]).set_index("device")
    p1, p2 = _exact_signed_rank_p(d1), _exact_signed_rank_p(d2)
    assert p1 == pytest.approx(2 * 3 / 256)  # T+ = 2 (the rank of +0.3): sign patterns {}, {1}, {2} reach <= 2
    assert t.loc["a", "p"] == pytest.approx(p1) and t.loc["b", "p"] == pytest.approx(p2)
    assert p1 < p2  # Holm over the two cells: the smaller p times 2, the larger times 1 (never below the first)
    assert t.loc["a", "p_holm"] == pytest.approx(2 * p1)
    assert t.loc["b", "p_holm"] == pytest.approx(max(2 * p1, p2))
    assert t.loc["a", "verdict"] == "below" and t.loc["b", "verdict"] == "tied"
    assert t.loc["a", "mean_diff"] == pytest.approx(d1.mean())
    assert t.loc["a", "ci_low"] < d1.mean() < t.loc["a", "ci_high"] < 0
    assert "significantly below" in board_stats.describe(t.loc["a"])


def test_equal_regrets_everywhere_are_tied_not_an_error():
    rows = [{"device": "a", "quantile": 0.5, "budget": 100, "seed": s, "method": m, "regret": 0.0}
            for s in range(5) for m in ("m", "r")]
    t = board_stats.paired_table(pd.DataFrame(rows), [("m", "r")])
    assert t.verdict.tolist() == ["tied"] and np.isnan(t.p_holm.iloc[0])

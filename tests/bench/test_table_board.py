"""The table board on a device-bench pool: exact regret from the pool's own columns, bounds judged
by measured latency, and a pool still being measured refused with counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.experiments import table_board
from hwnas.search.spaces import create_space


def _pool(path, n=60, seed=0, holes=0):
    sp = create_space("mbv3-fmnist")
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(sp.sample_many(4 * n, rng)))[:n]
    blocks = np.array([sum(len(s) for s in a) for a in archs], dtype=float)
    lat = 0.2 * blocks + rng.uniform(0, 0.3, n)
    val = 80 + 1.5 * blocks + rng.normal(0, 1.0, n)
    df = pd.DataFrame({"arch_str": [sp.to_str(a) for a in archs], "latency_ms": lat, "val_acc": val,
                       "test_acc": val + rng.normal(0, 0.5, n)})
    if holes:
        df.loc[: holes - 1, "test_acc"] = np.nan
    df.to_parquet(path)
    return df


def test_picks_are_pool_archs_scored_by_the_pool_with_exact_regret(tmp_path):
    pool = _pool(tmp_path / "cpu-t1.parquet")
    md = table_board.run(tmp_path / "out", pool=tmp_path / "cpu-t1.parquet", methods=["random", "evolution"],
                         seeds=3, budgets=(5, 10), quantile=(0.25, 0.5), progress=False)
    board = pd.read_csv(tmp_path / "out" / f"{table_board.TRACK}.csv")
    runs = board[board.budget > 0]
    assert len(runs) == 2 * 3 * 2 * 2 and set(runs.arch_str) <= set(pool.arch_str)
    by_arch = pool.set_index("arch_str")
    for c, g in runs.groupby("constraint"):
        bound = float(c.split("<=")[1].split("@")[0])
        assert bound == pytest.approx(float(f"{np.quantile(pool.latency_ms, g['quantile'].iloc[0]):.4g}"))
        feasible = pool[pool.latency_ms <= bound]
        assert (by_arch.loc[g.arch_str, "latency_ms"].to_numpy() <= bound).all() and g.feasible.all()
        np.testing.assert_allclose(g.true_accuracy, by_arch.loc[g.arch_str, "test_acc"])  # scored by test
        np.testing.assert_allclose(g.accuracy, by_arch.loc[g.arch_str, "val_acc"])  # read validation
        np.testing.assert_allclose(g.regret, feasible.test_acc.max() - g.true_accuracy)
        ref = board[(board.budget == 0) & (board.constraint == c)].iloc[0]  # the validation argmax, 0 queries
        assert ref.arch_str == feasible.loc[feasible.val_acc.idxmax(), "arch_str"]
    text = md.read_text()
    assert "measured end to end" in text and "60 archs of the pool" in text and "15,625" not in text
    assert table_board.report(tmp_path / "out", pool=tmp_path / "cpu-t1.parquet", seeds=3, budgets=(5, 10),
                              quantile=(0.25, 0.5)).read_text() == text  # rewritten from the runs alone


def test_a_pool_still_being_measured_is_refused_with_counts(tmp_path):
    _pool(tmp_path / "p.parquet", holes=7)
    with pytest.raises(ValueError, match=r"7 of 60 rows lack test_acc.*make device-bench"):
        table_board.table_track(tmp_path / "p.parquet")

"""The stand-alone reference set: stratified selection, resumable rows, protocol guard, report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.engine.standalone import (
    LatencyModel,
    StandaloneProtocol,
    _ends_first,
    select_reference,
    train_reference,
)
from hwnas.bench.reports.standalone_report import figures, pareto, per_arch
from hwnas.search.spaces import create_space

from tests.fakes import synthetic_block_table

TINY = StandaloneProtocol(data="digits", epochs=1, train_per_epoch=64, batch_size=32, seeds=(0, 1))


@pytest.fixture
def table(tmp_path):
    """A block table whose latency grows with kernel, expansion and width (synthetic, for selection)."""
    return synthetic_block_table(tmp_path / "cpu-t1.parquet")


def test_selection_spans_the_latency_range(table):
    sp = create_space("mbv3-fmnist")
    lat = LatencyModel(sp, table)
    archs = select_reference(sp, lat, n=12, seed=0, pool=2000)
    v = lat.latency_ms(archs)
    assert len(set(archs)) == 12 and np.all(np.diff(v) >= 0)
    assert v[0] == pytest.approx(lat.latency_ms([sp.smallest()])[0])  # the smallest is in the pool
    gaps = np.diff(v)
    assert gaps.max() < 0.35 * (v[-1] - v[0])  # no large hole: stratified, not clustered mid-range


def test_rows_resume_and_protocol_is_guarded(tmp_path, table):
    sp = create_space("mbv3-fmnist")
    archs = [sp.smallest(), sp.from_str("k5e3|k3e1-k3e3|k3e1")]
    out = tmp_path / "standalone.parquet"
    first = train_reference(sp, table, out, archs=archs, protocol=TINY, executor="serial", limit=3,
                            progress=False)
    assert len(first) == 3
    full = train_reference(sp, table, out, archs=archs, protocol=TINY, executor="serial", progress=False)
    assert len(full) == 4 and not full.duplicated(["arch_str", "seed"]).any()
    assert json.loads(out.with_suffix(".meta.json").read_text())["selection"] == "2 archs given by the caller"
    assert set(full.columns) >= {"arch_str", "seed", "val_acc", "test_acc", "latency_ms", "train_wall_s"}
    assert full["test_acc"].between(0, 100).all()
    merged = first.merge(full, on=["arch_str", "seed"], suffixes=("_a", "_b"))
    assert np.allclose(merged["val_acc_a"], merged["val_acc_b"])  # the first rows were kept, not retrained
    other = StandaloneProtocol(data="digits", epochs=2, train_per_epoch=64, batch_size=32)
    with pytest.raises(ValueError, match="protocol"):
        train_reference(sp, table, out, archs=archs, protocol=other, executor="serial", progress=False)


def _hand_rows() -> list[dict]:
    """10 archs, latency i, accuracy 80 + i, seeds differ by +-0.5; the supernet misplaces arch 3."""
    return [{"arch_str": f"a{i}", "seed": seed, "val_acc": 80 + i + d, "test_acc": 80 + i,
             "latency_ms": float(i), "latency_table_ms": float(i), "macs": i, "params": i,
             "supernet_val_acc": 70 + (i if i != 3 else 9.5)}
            for i in range(10) for seed, d in ((0, -0.5), (1, 0.5))]


def test_figures_by_hand():
    rows = _hand_rows()
    f = figures(pd.DataFrame(rows))
    assert f["decile_archs"] == 1
    assert f["decile_gap_pp"] == pytest.approx(9.0)
    assert f["seed_std_pp"] == pytest.approx(np.std([-0.5, 0.5], ddof=1))
    assert f["spread_std_pp"] == pytest.approx(np.std(np.arange(10), ddof=1))
    # one swap among 45 pairs... the supernet puts arch 3 between 9 and 8: 6 discordant pairs
    assert f["tau_supernet_vs_standalone"] == pytest.approx((39 - 6) / 45)
    assert f["tau_seed_vs_seed"] == pytest.approx(1.0)
    a = per_arch(pd.DataFrame(rows))
    assert list(pareto(a)["arch_str"]) == [f"a{i}" for i in range(10)]


def test_a_partial_set_says_so_in_its_report(tmp_path):
    from hwnas.bench.reports.standalone_report import write_report

    rows = _hand_rows()
    partial, _ = write_report(pd.DataFrame(rows), tmp_path / "p", {"complete": False}, "make standalone")
    full, _ = write_report(pd.DataFrame(rows), tmp_path / "f", {"complete": True}, "make standalone")
    assert "**Partial set (10 archs" in partial.read_text() and "Partial" not in full.read_text()


def test_runs_start_from_both_ends_of_the_latency_range():
    assert _ends_first([1, 2, 3, 4, 5]) == [1, 5, 2, 4, 3]
    assert _ends_first([1, 2, 3, 4]) == [1, 4, 2, 3]
    assert _ends_first([]) == []

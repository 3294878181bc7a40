"""`lut-sum` with a `hwnas profile` block table: the one look-up-table predictor (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.predictors.base import create_predictor, load_predictor
from hwnas.search.spaces import create_space


@pytest.fixture(scope="module")
def block_table(tmp_path_factory):
    sp = create_space("mbv3-fmnist")
    rng = np.random.default_rng(0)
    blocks = [b.key for b in sp.all_blocks()]
    fixed = [b.key for b in sp.fixed_blocks()]
    df = pd.DataFrame({"block_key": blocks + fixed, "kind": ["block"] * len(blocks) + ["fixed"] * len(fixed),
                       "latency_norm_ms": rng.uniform(0.1, 1.0, len(blocks) + len(fixed))})
    path = tmp_path_factory.mktemp("lut") / "cpu-t1.parquet"
    df.to_parquet(path)
    return sp, path, dict(zip(df.block_key, df.latency_norm_ms, strict=True)), fixed


def test_block_table_calibration_recovers_a_linear_truth_and_round_trips(block_table, tmp_path):
    import shutil

    sp, shared, cost, fixed = block_table
    path = shutil.copy(shared, tmp_path / "t.parquet")
    archs = sp.sample_many(40, np.random.default_rng(1))
    plain = np.array([sum(cost[k] for k in sp.block_keys(a)) + sum(cost[k] for k in fixed) for a in archs])
    truth = 0.8 * plain + 0.3 * np.array([len(a[1]) for a in archs]) + 0.1
    lut = create_predictor("lut-sum", space=sp, lut=str(path), column="latency_norm_ms").fit(archs[:25], truth[:25])
    np.testing.assert_allclose(lut.table_sum(archs), plain, rtol=1e-12)
    assert lut.coef_[0] == pytest.approx(0.8) and lut.intercept_ == pytest.approx(0.1, abs=1e-8)
    np.testing.assert_allclose(lut.predict(archs[25:]), truth[25:], rtol=1e-9)
    doc = lut.calibration_doc()
    assert doc["features"][0] == "table_sum" and doc["n_train"] == 25
    from hwnas.predictors.baselines import LUTSumPredictor

    again = LUTSumPredictor.from_calibration(sp, path, doc)  # what a stand-alone run reads back
    np.testing.assert_array_equal(again.predict(archs), lut.predict(archs))
    lut.save(tmp_path / "m")
    (tmp_path / "t.parquet").unlink()  # the saved predictor keeps the table: it no longer needs the file
    q = load_predictor(tmp_path / "m", space=sp)
    np.testing.assert_array_equal(q.predict(archs), lut.predict(archs))
    np.testing.assert_allclose(q.table_sum(archs), plain, rtol=1e-12)


def test_uncalibrated_block_table_predicts_the_plain_sum(block_table):
    sp, path, cost, fixed = block_table
    archs = sp.sample_many(5, np.random.default_rng(2))
    lut = create_predictor("lut-sum", space=sp, lut=str(path), column="latency_norm_ms", calibrate=False)
    lut.fit(archs, np.ones(5))
    np.testing.assert_allclose(lut.predict(archs), lut.table_sum(archs))

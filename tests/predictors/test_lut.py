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


def test_calibration_on_few_noisy_networks_never_predicts_a_cost_of_nothing(block_table, caplog):
    """8 networks and 7 free terms: the plain least-squares fit chased the noise and gave the
    smallest arch -0.001 ms (CI's profile-then-validate run). Every calibrated block and network
    now costs > 0: fewer terms are fitted when more would break that, and the run says so."""
    from hwnas.devices.lut import cheapest_arch

    sp, path, cost, fixed = block_table
    rng = np.random.default_rng(3)
    archs = sp.sample_many(8, rng)
    plain = np.array([sum(cost[k] for k in sp.block_keys(a)) + sum(cost[k] for k in fixed) for a in archs])
    y = 0.2 * plain * rng.lognormal(0.0, 0.5, len(archs))  # timings far noisier than the table
    with caplog.at_level("WARNING"):
        lut = create_predictor("lut-sum", space=sp, lut=str(path), column="latency_norm_ms").fit(archs, y)
    assert min(_calibrated_block_costs(lut, sp)) > 0 and lut.coef_[0] > 0
    assert lut.predict([cheapest_arch(lut.table_, sp), sp.smallest()]).min() > 0
    assert lut.predict(sp.sample_many(2000, np.random.default_rng(4))).min() > 0
    assert lut.columns_ == [0] and "too few or too noisy" in caplog.text  # what the fit fell back to, said


def _calibrated_block_costs(lut, sp):
    from hwnas.devices.lut import stage_block_values

    b = lut.coef_[lut.columns_.index(0)]
    terms = {j - 1: c for j, c in zip(lut.columns_, lut.coef_, strict=True) if j > 0}
    return [b * v + terms.get(s, 0.0) for s, vals in stage_block_values(lut.table_, sp).items() for v in vals]

"""`auto`: the choice is made by cross-validation on the training set only, and is kept."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.base import create_predictor, load_predictor
from predictors.transfer import PriorTables
from search.spaces import create_space


def _nb201(n: int, seed: int = 0):
    sp = create_space("nb201")
    return sp, sp.sample_many(n, np.random.default_rng(seed))


def test_auto_picks_the_candidate_that_cross_validates_best():
    """A target that is a sum of per-op costs: a linear model on op counts ranks it exactly,
    a kNN on one-hot cannot; auto must see that from its training set alone."""
    sp, archs = _nb201(160)
    per_op = np.array([0.0, 1.0, 3.0, 7.0, 2.0])
    y = np.array([per_op[list(a)].sum() for a in archs])
    p = create_predictor("auto", space=sp, candidates=("knn", "ridge-ops"), folds=4).fit(archs[:120], y[:120])
    assert p.chosen_ == "ridge-ops" and p.cv_scores_["ridge-ops"] > p.cv_scores_["knn"]
    np.testing.assert_allclose(p.predict(archs[120:]), y[120:], atol=1e-3)


def test_auto_never_sees_the_test_archs():
    """Fitting on the same training set gives the same choice whatever is predicted later."""
    sp, archs = _nb201(80)
    y = np.random.default_rng(1).normal(size=80)
    a = create_predictor("auto", space=sp, target="accuracy", folds=3, min_tree_archs=10_000).fit(archs[:40], y[:40])
    b = create_predictor("auto", space=sp, target="accuracy", folds=3, min_tree_archs=10_000).fit(archs[:40], y[:40])
    assert a.chosen_ == b.chosen_ and a.cv_scores_ == b.cv_scores_
    np.testing.assert_array_equal(a.predict(archs[40:]), b.predict(archs[40:]))


def test_auto_uses_the_prior_for_cost_and_saves_its_choice(tmp_path):
    """With another device's table as prior, `transfer` is a candidate; a target that is a
    monotone function of the prior device's latency is found through it from 10 samples."""
    sp = create_space("nb201")
    every = list(sp.iter_all())
    rng = np.random.default_rng(0)
    other = np.exp(rng.normal(size=len(every)))
    prior = PriorTables([sp.to_str(a) for a in every], ["other"], other[:, None])
    idx = rng.choice(len(every), 200, replace=False)
    archs, y = [every[i] for i in idx], 3.0 * other[idx] ** 1.5
    p = create_predictor("auto", space=sp, target="cost").fit(archs[:10], y[:10], prior=prior)
    assert p.chosen_ == "transfer" and "xgb-graf" not in p.cv_scores_  # no trees on 10 archs
    from scipy.stats import spearmanr

    assert spearmanr(p.predict(archs[10:]), y[10:]).statistic > 0.99
    p.save(tmp_path / "m")
    q = load_predictor(tmp_path / "m")
    assert q.chosen_ == "transfer" and q.cv_scores_ == p.cv_scores_
    np.testing.assert_array_equal(q.predict(archs[10:]), p.predict(archs[10:]))


def test_auto_target_lists_and_bad_target():
    sp, archs = _nb201(20)
    acc = create_predictor("auto", space=sp, target="accuracy").candidate_names(None, 1000)
    cost = create_predictor("auto", space=sp, target="cost").candidate_names(None, 1000)
    assert "xgb-graf" in acc and "ridge-cost" in cost and "transfer" not in cost  # no prior given
    with pytest.raises(ValueError, match="target must be"):
        create_predictor("auto", space=sp, target="speed").fit(archs, np.arange(20.0))


def test_predictors_take_a_space_object_and_save_its_name(tmp_path):
    sp, archs = _nb201(30)
    y = np.arange(30.0)
    p = create_predictor("ridge-graf", space=sp).fit(archs, y)
    p.save(tmp_path / "m")
    assert '"space": "nb201"' in (tmp_path / "m" / "predictor.json").read_text()
    np.testing.assert_array_equal(load_predictor(tmp_path / "m", space=sp).predict(archs), p.predict(archs))
    with pytest.raises(ValueError, match="saved for space 'nb201'"):
        load_predictor(tmp_path / "m", space=create_space("fbnet"))

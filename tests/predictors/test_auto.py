"""`auto`: the choice is made by cross-validation on the training set only, and is kept."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.base import create_predictor, load_predictor
from hwnas.predictors.transfer import PriorTables
from hwnas.search.spaces import create_space


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
    kw = dict(space=sp, target="accuracy", candidates=("ridge-graf", "knn-graf"), folds=3)
    a = create_predictor("auto", **kw).fit(archs[:40], y[:40])
    b = create_predictor("auto", **kw).fit(archs[:40], y[:40])
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


def _prior_setting(n_train: int = 10, seed: int = 0):
    """Every NB201 cell, two other devices as prior, a target device between them."""
    sp = create_space("nb201")
    every = list(sp.iter_all())
    rng = np.random.default_rng(seed)
    ops = np.array([[list(a).count(o) for o in range(5)] for a in every], dtype=float)
    a_dev = np.exp(ops @ np.array([0.0, 0.1, 0.5, 0.9, 0.3]))
    b_dev = np.exp(ops @ np.array([0.0, 0.3, 0.2, 0.4, 0.1]) + 0.05 * rng.normal(size=len(every)))
    prior = PriorTables([sp.to_str(a) for a in every], ["a", "b"], np.column_stack([a_dev, b_dev]))
    y_all = 0.7 * a_dev + 0.3 * b_dev * (1 + 0.05 * rng.normal(size=len(every)))
    idx = rng.permutation(len(every))
    tr, te = idx[:n_train], idx[n_train:n_train + 2000]
    return sp, prior, [every[i] for i in tr], y_all[tr], [every[i] for i in te], y_all[te]


def test_auto_averages_on_a_few_archs_with_weights_from_loo_spearman(tmp_path):
    """Below min_tree_archs: leave-one-out, every small-sample candidate kept with weight
    max(0, LOO Spearman) ** 4 (normalised); the prediction is the weighted sum of the members'."""
    from hwnas.predictors.auto import SMALL_PRIOR_CANDIDATES

    sp, prior, archs, y, test, y_test = _prior_setting()
    p = create_predictor("auto", space=sp, target="cost").fit(archs, y, prior=prior)
    assert set(p.cv_spearman_) == set(SMALL_PRIOR_CANDIDATES) == set(p.cv_scores_)
    # two prior devices of different chips: each is the other's target in the prior-side estimate
    assert set(p.prior_scores_) == set(SMALL_PRIOR_CANDIDATES)
    lam = 10 / (10 + p.prior_strength)
    raw = {k: max(lam * v + (1 - lam) * p.prior_scores_[k], 0.0) ** 4 for k, v in p.cv_spearman_.items()}
    expect = {k: v / sum(raw.values()) for k, v in raw.items() if v > 0}
    assert p.weights_.keys() == expect.keys()
    assert all(abs(p.weights_[k] - expect[k]) < 1e-12 for k in expect)
    assert p.chosen_ == max(p.weights_, key=p.weights_.get)
    members = sum(w * p.models_[k].predict(test) for k, w in p.weights_.items())
    np.testing.assert_allclose(p.predict(test), members, rtol=1e-12)
    from scipy.stats import spearmanr

    assert spearmanr(p.predict(test), y_test).statistic > 0.9
    p.save(tmp_path / "m")
    q = load_predictor(tmp_path / "m")
    assert q.weights_ == p.weights_ and q.cv_spearman_ == p.cv_spearman_ and q.chosen_ == p.chosen_
    assert q.prior_scores_ == p.prior_scores_
    np.testing.assert_array_equal(q.predict(test), p.predict(test))


def test_auto_weight_power_none_picks_one_and_large_samples_pick_one():
    sp, prior, archs, y, test, _ = _prior_setting(n_train=60)
    big = create_predictor("auto", space=sp, target="cost", candidates=("transfer", "transfer-nearest", "ridge-cost"))
    big.fit(archs, y, prior=prior)
    assert list(big.weights_.values()) == [1.0] and big.cv_spearman_ == {}
    small = create_predictor("auto", space=sp, target="cost", weight_power=None).fit(archs[:10], y[:10], prior=prior)
    assert list(small.weights_) == [small.chosen_] and small.chosen_ == max(
        small.cv_scores_, key=lambda k: (small.cv_scores_[k], -list(small.cv_scores_).index(k)))
    np.testing.assert_array_equal(small.predict(test), small.model_.predict(test))


def test_transfer_nearest_takes_the_prior_device_that_ranks_alike(tmp_path):
    sp, prior, archs, y, test, _ = _prior_setting(n_train=12)
    p = create_predictor("transfer-nearest", space=sp).fit(archs, y, prior=prior)
    assert p.column_ == "a" and np.count_nonzero(p.coef_) == 1
    p.save(tmp_path / "m")
    q = load_predictor(tmp_path / "m")
    assert q.column_ == "a"
    np.testing.assert_array_equal(q.predict(test), p.predict(test))


@pytest.mark.parametrize("name", sorted({*__import__("hwnas.predictors.auto", fromlist=["x"]).ACCURACY_CANDIDATES,
                                         *__import__("hwnas.predictors.auto", fromlist=["x"]).COST_CANDIDATES}))
def test_auto_round_trips_with_each_of_its_candidates(name, tmp_path):
    """Whatever auto picks (new *-graf and prior-based predictors included) saves and loads."""
    sp, prior, archs, y, test, _ = _prior_setting(n_train=12)
    p = create_predictor("auto", space=sp, candidates=(name,), folds=3).fit(archs, y, prior=prior)
    assert p.chosen_ == name and list(p.weights_) == [name]
    p.save(tmp_path / "m")
    np.testing.assert_array_equal(load_predictor(tmp_path / "m").predict(test), p.predict(test))


def test_prior_side_estimate_is_cached_and_follows_the_same_chip_rule(monkeypatch):
    """The prior-side estimate is computed once per tables, size and candidates (not per fit);
    a prior device's other batch sizes are never its prior there (same chip, near copies)."""
    from hwnas.predictors import auto as auto_mod

    sp, prior, archs, y, test, _ = _prior_setting()
    same_chip = PriorTables(prior.arch_strs, ["t:gpu_1", "t:gpu_32"], prior.values)
    p = create_predictor("auto", space=sp, target="cost")
    assert p.prior_protocol_scores(same_chip, 10, ["transfer", "ridge-cost"]) == {}
    fits = []
    real = auto_mod.AutoPredictor._make
    monkeypatch.setattr(auto_mod.AutoPredictor, "_make", lambda self, nm: fits.append(nm) or real(self, nm))
    first = p.prior_protocol_scores(prior, 10, ["transfer", "ridge-cost"])
    n_first = len(fits)
    assert set(first) == {"transfer", "ridge-cost"} and n_first == 2 * 2  # 2 pseudo-targets x 2 candidates
    assert p.prior_protocol_scores(prior, 10, ["transfer", "ridge-cost"]) == first and len(fits) == n_first
    create_predictor("auto", space=sp, target="cost", seed=4).fit(archs, y, prior=prior)
    again = len(fits)
    create_predictor("auto", space=sp, target="cost", seed=5).fit(archs, y, prior=prior)
    assert len(fits) - again < again - n_first  # the second fit reused the prior-side estimate


def test_prior_strength_zero_weighs_by_loo_only():
    sp, prior, archs, y, test, _ = _prior_setting()
    p = create_predictor("auto", space=sp, target="cost", prior_strength=0).fit(archs, y, prior=prior)
    assert p.prior_scores_ == {}
    raw = {k: max(v, 0.0) ** 4 for k, v in p.cv_spearman_.items()}
    assert all(abs(p.weights_[k] - raw[k] / sum(raw.values())) < 1e-12 for k in p.weights_)


def test_meta_gp_learns_the_device_population_from_the_prior(tmp_path):
    """Prior devices whose costs share one per-op pattern (plus device-specific scaling): from 4
    samples of a new device of that population, meta-gp ranks far better than a cost ridge on
    the same samples, and much better than itself without the prior."""
    from scipy.stats import spearmanr

    sp = create_space("nb201")
    every = list(sp.iter_all())
    rng = np.random.default_rng(3)
    ops = np.array([[list(a).count(o) for o in range(5)] for a in every], dtype=float)
    base = np.array([0.0, 0.2, 1.0, 1.6, 0.5])
    devices = [1.0 + ops @ (base * rng.uniform(0.8, 1.2, 5)) for _ in range(6)]
    prior = PriorTables([sp.to_str(a) for a in every], [f"d{i}" for i in range(5)], np.column_stack(devices[:5]))
    idx = rng.permutation(len(every))
    tr, te = idx[:4], idx[4:3004]
    y = devices[5] * (1 + 0.01 * rng.normal(size=len(every)))
    X, Xt = [every[i] for i in tr], [every[i] for i in te]
    meta = create_predictor("meta-gp", space=sp).fit(X, y[tr], prior=prior)
    plain = create_predictor("meta-gp", space=sp).fit(X, y[tr])
    ridge = create_predictor("ridge-cost", space=sp).fit(X, y[tr])
    rho = {n: spearmanr(m.predict(Xt), y[te]).statistic for n, m in (("meta", meta), ("plain", plain), ("ridge", ridge))}
    assert rho["meta"] > 0.95 and rho["meta"] > rho["ridge"] + 0.1 and rho["meta"] > rho["plain"] + 0.1
    assert meta.mode_ == "prior" and plain.mode_ == "no-prior"
    meta.save(tmp_path / "m")
    np.testing.assert_array_equal(load_predictor(tmp_path / "m").predict(Xt), meta.predict(Xt))

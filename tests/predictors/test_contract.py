"""One contract every registered predictor must pass (a new predictor is tested for free)."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.base import NotFittedError, create_predictor, list_predictors, load_predictor
from hwnas.search.spaces import create_space

PREDICTORS = list_predictors()
FAST = {"gcn": dict(epochs=5), "gcn-struct": dict(epochs=5), "mlp": dict(max_iter=20), "mlp-graf": dict(max_iter=20),
        "xgb": dict(n_estimators=30), "xgb-struct": dict(n_estimators=30), "xgb-graf": dict(n_estimators=30),
        "xgb-graf-struct": dict(n_estimators=30), "rf": dict(n_estimators=20), "rf-graf": dict(n_estimators=20),
        "auto": dict(folds=3)}


def _data(space_name: str, n: int = 60, seed: int = 0):
    space = create_space(space_name)
    archs = space.sample_many(n, np.random.default_rng(seed))
    X = space.encode_many(archs)
    w = np.random.default_rng(1).normal(size=X.shape[1])
    y = 50.0 + X @ w + 0.1 * np.random.default_rng(2).normal(size=n)
    return archs, y


def make(name: str, space: str = "nb201", seed: int = 0):
    return create_predictor(name, space=space, seed=seed, **FAST.get(name, {}))


def test_registry_has_the_issue_predictors():
    assert {"bilinear", "gcn", "xgb", "rf", "mlp", "ridge", "knn", "lut-sum", "xgb-struct"} <= set(PREDICTORS)
    assert {"auto", "xgb-graf", "rf-graf", "ridge-graf", "xgb-graf-struct", "transfer-nearest", "meta-gp"} <= set(PREDICTORS)


def test_registry_metadata_filters_by_target():
    from hwnas.predictors.base import predictor_meta

    cost_only = set(list_predictors(targets="cost")) - set(list_predictors(targets="accuracy"))
    assert {"lut-sum", "transfer"} <= cost_only and "auto" not in cost_only
    assert "xgb-graf" in list_predictors("*-graf", targets="accuracy")
    assert set(list_predictors(uses_prior=True)) == {"auto", "transfer", "transfer-nearest", "meta-gp"}
    assert predictor_meta("rf-graf")["encoding"] == "graf"


def test_unknown_predictor_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*xgb"):
        create_predictor("xgboost")


@pytest.mark.parametrize("name", PREDICTORS)
@pytest.mark.parametrize("space", ["nb201", "fbnet", "mbv3-fmnist"])
def test_fit_returns_self_and_predict_shape(name, space):
    archs, y = _data(space)
    p = make(name, space)
    assert p.fit(archs[:40], y[:40]) is p
    pred = p.predict(archs[40:])
    assert pred.shape == (20,) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert p.n_train_ == 40


@pytest.mark.parametrize("name", PREDICTORS)
def test_unfitted_predict_raises(name):
    archs, _ = _data("nb201", 5)
    with pytest.raises(NotFittedError, match="not fitted"):
        make(name).predict(archs)


@pytest.mark.parametrize("name", PREDICTORS)
def test_save_load_round_trip_is_identical(name, tmp_path):
    archs, y = _data("nb201")
    p = make(name).fit(archs[:40], y[:40])
    p.save(tmp_path / "m")
    q = load_predictor(tmp_path / "m")
    assert type(q) is type(p) and q.get_params() == p.get_params()
    np.testing.assert_array_equal(q.predict(archs), p.predict(archs))
    meta = (tmp_path / "m" / "predictor.json").read_text()
    assert '"numpy"' in meta and f'"predictor": "{name}"' in meta  # library versions recorded


@pytest.mark.parametrize("name", PREDICTORS)
def test_same_seed_same_predictions(name):
    archs, y = _data("nb201")
    a = make(name, seed=3).fit(archs[:40], y[:40]).predict(archs[40:])
    b = make(name, seed=3).fit(archs[:40], y[:40]).predict(archs[40:])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", PREDICTORS)
def test_nan_target_is_a_clear_error(name):
    archs, y = _data("nb201", 10)
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(name).fit(archs, y)


@pytest.mark.parametrize("name", PREDICTORS)
def test_learns_an_additive_signal(name):
    """Every predictor must rank a noiseless additive target well on held-out archs.

    The target is a cost per op, the same on every edge: what every encoding can express
    (count encodings cannot express a cost that differs by edge position).
    """
    from scipy.stats import spearmanr

    space = create_space("nb201")
    archs = space.sample_many(300, np.random.default_rng(0))
    per_op = np.array([0.0, 1.0, 3.0, 7.0, 2.0])
    y = 5.0 + np.array([per_op[list(a)].sum() for a in archs])
    pred = make(name).fit(archs[:200], y[:200]).predict(archs[200:])
    assert spearmanr(pred, y[200:]).statistic > 0.5  # struct encodings see live ops only


@pytest.fixture(scope="module")
def nb201_prior():
    """Two 'other devices' over every NB201 cell (what `transfer`-like predictors read)."""
    from hwnas.predictors.transfer import PriorTables

    space = create_space("nb201")
    every = list(space.iter_all())
    X = space.encode_many(every)
    rng = np.random.default_rng(5)
    vals = np.exp(np.column_stack([X @ rng.uniform(0, 0.3, X.shape[1]), X @ rng.uniform(0, 0.3, X.shape[1])]))
    return PriorTables([space.to_str(a) for a in every], ["dev_a", "dev_b"], vals)


@pytest.mark.parametrize("name", list_predictors(uses_prior=True))
def test_prior_users_fit_with_a_prior_and_round_trip(name, nb201_prior, tmp_path):
    """Predictors that read other devices' tables: a fit with the prior is deterministic and
    its save/load round trip predicts identically (the prior is saved with the model)."""
    archs, y = _data("nb201")
    y = np.exp(y / np.abs(y).max())
    p = make(name).fit(archs[:40], y[:40], prior=nb201_prior)
    again = make(name).fit(archs[:40], y[:40], prior=nb201_prior)
    np.testing.assert_array_equal(p.predict(archs[40:]), again.predict(archs[40:]))
    p.save(tmp_path / "m")
    np.testing.assert_array_equal(load_predictor(tmp_path / "m").predict(archs), p.predict(archs))

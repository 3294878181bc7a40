from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.base import create_predictor
from hwnas.search.spaces import create_space


def _additive_chain(space, rng):
    """A synthetic accuracy source exactly of the bilinear form, with known coefficients."""
    S = len(space.stages)
    maxd = max(st.max_depth for st in space.stages)
    maxc = max(len(st.choices) for st in space.stages)
    dA = rng.normal(size=(S, maxd, maxc))
    dB = rng.normal(size=(S, maxd + 1))

    def f(archs):
        return np.array([70.0 + sum(dB[s, len(b)] + sum(dA[s, i, c] for i, c in enumerate(b))
                                    for s, b in enumerate(a)) for a in archs])

    return f


def test_least_squares_recovers_an_exact_bilinear_target():
    sp = create_space("mbv3-fmnist")
    f = _additive_chain(sp, np.random.default_rng(0))
    archs = sp.sample_many(600, np.random.default_rng(1))
    p = create_predictor("bilinear", space="mbv3-fmnist", alphas=(1e-6,)).fit(archs[:500], f(archs[:500]))
    np.testing.assert_allclose(p.predict(archs[500:]), f(archs[500:]), atol=1e-3)
    S = len(sp.stages)
    D = max(st.max_depth for st in sp.stages)
    C = max(len(st.choices) for st in sp.stages)
    lo = min(st.min_depth for st in sp.stages)
    assert p.dA_.shape == (S, D, C) and p.dB_.shape == (S, D + 1)
    assert np.isnan(p.dB_[:, :lo]).all() and np.isfinite(p.dB_[:, lo:]).all()


def test_measured_mode_ranks_an_additive_source():
    from scipy.stats import kendalltau

    sp = create_space("mbv3-fmnist")
    f = _additive_chain(sp, np.random.default_rng(0))
    p = create_predictor("bilinear", space="mbv3-fmnist").fit_measured(sp, f, n_per_cell=4, rng=0)
    assert p.mode_ == "measured" and np.isfinite(p.A0_)
    test = sp.sample_many(300, np.random.default_rng(5))
    assert kendalltau(p.predict(test), f(test)).statistic > 0.8


def test_measured_mode_on_nb201_table_lookup():
    from scipy.stats import spearmanr

    sp = create_space("nb201")
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 5))

    def lookup(archs):  # stands in for a benchmark table or a supernet evaluator
        return np.array([w[np.arange(6), a].sum() for a in archs])

    p = create_predictor("bilinear").fit_measured("nb201", lookup, n_per_cell=8, rng=1)
    assert p.dA_.shape == (6, 5) and p.T0_ == p.A0_
    test = sp.sample_many(200, np.random.default_rng(2))
    assert spearmanr(p.predict(test), lookup(test)).statistic > 0.99


def test_measured_mode_rejects_a_bad_evaluator():
    with pytest.raises(ValueError, match="one finite value per arch"):
        create_predictor("bilinear").fit_measured("nb201", lambda a: np.zeros(3), n_per_cell=2)

"""The cell-space surrogates BINAS and the GCN method fit (predictors/bayes_linear.py,
predictors/gcn.py's CellGCNPredictor): the Predictor contract (fit returns self, float64
predictions, NotFittedError, parameters in the constructor), the same answer by arch and by cell
position, warm starts, and a clear refusal on a space that is not an enumerable cell graph."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.base import NotFittedError
from hwnas.predictors.bayes_linear import CellRidgePredictor
from hwnas.predictors.cells import canonical_ids, cells, struct_features
from hwnas.predictors.gcn import CellGCNPredictor
from hwnas.search.spaces import create_space
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from tests.search.toy_spaces import ToyCellSpace


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """As the search methods run them: tiny matmuls lose to thread start-up on a busy machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


SURROGATES = {"ridge": lambda sp, **kw: CellRidgePredictor(sp, prior="loo", **kw),
              "gcn": lambda sp, **kw: CellGCNPredictor(sp, epochs=150, **kw)}


def _task(space, n: int = 120, seed: int = 0):
    """(train positions, held-out positions, a target that is a fixed function of the live cell)."""
    cs = cells(space)
    X = struct_features(space)
    y_all = 60.0 + X @ np.random.default_rng(1).normal(size=X.shape[1])
    perm = np.random.default_rng(seed).permutation(len(cs))
    return perm[:n], perm[n:n + 400], y_all


@pytest.mark.parametrize("kind", list(SURROGATES))
def test_fit_predict_contract_and_positions_agree_with_archs(kind):
    sp = create_space("nb201")
    tr, te, y = _task(sp)
    archs = [cells(sp).archs[i] for i in tr]
    m = SURROGATES[kind](sp)
    with pytest.raises(NotFittedError):
        m.predict(archs[:2])
    assert m.fit(archs, y[tr]) is m and m.n_train_ == len(tr)
    pred = m.predict([cells(sp).archs[i] for i in te])
    assert pred.shape == (len(te),) and pred.dtype == np.float64 and np.isfinite(pred).all()
    by_pos = SURROGATES[kind](sp).fit_cells(tr, y[tr]).predict_cells(te)
    assert np.array_equal(pred, by_pos)  # the same numbers through either door
    assert spearmanr(pred, y[te]).statistic > 0.5  # it learns the held-out cells, not just runs
    canon = canonical_ids(sp)
    twins = np.flatnonzero(canon == canon[te[0]])
    twin_pred = m.predict_cells(twins)  # isomorphic cells share one graph / feature row: one prediction
    assert twin_pred == pytest.approx(np.full(len(twins), twin_pred[0]), rel=1e-6)  # (float32 GCN: rounding)
    assert m.get_params()["space"] is sp


def test_ridge_posterior_draws_score_cells():
    sp = create_space("nb201")
    tr, te, y = _task(sp)
    m = CellRidgePredictor(sp, prior="loo").fit_cells(tr, y[tr])
    W = m.sample(np.random.default_rng(0), 5)
    assert W.shape == (struct_features(sp).shape[1], 5)
    draws = m.predict_cells(te, W)
    assert draws.shape == (5, len(te)) and not np.allclose(draws[0], draws[1])
    with pytest.raises(ValueError, match="unknown cell features"):
        CellRidgePredictor(sp, features="graf").fit_cells(tr, y[tr])


def test_gcn_warm_start_continues_and_embeddings_feed_the_head():
    sp = create_space("nb201")
    tr, te, y = _task(sp)
    fresh = lambda **kw: CellGCNPredictor(sp, seed=3, epochs=40, refit_epochs=10, **kw)  # noqa: E731
    a = fresh().fit_cells(tr, y[tr])
    b = fresh().fit_cells(tr, y[tr])
    assert np.array_equal(a.predict_cells(te), b.predict_cells(te))  # the seed fixes the fit
    a.fit_cells(tr, y[tr])  # warm: 10 more steps from where it stood
    assert not np.array_equal(a.predict_cells(te), b.predict_cells(te))
    cold = fresh(warm_start=False).fit_cells(tr, y[tr])
    cold.fit_cells(tr, y[tr])  # cold: the same 40 steps again from the seed's weights
    assert np.array_equal(cold.predict_cells(te), b.predict_cells(te))
    pred, G = a.predict_cells(te, embed=True)
    assert G.shape == (len(te), a.hidden) and np.array_equal(pred, a.predict_cells(te))
    head = G @ a.params_["w"].astype(np.float64) + float(a.params_["c"][0])
    assert pred == pytest.approx(head * a.y_std_ + a.y_mean_, rel=1e-5)


@pytest.mark.parametrize("kind", list(SURROGATES))
def test_runs_on_a_cell_space_defined_in_the_tests_and_refuses_others(kind):
    sp = ToyCellSpace()
    archs = list(sp.iter_all())
    y = np.array([float(sum(a)) for a in archs])
    m = SURROGATES[kind](sp).fit(archs[:20], y[:20])
    assert m.predict(archs[20:]).shape == (len(archs) - 20,)
    with pytest.raises(ValueError, match="enumerable cell-graph space"):
        SURROGATES[kind]("mbv3-fmnist").fit([create_space("mbv3-fmnist").sample(np.random.default_rng(0))] * 2,
                                            [1.0, 2.0])
    with pytest.raises(NotImplementedError, match="not saved"):
        m.save("unused")

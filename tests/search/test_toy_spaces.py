"""A new space needs no change outside its own file: two spaces written only in the tests
(`toy_spaces.py`: a 27-cell graph, a 2-stage chain) run every registered method through the
public API (`create_method(...).search`), with tiny budgets and tiny supernets, and every
registered predictor (`create_predictor(..., space=...)`: fit, predict) (issue 24)."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.base import create_predictor, list_predictors
from hwnas.search.methods import FunctionAccuracy, create_method, list_methods, method_supports

from tests.predictors.test_contract import FAST as FAST_PREDICTORS
from tests.search.toy_spaces import ToyCellSpace, ToyChainSpace, cell_problem, chain_problem

ONE_SHOT = {  # a few digits images, one epoch, 2-4 channels: seconds each
    "mgas": dict(data="digits", n_train=64, epochs=1, batch_size=32, n_val=32),
    "bayesnas": dict(data="digits", n_images=64, epochs=1, batch_size=32, hessian_samples=2, n_val=32),
    "dinas": dict(data="digits", epochs=1, train_per_epoch=32, batch_size=16, generations=2, score_batches=1,
                  n_val=32, check_isometry=False),
}
CELL = {"mgas": dict(C=2, stages=2), "bayesnas": dict(C=2), "dinas": dict(C=2), "gcn": dict(epochs=20),
        "evolution": dict(population=6, sample=3)}
CHAIN = {"gcn": dict(epochs=20, population=10, generations=2),
         "evolution": dict(population=6, sample=3)}
# torch's forward-mode AD (DI-NAS's Jacobian scores) scripts a decomposition on first use
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
SPACES = {"toy-cell": (ToyCellSpace, cell_problem, CELL), "toy-chain": (ToyChainSpace, chain_problem, CHAIN)}


@pytest.mark.parametrize("space_name", list(SPACES))
def test_every_method_declares_the_toy_spaces_by_capability(space_name):
    """Every registered method says, from the capabilities alone, that it runs on both toys
    (none of them names a space)."""
    space = SPACES[space_name][0]()
    assert [m for m in list_methods() if not method_supports(m, space)] == []


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("method", list_methods())
def test_every_method_searches_a_toy_space(method, space_name, tmp_path):
    make, problem, fast = SPACES[space_name]
    space = make()
    constraints, acc_fn = problem(space, tmp_path)
    params = {**ONE_SHOT.get(method, {}), **fast.get(method, {})}
    r = create_method(method, **params).search(space, FunctionAccuracy(acc_fn), constraints, budget=4, seed=0)
    assert r.space == space.name and r.method == method
    assert space.from_str(r.arch_str) == space.validate(r.arch)
    assert 1 <= r.queries <= 4
    assert r.feasible and constraints[0].feasible([r.arch])[0]
    assert r.accuracy == pytest.approx(acc_fn([r.arch])[0])


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("name", list_predictors())
def test_every_predictor_fits_and_predicts_on_a_toy_space(name, space_name):
    space = SPACES[space_name][0]()
    archs = space.sample_many(24, np.random.default_rng(0))
    X = space.encode_many(archs)
    y = 50.0 + X @ np.random.default_rng(1).normal(size=X.shape[1])
    p = create_predictor(name, space=space, seed=0, **FAST_PREDICTORS.get(name, {}))
    assert p.fit(archs[:16], y[:16]) is p and p.n_train_ == 16
    pred = p.predict(archs[16:])
    assert pred.shape == (8,) and pred.dtype == np.float64 and np.isfinite(pred).all()

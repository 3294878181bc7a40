"""Thompson-sampled rounds of the NB201 query methods (search/methods/enumerated.py) and the
posterior they sample (predictors/bayes_linear.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.predictors.bayes_linear import BayesianLinear
from hwnas.predictors.cells import canonical_ids, cells
from hwnas.search.constraints import resolve
from hwnas.search.methods import TableAccuracy, create_method
from hwnas.search.methods.enumerated import read_in_rounds
from hwnas.search.spaces import create_space


@pytest.mark.parametrize("prior", ["evidence", "loo", "bootstrap"])
def test_posterior_draws_centre_on_the_fit_and_shrink_with_data(prior):
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    spread = []
    for n in (20, 400):
        X = rng.normal(size=(n, 5))
        y = X @ w + 3.0 + rng.normal(0, 0.1, n)
        post = BayesianLinear(prior=prior).fit(X, y)
        assert post.coef_ == pytest.approx(w, abs=0.15) and post.intercept_ == pytest.approx(3.0, abs=0.15)
        W = post.sample(np.random.default_rng(1), 4000)
        assert W.mean(1) == pytest.approx(post.coef_, abs=0.02)
        assert post.predict(X[:3]) == pytest.approx(X[:3] @ post.coef_ + post.intercept_)
        assert post.predict(X[:3], W[:, :2]).shape == (2, 3)
        spread.append(W.std(1).mean())
    assert spread[1] < spread[0] / 2  # more reads, narrower posterior


def test_thompson_draws_take_turns_and_skip_isomorphic_cells(nb201_tables):
    """Two draws that rank the cells differently: the batch alternates between their favourites,
    never reads two cells of one isomorphism class, and the result is the best cell read."""
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    src = TableAccuracy(sp, f"table:{acc_path}:acc")
    src.start(sp, 20)
    canon = canonical_ids(sp)
    calls = []

    def fit_score(read, y, feas, k):
        calls.append(k)
        a, b = acc[feas], -acc[feas]  # draw 0 likes accurate cells, draw 1 inaccurate ones
        return np.vstack([a, b])

    arch, best, how = read_in_rounds(sp, src, cons, 20, np.random.default_rng(0), fit_score, init_frac=0.5, batch=4)
    idx = cells(sp).index([sp.from_str(k) for k, _ in src.history()])
    # ten uniform first cells, of which twins cost no query (the protocol), then rounds of 4 up to 20 queries
    n_first = 20 - sum(calls)
    assert len(idx) == 20 and calls[:2] == [4, 4] and n_first <= 10 and "Thompson" in how
    assert len(set(canon[idx].tolist())) == 20  # no two reads of one isomorphism class
    later = idx[n_first:]
    ok = np.flatnonzero(lat <= 6)
    top = ok[np.argsort(-acc[ok])]
    assert acc[later[0]] == acc[top[0]] and acc[later[1]] <= np.sort(acc[ok])[len(ok) // 10]
    assert best == pytest.approx(max(v for _, v in src.history()))


@pytest.mark.parametrize("name", ["binas", "gcn"])
@pytest.mark.parametrize("acquisition", ["thompson", "greedy"])
def test_acquisitions_spend_the_budget_and_return_the_best_read(name, acquisition, nb201_tables):
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    src = TableAccuracy(sp, f"table:{acc_path}:acc")
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    r = create_method(name, acquisition=acquisition).search(sp, src, cons, budget=40, seed=2)
    vals = [v for _, v in src.history()]
    assert r.queries == 40 and r.feasible and r.accuracy == pytest.approx(max(vals))
    assert ("Thompson" in r.notes) == (acquisition == "thompson")


def test_bad_acquisition_and_posterior_are_refused(nb201_tables):
    acc_path, lat_path, _, _ = nb201_tables
    sp = create_space("nb201")
    src = TableAccuracy(sp, f"table:{acc_path}:acc")
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    for name in ("binas", "gcn"):
        with pytest.raises(ValueError, match="acquisition"):
            create_method(name, acquisition="ucb").search(sp, src, cons, budget=10, seed=0)
        with pytest.raises(ValueError, match="posterior"):
            create_method(name, posterior="flat").search(sp, src, cons, budget=10, seed=0)


def _worst_first_rounds(nb201_tables, budget: int, **kw):
    """read_in_rounds under a model that prefers the worst cells: (space, result, read indices,
    values read, constraints, source, fit_score, queries before the first round: the uniform
    first cells' classes, twins among them being free)."""
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    src = TableAccuracy(sp, f"table:{acc_path}:acc")
    src.start(sp, budget)

    first: list[int] = []

    def fit_score(read, y, feas, k):
        first.append(src.queries)
        return -acc[feas]

    res = read_in_rounds(sp, src, cons, budget, np.random.default_rng(0), fit_score, batch=5, **kw)
    idx = cells(sp).index([sp.from_str(k) for k, _ in src.history()])
    return sp, res, idx, np.array([v for _, v in src.history()]), cons, src, fit_score, first[0]


def test_local_share_reads_neighbours_of_the_best_reads(nb201_tables):
    """`local_share` of each round are the model's best one-edge neighbours of the three best cells
    read so far, even when the model prefers cells far from them; the rest follows the model."""
    sp, (arch, best, how), idx, vals, _, _, _, n0 = _worst_first_rounds(nb201_tables, 30, init_frac=0.5,
                                                                        local_share=0.6)
    A = np.asarray(cells(sp).archs)
    assert len(idx) == 30 and "neighbours" in how and 10 <= n0 <= 15
    for r in range(3):  # rounds of 5 after 15 uniform cells: 3 local cells, then 2 of the model's choice
        start = n0 + 5 * r
        top = idx[:start][np.argsort(-vals[:start], kind="stable")[:3]]
        assert all(((A[top] != A[i]).sum(1) <= 1).any() for i in idx[start:start + 3])
        assert vals[start + 3:start + 5].max() < np.median(vals[:n0])  # the model's picks: bad cells
    assert best == pytest.approx(vals.max())


def test_explore_share_reads_uniform_cells_beside_the_model(nb201_tables):
    """`explore_share` of each round are drawn uniformly from the unread feasible cells (new
    classes), so a model that prefers the worst cells still gets typical cells read; the rest of
    the round follows the model, and shares that do not fit in a round are refused."""
    _, _, acc, lat = nb201_tables
    sp, (arch, best, how), idx, vals, cons, src, fit_score, n0 = _worst_first_rounds(nb201_tables, 60,
                                                                                     init_frac=0.25, explore_share=0.4)
    canon = canonical_ids(sp)
    ok = np.flatnonzero(lat <= 6)
    low = np.quantile(acc[ok], 0.1)
    assert len(idx) == 60 and "uniform" in how and bool((lat[idx] <= 6).all())
    rounds = [slice(n0 + 5 * r, n0 + 5 + 5 * r) for r in range((60 - n0) // 5)]  # after 15 uniform cells
    explored = np.concatenate([vals[r][:2] for r in rounds])
    modelled = np.concatenate([vals[r][2:] for r in rounds])
    assert modelled.max() <= low  # the model's picks: the worst cells
    assert np.median(explored) > np.quantile(acc[ok], 0.25)  # uniform draws: typical cells
    assert len(set(canon[idx].tolist())) == 60  # every read of a new class
    assert best == pytest.approx(vals.max())
    with pytest.raises(ValueError, match="explore_share"):
        read_in_rounds(sp, src, cons, 60, np.random.default_rng(0), fit_score, local_share=0.8, explore_share=0.4)

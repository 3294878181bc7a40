"""One contract every registered search method passes (a new method is tested for free)."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.search.constraints import resolve
from hwnas.search.methods import (
    TableAccuracy,
    create_method,
    list_methods,
    method_meta,
    method_supports,
)
from hwnas.search.methods.base import BudgetExhausted
from hwnas.search.spaces import create_space

METHODS = list_methods()
FAST: dict[str, dict] = {"evolution": dict(population=10, sample=3)}
FAST["bayesnas"] = dict(data="digits", n_images=320, epochs=1, C=4)  # a tiny switch network: seconds
FAST["mgas"] = dict(data="digits", n_train=256, epochs=4, C=4)  # 16 steps of a 4-channel net: seconds
FAST["gcn"] = dict(epochs=60)  # 4 fits of <=120 steps: seconds
FAST["dinas"] = dict(data="digits", train_per_epoch=64, batch_size=32, C=4, score_batches=2, generations=3,
                     n_val=64)  # 2 fair steps of a 4-channel NB201 net: seconds


def _skip_unless_nb201(name: str) -> None:
    if not method_supports(name, "nb201"):
        supports = ", ".join(method_meta(name)["supports"])
        pytest.skip(f"{name} runs only on {supports}; this contract uses nb201 (tested in its own file)")


def _problem(nb201_tables, bound: float = 6.0):
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    return sp, TableAccuracy(sp, f"table:{acc_path}:acc"), resolve(sp, [f"latency_ms<={bound}@table:{lat_path}:dev"])


def test_registry_has_the_baselines():
    assert {"random", "evolution"} <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_registration_declares_supports_and_kind(name):
    meta = method_meta(name)
    assert meta.get("supports"), f"{name}: register it with supports=(capability names, ...)"
    assert meta.get("kind", "query") in ("query", "one-shot")
    assert method_supports(name, "nb201") == (name in list_methods(supports="nb201"))


@pytest.mark.parametrize("name", METHODS)
def test_get_params_returns_the_init_arguments(name):
    import inspect

    method = create_method(name)
    init = type(method).__init__
    expected = set() if init is object.__init__ else set(inspect.signature(init).parameters) - {"self"}
    assert set(method.get_params()) == expected
    assert create_method(name, **method.get_params()).get_params().keys() == method.get_params().keys()


def test_unknown_method_names_the_known_ones():
    with pytest.raises(LookupError, match="known: .*random"):
        create_method("annealing")


@pytest.mark.parametrize("name", METHODS)
def test_result_is_feasible_within_budget_and_reproducible(name, nb201_tables):
    _skip_unless_nb201(name)
    sp, acc, cons = _problem(nb201_tables)
    method = create_method(name, **FAST.get(name, {}))
    params = method.get_params()
    r = method.search(sp, acc, cons, budget=60, seed=1)
    state = [k for k in vars(method) if k not in params and not k.endswith("_")]
    assert not state, f"{name}: what a search leaves on the method is fitted state, named with a trailing '_'"
    assert method.get_params().keys() == params.keys() and not any(k.endswith("_") for k in params)
    assert r.feasible and r.costs and all(v <= 6.0 for v in r.costs.values())
    assert r.queries <= 60 and r.space == "nb201" and r.method == name
    assert r.arch_str == sp.to_str(r.arch)
    _, _, accs, _ = nb201_tables
    assert r.accuracy == pytest.approx(accs[sp.to_index(r.arch)])
    r2 = create_method(name, **FAST.get(name, {})).search(sp, acc, cons, budget=60, seed=1)
    assert r2.arch_str == r.arch_str


@pytest.mark.parametrize("name", METHODS)
def test_beats_the_median_feasible_arch(name, nb201_tables):
    """With 100 queries every method must return an arch better than the median feasible one."""
    _skip_unless_nb201(name)
    sp, acc, cons = _problem(nb201_tables)
    _, _, accs, lat = nb201_tables
    median = np.median(accs[lat <= 6.0])
    r = create_method(name, **FAST.get(name, {})).search(sp, acc, cons, budget=100, seed=0)
    assert r.accuracy > median


def test_the_budget_is_enforced(nb201_tables):
    sp, acc, _ = _problem(nb201_tables)
    acc.start(sp, 3)
    acc.query([sp.from_index(i) for i in range(3)])
    acc.query([sp.from_index(0)])  # asked again: free
    with pytest.raises(BudgetExhausted):
        acc.query([sp.from_index(5)])


def test_exact_optimum_is_the_best_feasible_row(nb201_tables):
    from hwnas.search.optimum import exact_optimum

    sp, acc, cons = _problem(nb201_tables)
    _, _, accs, lat = nb201_tables
    opt = exact_optimum(sp, acc, cons)
    assert opt.accuracy == pytest.approx(accs[lat <= 6.0].max()) and opt.n_feasible == int((lat <= 6.0).sum())
    with pytest.raises(ValueError, match="loosen"):
        exact_optimum(sp, acc, _problem(nb201_tables, bound=0.5)[2])


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_an_impossible_bound_returns_the_cheapest_arch_flagged_infeasible(name, nb201_tables):
    sp, acc, cons = _problem(nb201_tables, bound=0.5)
    _, _, _, lat = nb201_tables
    r = create_method(name, **FAST.get(name, {})).search(sp, acc, cons, budget=20, seed=0)
    assert not r.feasible and "cheapest" in r.notes
    assert next(iter(r.costs.values())) == pytest.approx(lat.min())


# ---- the query-method contract (issue 10) ------------------------------------------------------
QUERY_METHODS = list_methods(kind="query", supports="nb201")


def test_the_query_methods_are_registered_as_such():
    assert {"random", "evolution", "binas", "gcn"} <= set(QUERY_METHODS)


@pytest.mark.parametrize("name", QUERY_METHODS)
@pytest.mark.parametrize("bound", [3.0, 6.0])
def test_query_method_spends_its_budget_and_returns_its_best_feasible_read(name, bound, nb201_tables):
    """Every query-based method reads exactly its budget and returns the best feasible arch it
    read (never an unread estimate, never a worse read arch)."""
    sp, acc, cons = _problem(nb201_tables, bound=bound)
    r = create_method(name, **FAST.get(name, {})).search(sp, acc, cons, budget=40, seed=3)
    assert r.queries == 40 and r.feasible
    read = [sp.from_str(k) for k, _ in acc.history()]
    vals = np.array([v for _, v in acc.history()])
    ok = cons[0].feasible(read)
    assert sp.to_str(r.arch) in {k for k, _ in acc.history()}
    assert r.accuracy == pytest.approx(vals[ok].max())




@pytest.mark.parametrize("case", ["unread", "worse", "unspent"])
def test_the_base_enforces_the_contract_for_any_query_method(case, nb201_tables):
    from hwnas.search.methods.base import Searcher

    sp, acc, cons = _problem(nb201_tables)
    _, _, accs, lat = nb201_tables
    feas = np.flatnonzero(lat <= 6.0)
    order = feas[np.argsort(accs[feas])]
    worst, good = sp.from_index(int(order[0])), [sp.from_index(int(i)) for i in order[-5:]]

    class Stub(Searcher):
        kind = "query"
        name = "stub"

        def _search(self, space, accuracy, constraints, budget, rng):
            accuracy.query(good + ([worst] if case == "worse" else []))
            if case == "unspent":
                return good[-1], None, ""
            return worst, None, ""

    r = Stub().search(sp, acc, cons, budget=12, seed=0)
    assert r.queries == 12 and r.feasible
    vals = dict(acc.history())
    assert r.accuracy == pytest.approx(max(v for k, v in vals.items() if cons[0].feasible([sp.from_str(k)])[0]))
    assert r.accuracy >= accs[sp.to_index(good[-1])] - 1e-12

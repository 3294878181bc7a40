"""One contract every registered search method passes (a new method is tested for free)."""

from __future__ import annotations

import numpy as np
import pytest

from search.constraints import resolve
from search.methods import TableAccuracy, create_method, list_methods
from search.methods.base import BudgetExhausted
from search.spaces import create_space

METHODS = list_methods()
FAST: dict[str, dict] = {"evolution": dict(population=10, sample=3)}
FAST["bayesnas"] = dict(data="digits", n_images=320, epochs=1, C=4)  # a tiny switch network: seconds
FAST["mgas"] = dict(data="digits", n_train=256, epochs=4, C=4)  # 16 steps of a 4-channel net: seconds
FAST["gcn"] = dict(epochs=60)  # 4 fits of <=120 steps: seconds


def _skip_unless_nb201(name: str) -> None:
    spaces = create_method(name).spaces
    if spaces is not None and "nb201" not in spaces:
        pytest.skip(f"{name} runs only on {', '.join(spaces)}; this contract uses nb201 (tested in its own file)")


def _problem(nb201_tables, bound: float = 6.0):
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    return sp, TableAccuracy(sp, f"table:{acc_path}:acc"), resolve(sp, [f"latency_ms<={bound}@table:{lat_path}:dev"])


def test_registry_has_the_baselines():
    assert {"random", "evolution"} <= set(METHODS)


def test_unknown_method_names_the_known_ones():
    with pytest.raises(LookupError, match="known: .*random"):
        create_method("annealing")


@pytest.mark.parametrize("name", METHODS)
def test_result_is_feasible_within_budget_and_reproducible(name, nb201_tables):
    _skip_unless_nb201(name)
    sp, acc, cons = _problem(nb201_tables)
    r = create_method(name, **FAST.get(name, {})).search(sp, acc, cons, budget=60, seed=1)
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
    from search.optimum import exact_optimum

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

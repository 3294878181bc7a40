"""The query protocol owns deduplication by functional class, for every method alike (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.search.constraints import resolve
from hwnas.search.methods import TableAccuracy, create_method
from hwnas.search.methods.base import Searcher
from hwnas.search.spaces import create_space


def _problem(nb201_tables, bound: float = 6.0):
    acc_path, lat_path, _, _ = nb201_tables
    sp = create_space("nb201")
    return sp, TableAccuracy(sp, f"table:{acc_path}:acc"), resolve(sp, [f"latency_ms<={bound}@table:{lat_path}:dev"])


def _twins(sp, n: int = 6):
    """n distinct cells of one functional class: input -> node 1 by a 3x3 conv, node 1 -> output
    by a skip, node 2 -> output cut (`none`), so the ops into node 2 (edges 1 and 2) are dead and
    vary freely."""
    base = sp.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    return [sp.validate((base[0], i, j, *base[3:])) for i in range(5) for j in range(5)][:n]


def test_a_method_proposing_only_twins_of_one_cell_spends_one_query(nb201_tables):
    sp, acc, _ = _problem(nb201_tables)
    twins = _twins(sp)
    assert len({sp.to_str(a) for a in twins}) == len(twins) and len({sp.canonical(a) for a in twins}) == 1
    acc.start(sp, 3)
    first = acc.query(twins[:1])[0]
    vals = acc.query(twins[1:])
    assert acc.queries == 1 and acc.remaining == 2
    assert np.all(vals == first)  # the stored value of the class, not each twin's own table row
    assert acc.read_arch(twins[-1]) == sp.to_str(twins[0])
    assert acc.history() == [(sp.to_str(twins[0]), first)]


def test_twins_in_one_batch_cost_one_query(nb201_tables):
    sp, acc, _ = _problem(nb201_tables)
    twins = _twins(sp)
    acc.start(sp, 1)
    acc.query(twins)  # six cells, one class: fits a budget of one
    assert acc.queries == 1


def test_a_query_method_that_reads_only_twins_is_charged_one_query(nb201_tables):
    """Through the Searcher: the method's own reads of six twins cost one query, the base spends
    the rest on unread classes, and a twin returned is replaced by the cell actually read."""
    sp, acc, cons = _problem(nb201_tables, bound=1e9)
    twins = _twins(sp)

    class Twins(Searcher):
        kind = "query"
        name = "twins"

        def _search(self, space, accuracy, constraints, budget, rng):
            accuracy.query(twins)
            self.after_ = accuracy.queries
            return twins[-1], None, ""

    m = Twins()
    r = m.search(sp, acc, cons, budget=10, seed=0)
    assert m.after_ == 1 and r.queries == 10
    classes = [sp.canonical(sp.from_str(k)) for k, _ in acc.history()]
    assert len(set(classes)) == 10  # the other nine reads are nine other classes
    if "twin" in r.notes:
        assert sp.to_str(r.arch) == sp.to_str(twins[0])


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_the_baselines_read_one_cell_per_class(name, nb201_tables):
    sp, acc, cons = _problem(nb201_tables)
    kw = {"population": 10, "sample": 3} if name == "evolution" else {}
    r = create_method(name, **kw).search(sp, acc, cons, budget=60, seed=1)
    classes = [sp.canonical(sp.from_str(k)) for k, _ in acc.history()]
    assert r.queries == 60 and len(set(classes)) == 60


def test_random_search_stops_when_the_feasible_classes_run_out(nb201_tables):
    """A bound so tight that fewer classes are feasible than the budget: the search ends, having
    read each feasible class once."""
    sp, acc, _ = _problem(nb201_tables)
    _, lat_path, _, lat = nb201_tables
    bound = float(np.sort(lat)[40])
    cons = resolve(sp, [f"latency_ms<={bound}@table:{lat_path}:dev"])
    archs = list(sp.iter_all())
    feas = [a for a, ok in zip(archs, cons[0].feasible(archs), strict=True) if ok]
    n_classes = len({sp.canonical(a) for a in feas})
    r = create_method("random").search(sp, acc, cons, budget=n_classes + 2, seed=0)
    assert r.feasible and r.queries == n_classes


def test_a_space_without_a_canonical_form_counts_arch_strings():
    from hwnas.search.methods.base import arch_key, protocol_version

    sp = create_space("mbv3-fmnist")
    assert arch_key(sp) == sp.to_str and protocol_version(sp) == 1
    assert protocol_version(create_space("nb201")) == 2

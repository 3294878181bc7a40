"""Issue 25: the feasible sampler's work is linear in the budget (sampling without replacement
from the unread feasible set once the space runs dry) and its picks at the boards' budgets are
the ones the plain rejection sampler made for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.search.constraints import resolve
from hwnas.search.methods import create_method
from hwnas.search.methods.base import TableAccuracy, feasible_mask, sample_feasible
from hwnas.search.spaces import create_space


def rejection_sampler(space, constraints, rng, n, exclude=None, max_tries=200):
    """The sampler as it was before (issue 25): rejection in rounds of 4x what is missing."""
    exclude = set(exclude or ())
    out = []
    for _ in range(max_tries):
        cand = [space.sample(rng) for _ in range(max(4 * (n - len(out)), 16))]
        for a, ok in zip(cand, feasible_mask(constraints, cand), strict=True):
            k = space.to_str(a)
            if ok and k not in exclude:
                exclude.add(k)
                out.append(a)
                if len(out) == n:
                    return out
    return out


@pytest.fixture(scope="module")
def nb201():
    return create_space("nb201")


@pytest.fixture(scope="module")
def bounds(nb201_tables, nb201):
    _, lat_path, _, lat = nb201_tables
    return {q: resolve(nb201, [f"latency_ms<={np.quantile(lat, q):.6g}@table:{lat_path}:dev"]) for q in (0.25, 0.5, 0.75)}


def test_draws_at_once_are_the_draws_one_at_a_time(nb201):
    for seed in range(5):
        for k in (1, 16, 333):
            one, batch = np.random.default_rng(seed), np.random.default_rng(seed)
            assert [nb201.sample(one) for _ in range(k)] == nb201.sample_draws(k, batch)
            assert one.bit_generator.state == batch.bit_generator.state


@pytest.mark.parametrize("q", [0.25, 0.5, 0.75])
def test_same_picks_as_the_rejection_sampler_at_board_budgets(nb201, bounds, q):
    cons = bounds[q]
    for seed in range(4):
        seen = {nb201.to_str(a) for a in nb201.sample_draws(30, np.random.default_rng(100 + seed))}
        for n in (1, 20, 100, 200, 500):
            old, new = np.random.default_rng(seed), np.random.default_rng(seed)
            assert sample_feasible(nb201, cons, new, n, set(seen)) == rejection_sampler(nb201, cons, old, n, set(seen))
            assert new.bit_generator.state == old.bit_generator.state  # what a method draws next is unchanged too


def counting(space):
    """`space`, counting the candidates the sampler draws."""

    class Counting(type(space)):
        drawn = 0

        def sample_draws(self, k, rng):
            self.drawn += k
            return super().sample_draws(k, rng)

    return Counting()


def test_asking_for_more_than_is_feasible_takes_each_feasible_arch_once_in_linear_work(nb201, bounds):
    cons = bounds[0.25]
    archs = list(nb201.iter_all())
    feasible = {nb201.to_str(a) for a, ok in zip(archs, feasible_mask(cons, archs), strict=True) if ok}
    taken = {nb201.to_str(a) for a in sample_feasible(nb201, cons, np.random.default_rng(1), 3000)}
    space = counting(nb201)
    got = sample_feasible(space, cons, np.random.default_rng(0), nb201.size(), exclude=set(taken))
    assert {nb201.to_str(a) for a in got} == feasible - taken and len(got) == len(feasible - taken)
    # the plain rejection drew 200 rounds of 4 x 15,625 candidates here
    assert space.drawn <= 4 * nb201.size()


def test_a_scarce_feasible_set_is_not_returned_short(nb201, bounds, nb201_tables):
    _, lat_path, _, lat = nb201_tables
    cons = resolve(nb201, [f"latency_ms<={np.quantile(lat, 0.02):.6g}@table:{lat_path}:dev"])
    n_feasible = int(feasible_mask(cons, list(nb201.iter_all())).sum())
    want = int(0.8 * n_feasible)
    got = sample_feasible(nb201, cons, np.random.default_rng(0), want)
    assert len({nb201.to_str(a) for a in got}) == want and feasible_mask(cons, got).all()


def test_random_search_over_the_whole_space_reads_every_feasible_class_once(nb201, bounds, nb201_tables):
    """Under the protocol's count (one query per functional class, issue 21) a random search asked
    for the whole space reads each feasible isomorphism class once and stops."""
    acc_path, *_ = nb201_tables
    cons = bounds[0.25]
    archs = list(nb201.iter_all())
    n_classes = len({nb201.canonical(a) for a, ok in zip(archs, feasible_mask(cons, archs), strict=True) if ok})
    acc = TableAccuracy(nb201, f"table:{acc_path}:acc")
    r = create_method("random").search(nb201, acc, cons, budget=nb201.size(), seed=0)
    assert r.queries == n_classes and r.feasible
    assert len({nb201.canonical(nb201.from_str(k)) for k, _ in acc.history()}) == n_classes

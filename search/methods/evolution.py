"""Regularised (aging) evolution under the constraint (Real et al. 2019), the second baseline.

Only feasible children are queried: infeasible mutants are redrawn, since cost look-ups are free
and an accuracy query spent on an arch that cannot ship is wasted. The defaults (population 20,
tournament 5) leave most of a 100-query budget to evolution proper; Real et al. used 100/25 for
budgets in the thousands.
"""

from __future__ import annotations

from collections import deque

from .base import (
    BudgetExhausted,
    Searcher,
    cheapest,
    feasible_mask,
    register_method,
    sample_feasible,
)


@register_method("evolution", supports=("any",), kind="query")
class RegularizedEvolution(Searcher):
    param_ranges = {"population": (1, None), "sample": (1, None), "mutation_p": (0, 1), "max_redraws": (0, None)}

    def __init__(self, population: int = 20, sample: int = 5, mutation_p: float = 0.1, max_redraws: int = 100):
        self.population, self.sample, self.mutation_p, self.max_redraws = population, sample, mutation_p, max_redraws

    def _search(self, space, accuracy, constraints, budget, rng):
        pop_size = min(self.population, budget)
        init = sample_feasible(space, constraints, rng, pop_size)
        if not init:
            return cheapest(space, constraints, rng), None, "no feasible arch found by sampling; returned the cheapest"
        pop = deque(zip(init, accuracy.query(init), strict=True))
        best = max(pop, key=lambda p: p[1])
        seen = {space.to_str(a) for a, _ in pop}
        stalls = 0
        while accuracy.remaining and stalls < self.max_redraws:
            idx = rng.choice(len(pop), size=min(self.sample, len(pop)), replace=False)
            parent = max((pop[i] for i in idx), key=lambda p: p[1])[0]
            child = space.mutate(parent, rng, p=self.mutation_p)
            key = space.to_str(child)
            if key in seen or not feasible_mask(constraints, [child])[0]:
                stalls += 1
                continue
            stalls = 0
            seen.add(key)
            try:
                acc = float(accuracy.query([child])[0])
            except BudgetExhausted:
                break
            pop.append((child, acc))
            if len(pop) > pop_size:
                pop.popleft()  # the oldest dies, not the worst
            if acc > best[1]:
                best = (child, acc)
        note = "" if not accuracy.remaining else f"stopped after {self.max_redraws} redraws found no new feasible child"
        return best[0], None, note

"""Random search: the baseline every NAS leaderboard carries (Li & Talwalkar 2019)."""

from __future__ import annotations

import numpy as np

from .base import Searcher, cheapest, register_method, sample_feasible


@register_method("random", supports=("any",), kind="query")
class RandomSearch(Searcher):
    """Query `budget` distinct feasible archs drawn uniformly; return the most accurate."""

    def _search(self, space, accuracy, constraints, budget, rng):
        archs = sample_feasible(space, constraints, rng, budget)
        if not archs:
            return cheapest(space, constraints, rng), None, "no feasible arch found by sampling; returned the cheapest"
        acc = accuracy.query(archs)
        return archs[int(np.argmax(acc))], None, ""

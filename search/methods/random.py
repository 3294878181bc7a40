"""Random search: the baseline every NAS leaderboard carries (Li & Talwalkar 2019)."""

from __future__ import annotations

import numpy as np

from .base import Searcher, cheapest, register_method, sample_feasible


@register_method("random", supports=("any",), kind="query")
class RandomSearch(Searcher):
    """Query `budget` distinct feasible archs drawn uniformly; return the most accurate. Distinct
    as the protocol counts them (`AccuracySource.key`): on a cell space a draw of a class already
    drawn is redrawn, so every draw spends a query; when the feasible classes run out it stops."""

    def _search(self, space, accuracy, constraints, budget, rng):
        archs = sample_feasible(space, constraints, rng, budget, exclude=accuracy.read_keys(), key=accuracy.key)
        if not archs:
            return cheapest(space, constraints, rng), None, "no feasible arch found by sampling; returned the cheapest"
        acc = accuracy.query(archs)
        return archs[int(np.argmax(acc))], None, ""

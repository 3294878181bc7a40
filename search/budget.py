"""The query budget rule, in one place: a run reads at least one accuracy; on a finite space no
more than its archs (no method can read more distinct ones: a larger budget is clamped, with a
note); on an infinite space no more than MAX_BUDGET (each query scores a network)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hwnas.core.capabilities import Enumerable

MAX_BUDGET = 1_000_000

log = logging.getLogger("hwnas")


def check_budget(budget: int) -> int:
    """`budget` as an int, or a ValueError when it is below one accuracy query."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1 accuracy query, got {budget}")
    return int(budget)


def check_budgets(budgets: Sequence[int]) -> list[int]:
    """Every budget of a run checked by `check_budget` (at least one budget), before any table is read."""
    if not budgets or min(budgets) < 1:
        raise ValueError(f"every --budget must be >= 1 accuracy query (got {list(budgets)})")
    return [int(b) for b in budgets]


def clamp_budgets(space, budgets: Sequence[int]) -> list[int]:
    """The budgets a run on `space` spends, in order and without repeats: above a finite space's
    size clamped to it (with a note); on an infinite space above MAX_BUDGET refused."""
    try:
        size = int(space.size()) if isinstance(space, Enumerable) else None
    except (TypeError, ValueError, NotImplementedError, OverflowError):
        size = None
    out = []
    for b in check_budgets(budgets):
        if size is not None and b > size:
            log.warning("note: --budget %d is above the %d archs of %s; clamped to %d", b, size, space.name, size)
            b = size
        elif b > MAX_BUDGET:
            raise ValueError(f"--budget {b} is above the limit of {MAX_BUDGET} queries on {space.name} "
                             "(each query scores a network); use a smaller --budget")
        out.append(b)
    return list(dict.fromkeys(out))

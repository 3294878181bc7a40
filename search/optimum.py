"""The exact constrained optimum of a finite space (NB201: all 15,625 cells), so that every
method's regret is known. It reads the ground truth of every arch, so it is a yardstick, not a
method: it never runs under a query budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hwnas.search.methods.base import feasible_mask


@dataclass
class Optimum:
    arch_str: str
    accuracy: float
    n_feasible: int
    n_total: int


def exact_optimum(space, accuracy, constraints) -> Optimum:
    archs = list(space.iter_all())
    ok = feasible_mask(constraints, archs)
    if not ok.any():
        raise ValueError(f"no arch of {space.name} meets {', '.join(c.constraint.text for c in constraints)}; "
                         "loosen the bound")
    acc = np.where(ok, accuracy.peek(archs), -np.inf)
    i = int(np.argmax(acc))
    return Optimum(space.to_str(archs[i]), float(acc[i]), int(ok.sum()), len(archs))

"""The rounds BINAS and GCN read in on a small finite cell space (NB201: 15,625 cells).

Every cell, its position and isomorphism class come from `predictors.cells` (built once per
process, shared with the surrogates the methods fit); which cells meet a constraint is computed
here once per process, keyed by the space and the bound constraint object (cached with a
reference, so its id stays valid). `read_in_rounds` is the schedule: first reads, then rounds of
fit -> score -> read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hwnas.predictors.cells import canonical_ids, cells, space_key

_FEAS_CACHE: dict = {}


def feasible_all(space, constraints: Sequence) -> np.ndarray:
    """Boolean mask over `cells(space).archs` of the archs meeting every constraint (cost look-ups
    are free; done once per constraint object and process)."""
    cs = cells(space)
    ok = np.ones(len(cs), dtype=bool)
    for c in constraints:
        k = (space_key(space), id(c))
        if k not in _FEAS_CACHE:
            try:
                m = np.asarray(c.feasible(cs.archs), dtype=bool)
            except LookupError:  # a table missing rows: those archs count as infeasible
                m = np.array([_safe_feasible(c, a) for a in cs.archs], dtype=bool)
            _FEAS_CACHE[k] = (c, m)  # keep c alive so its id is not reused
        ok &= _FEAS_CACHE[k][1]
    return ok


def _safe_feasible(c, a) -> bool:
    try:
        return bool(c.feasible([a])[0])
    except LookupError:
        return False


def first_reads(space, constraints, rng: np.random.Generator, init_frac: float, budget: int):
    """(cells, feasible mask, feasible indices, the `init_frac` of the budget of uniformly drawn
    feasible cells to read first); a clear error when no cell is feasible."""
    cs = cells(space)
    ok = feasible_all(space, constraints)
    if not ok.any():
        texts = ", ".join(c.constraint.text for c in constraints)
        raise ValueError(f"no arch of {space.name} meets {texts}; loosen the bound")
    feas = np.flatnonzero(ok)
    n0 = min(len(feas), max(2, int(round(init_frac * budget))), budget)
    return cs, ok, feas, [int(i) for i in rng.choice(feas, size=n0, replace=False)]


def _take_new_classes(candidates, upto: int, new: list[int], seen: set, canon: np.ndarray) -> None:
    """Append to `new` the candidate cells (in order) of isomorphism classes not in `seen`, until
    `new` holds `upto` cells."""
    for i in candidates:
        if len(new) >= upto:
            break
        if canon[i] not in seen:
            new.append(int(i))
            seen.add(canon[i])


def read_in_rounds(space, accuracy, constraints, budget: int, rng: np.random.Generator, fit_score,
                   init_frac: float = 0.5, batch: int | None = None, local_share: float = 0.0,
                   local_top: int = 3, explore_share: float = 0.0) -> tuple[object, float, str]:
    """Fit -> score -> read -> refit on an enumerable cell space, the schedule BINAS and GCN share.

    `init_frac` of the budget reads uniformly drawn feasible cells; then each round calls
    `fit_score(read_idx, read_y, feasible_idx, k)` (the model is fitted only on what was read)
    and reads k (`batch`, default budget // 10) unread feasible cells, at most one per
    isomorphism class and none isomorphic to a cell already read (the protocol would answer a
    twin from the class's read, free: `AccuracySource`; the search stops when every feasible
    class is read). `fit_score` returns either [n_feasible] scores (greedy:
    the k best-scored) or [S, n_feasible] scores under S posterior draws (batch Thompson
    sampling: the draws take turns, each reading the best cell under its own draw that is not
    read or taken yet). `local_share` of each round's cells are instead the model's best among
    the unread feasible neighbours (one edge's op changed) of the `local_top` best cells read so
    far: local search ranked by the model, so a round also reads around what really scored well,
    not only where the model extrapolates. `explore_share` of each round's cells are drawn
    uniformly from the unread feasible cells of new classes, before the local and model picks:
    random interleaving (SMAC's, BOHB's `random_fraction`), so a model that is confidently wrong
    about a whole region (at low latency bounds, dense 1x1-conv cells ranked above the sparse
    3x3-conv cells that are best) still gets reads from it. Returns (best feasible cell read,
    its accuracy read, a note)."""
    if not (0 <= local_share and 0 <= explore_share and local_share + explore_share <= 1):
        raise ValueError(f"local_share ({local_share}) and explore_share ({explore_share}) must be >= 0 "
                         "and sum to at most 1 (they are shares of each round)")
    cs, ok, feas, read = first_reads(space, constraints, rng, init_frac, budget)
    A = np.asarray(cs.archs) if local_share > 0 else None
    A_feas = A[feas] if A is not None else None
    n0 = len(read)
    y = list(accuracy.query([cs.archs[i] for i in read]))
    batch = batch or max(1, budget // 10)
    canon = canonical_ids(space)
    rounds, draws = 0, 0
    while accuracy.remaining and len(read) < len(feas):  # uniform twins of the first reads cost no query
        k = min(batch, accuracy.remaining)
        score = np.asarray(fit_score(np.array(read), np.array(y), feas, k), dtype=np.float64)
        if score.ndim == 1:
            score = score[None]
        draws = max(draws, len(score))
        orders = [np.argsort(-s, kind="stable") for s in score]
        pos = [0] * len(orders)
        seen = set(canon[read].tolist())
        new: list[int] = []
        if explore_share > 0:  # uniformly drawn unread feasible cells
            _take_new_classes(rng.permutation(feas), round(explore_share * k), new, seen, canon)
        if A is not None:  # the model's best neighbours of the best reads
            top = np.asarray(read)[np.argsort(-np.asarray(y), kind="stable")[:local_top]]
            near = ((A_feas[:, None, :] != A[top][None, :, :]).sum(-1) <= 1).any(1)
            _take_new_classes((feas[j] for j in orders[0] if near[j]), round((local_share + explore_share) * k),
                              new, seen, canon)
        live = list(range(len(orders)))
        while len(new) < k and live:
            for d in list(live):  # each draw in turn takes its best cell of a class not seen
                o = orders[d]
                while pos[d] < len(o) and canon[feas[o[pos[d]]]] in seen:
                    pos[d] += 1
                if pos[d] == len(o):
                    live.remove(d)
                    continue
                i = int(feas[o[pos[d]]])
                new.append(i)
                seen.add(canon[i])
                if len(new) == k:
                    break
        if not new:  # every feasible class read (a twin would cost no query and tell nothing new)
            break
        y += list(accuracy.query([cs.archs[i] for i in new]))
        read += new
        rounds += 1
    b = int(np.argmax(y))
    how = "best-scored" if draws <= 1 else "Thompson-sampled (one posterior draw per cell)"
    local = (f"; {local_share:.0%} of each round among one-edge neighbours of the {local_top} best reads"
             if local_share > 0 else "")
    explore = f"; {explore_share:.0%} of each round uniform" if explore_share > 0 else ""
    return cs.archs[read[b]], float(y[b]), (f"{n0} uniform feasible cells, then {rounds} rounds of up to {batch} "
                                             f"{how} unread feasible cells of new isomorphism classes "
                                             f"(all feasible cells scored{local}{explore}); best read")

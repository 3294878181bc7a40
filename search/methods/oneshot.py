"""Shared parts of the one-shot methods (MGAS, BayesNAS, DI-NAS): their result record (supernet
train/val accuracy, search cost in CPU seconds), the per-block cost table of a constraint, and the
greedy repair / neighbour list that turn a decoded chain arch into feasible candidates.

The networks they train live in `search.supernet` (`mixed_chain`, `gated_cell`, `switch_cell`,
`fair`), built from a space's capabilities; this module keeps only what the algorithms share.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields

import numpy as np

from .base import Searcher, SearchResult, feasible_mask


# ---- cost accounting and the result record -------------------------------------------------
def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) plus its finished children."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


@dataclass
class OneShotResult(SearchResult):
    """A SearchResult with what a one-shot method pays and whether its supernet learned."""

    supernet_train_acc: float | None = None  # % on the training images, last part of training
    supernet_val_acc: float | None = None  # % on held-out validation images of the same data
    supernet_data: str = ""
    search_cpu_s: float | None = None  # CPU seconds of the whole search (training included)
    supernet_cpu_s: float | None = None  # of which training the supernet
    stats: dict = field(default_factory=dict)  # method-specific scalars (pruned counts, ...)

    def row(self) -> dict:
        d = super().row()
        stats = d.pop("stats", {}) or {}
        d.update({f"stat_{k}": v for k, v in stats.items()})
        return d


class OneShotSearcher(Searcher):
    """Times the search in CPU seconds and returns a `OneShotResult`; `_search` sets
    `train_acc_`, `val_acc_`, `train_cpu_s_` and `stats_`."""

    def search(self, space, accuracy, constraints, budget, seed=0, final_reads=None):
        self.train_acc_ = self.val_acc_ = self.train_cpu_s_ = None
        self.stats_ = {}
        c0 = cpu_seconds()
        r = super().search(space, accuracy, constraints, budget, seed, final_reads=final_reads)
        cpu = cpu_seconds() - c0
        base = {f.name: getattr(r, f.name) for f in fields(SearchResult)}
        return OneShotResult(**base, supernet_train_acc=self.train_acc_, supernet_val_acc=self.val_acc_,
                             supernet_data=str(getattr(self, "data", "")), search_cpu_s=cpu,
                             supernet_cpu_s=self.train_cpu_s_, stats=dict(self.stats_))


# ---- data ------------------------------------------------------------------------------------
_DATA: dict = {}


def dataset(spec: str, shape=None, seed: int = 0):
    """`search.data.load_dataset`, cached (Fashion-MNIST is ~190 MB as float32: keep one)."""
    key = (spec, tuple(shape) if shape is not None else None, seed)
    if key not in _DATA:
        from hwnas.search.data import load_dataset

        _DATA.clear()
        _DATA[key] = load_dataset(spec, shape=shape, seed=seed)
    return _DATA[key]


def accuracy_of(fn, split, n: int | None = 2000, batch_size: int = 256, channels_last: bool = False) -> float:
    """Accuracy (%) of `fn(x) -> logits` on the first `n` items of `split` (no grad)."""
    import torch
    from hwnas.search.data import batches

    correct = seen = 0
    with torch.no_grad():
        for x, y in batches(split, batch_size, limit=n):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            correct += int((fn(x).argmax(1) == y).sum())
            seen += len(y)
    return 100.0 * correct / max(seen, 1)


def recalibrate_bn(net, fn, split, n: int = 1024, batch_size: int = 128) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them (cumulative average) from
    `n` training images through `fn(x)` (the subnet or gated supernet as evaluated); leaves
    `net` in eval mode."""
    import torch
    from hwnas.search.data import batches
    from torch import nn

    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for x, _ in batches(split, batch_size, limit=n):
            fn(x)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    net.eval()


# ---- per-block costs from the constraint's own table -----------------------------------------
@dataclass
class ChainCosts:
    """Per constraint: t[s][b] = cost of each choice at block b of stage s (canonical unit),
    the fixed parts, and what the bound leaves above the cheapest arch (`left`)."""

    t: list  # [constraint][stage] -> [max_depth, n_choices]
    fixed: list[float]
    left: list[float]
    quantity: list[str]
    span: list[float] = field(default_factory=list)  # dearest arch's cost minus the cheapest's

    def tightness(self) -> float:
        """How much the bound binds: the space's cost span over what the bound leaves above the
        cheapest arch, max over constraints (1 where the bound sits at the dearest arch, larger
        as it tightens, below 1 where it admits every arch)."""
        return max((s / lf for s, lf in zip(self.span, self.left, strict=True) if lf > 0), default=1.0)

    def share(self, k: int = None):
        """[stage] -> [max_depth, n_choices] cost as a share of `left`, max over constraints
        (of the latency/energy ones when k is None)."""
        idx = range(len(self.t)) if k is None else [k]
        out = None
        for i in idx:
            sh = [ts / self.left[i] for ts in self.t[i]]
            out = sh if out is None else [np.maximum(a, b) for a, b in zip(out, sh, strict=True)]
        return out


def chain_costs(space, constraints) -> ChainCosts | None:
    """Block costs of every constraint that is a block table (None when there is none)."""
    from hwnas.search.constraints import BlockTableCost

    ts, fixed, left, qty, span = [], [], [], [], []
    for c in constraints:
        if not isinstance(c.cost, BlockTableCost):
            continue
        values, f = c.cost.block_costs()
        t = [np.array([[values.get(space.block_spec(s, b == 0, ch).key, np.nan) for ch in range(len(st.choices))]
                       for b in range(st.max_depth)]) for s, st in enumerate(space.stages)]
        cheapest = f + sum(float(np.nanmin(t[s][b])) for s, st in enumerate(space.stages) for b in range(st.min_depth))
        dearest = f + sum(float(np.nanmax(t[s][b])) for s, st in enumerate(space.stages) for b in range(st.max_depth))
        span.append(max(dearest - cheapest, 0.0))
        ts.append([np.nan_to_num(x, nan=float(np.nanmax(x))) for x in t])
        fixed.append(f)
        left.append(max(c.constraint.bound - cheapest, 0.05 * c.constraint.bound))
        qty.append(c.constraint.quantity)
    return ChainCosts(ts, fixed, left, qty, span) if ts else None


# ---- greedy repair and neighbours on chains -----------------------------------------------------
def arch_score(S, arch) -> float:
    """Sum of per-block scores S[s][b, c] over the arch's present blocks."""
    return float(sum(S[s][b, c] for s, blocks in enumerate(arch) for b, c in enumerate(blocks)))


def _excess(constraints, archs) -> np.ndarray:
    out = np.zeros(len(archs))
    for c in constraints:
        v = np.asarray(c.values(archs), dtype=np.float64)
        bad = ~np.asarray(c.constraint.satisfied(v), dtype=bool)
        out += np.where(bad, np.maximum(v - c.constraint.bound, 0.0) / c.constraint.bound + 1e-9, 0.0)
    return out


def neighbours(space, arch) -> list:
    """Every arch one move away: one block's choice changed, or a stage one block shorter or longer
    (the added block takes the choice of the stage's last block)."""
    arch = space.validate(arch)
    out = []
    for s, (blocks, st) in enumerate(zip(arch, space.stages, strict=True)):
        for b, c in enumerate(blocks):
            for c2 in range(len(st.choices)):
                if c2 != c:
                    out.append(arch[:s] + (blocks[:b] + (c2,) + blocks[b + 1:],) + arch[s + 1:])
        if len(blocks) > st.min_depth:
            out.append(arch[:s] + (blocks[:-1],) + arch[s + 1:])
        if len(blocks) < st.max_depth:
            out.append(arch[:s] + (blocks + (blocks[-1],),) + arch[s + 1:])
    return out


def chain_repair(space, constraints, arch, S, max_moves: int = 200) -> tuple[tuple, str]:
    """Greedy: while a constraint is broken, make the single move (see `neighbours`) with the
    smallest score lost per relative constraint excess removed. Falls back to the cheapest arch
    (`space.smallest` under the first block table) when no move helps. Returns (arch, note)."""
    arch = space.validate(arch)
    moves = 0
    while moves < max_moves and not feasible_mask(constraints, [arch])[0]:
        cands = neighbours(space, arch)
        ex = _excess(constraints, cands + [arch])
        saved = ex[-1] - ex[:-1]
        good = saved > 0
        if not good.any():
            break
        here = arch_score(S, arch)
        lost = np.array([max(here - arch_score(S, a), 0.0) for a in cands])
        ratio = np.where(good, lost / np.where(good, saved, 1.0), np.inf)
        arch = cands[int(np.argmin(ratio))]
        moves += 1
    if feasible_mask(constraints, [arch])[0]:
        return arch, f"{moves} greedy repair move(s)"
    costs = chain_costs(space, constraints)
    if costs is not None:
        t = costs.t[0]
        small = space.smallest(cost=lambda s, c: t[s][0][c])
    else:
        small = space.smallest()
    return small, f"greedy repair stuck after {moves} move(s): the cheapest arch taken"


def ranked_candidates(space, constraints, arch, S, k: int) -> list:
    """`arch` (assumed feasible) then its feasible neighbours and their neighbours, best score
    first, `k` in all. On a pool (search/spaces/pool.py) the candidates are the k feasible pool
    members the method's own block scores rank highest: it reads only archs of the pool."""
    arch = space.validate(arch)
    if hasattr(space, "in_pool"):
        members = list(space.iter_all())
        members = [a for a, ok in zip(members, feasible_mask(constraints, members), strict=True) if ok] or [
            space.nearest(arch, np.random.default_rng(0))]
        return sorted(members, key=lambda a: -arch_score(S, a))[:max(1, k)]
    seen = {space.to_str(arch)}
    pool = []
    frontier = [arch]
    for _ in range(2):
        nxt = []
        for a in frontier:
            for n in neighbours(space, a):
                key = space.to_str(n)
                if key not in seen:
                    seen.add(key)
                    nxt.append(n)
        if nxt:
            ok = feasible_mask(constraints, nxt)
            nxt = [a for a, f in zip(nxt, ok, strict=True) if f]
        pool += nxt
        if len(pool) >= 4 * k:
            break
        frontier = sorted(nxt, key=lambda a: -arch_score(S, a))[:20]
    pool.sort(key=lambda a: -arch_score(S, a))
    return [arch] + pool[:max(0, k - 1)]


def block_positions(space) -> list[tuple[int, int]]:
    return [(s, b) for s, st in enumerate(space.stages) for b in range(st.max_depth)]


def snap_width(mids, n_active: float) -> int:
    """Index of the allowed width nearest `n_active` channels (the smaller one on a tie)."""
    return int(np.argmin([abs(m - n_active) + 1e-9 * i for i, m in enumerate(mids)]))

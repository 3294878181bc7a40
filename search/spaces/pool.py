"""A finite pool of archs of a larger space, searched like NB201: `hwnas search --pool PATH`.

The pool is the `arch_str` column of a table (a device-bench table, or any user's own list). The
pooled space is the base space with its enumeration, sampling and variation confined to the pool:
it is `Enumerable` (iter_all in the table's order, a stable index), `sample` draws a member,
`mutate` and `crossover` vary as the base space does and, when the child falls outside the pool,
return the member nearest to it (fewest differing one-hot entries; ties drawn at random), so local
search stays local. Everything else (encodings, block tables, `stages`, `build`) is the base
space's, so cost tables, predictors and chain methods see the space they know; its `name` is the
base's, so constraints like `latency_ms<=X@cpu-t1` find the base's tables. `validate` accepts
any arch of the base space (cost models and fall-backs may look at archs outside the pool);
`in_pool` says whether an arch is a member.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from hwnas.core.capabilities import Enumerable

from .base import ArchError, SearchSpace


class PoolMixin:
    """Confines a space to `pool_archs` (mixed in front of the base space's class)."""

    pool_archs: tuple = ()
    pool_source: str = ""
    pool_digest: str = ""

    def _setup_pool(self, archs: Sequence, source: str) -> None:
        self.pool_archs = tuple(archs)
        self.pool_source = source
        self._pool_pos = {a: i for i, a in enumerate(self.pool_archs)}
        self._pool_onehot = None

    # ---- a finite, enumerable space ----------------------------------------------------------
    def size(self) -> int:
        return len(self.pool_archs)

    def iter_all(self) -> Iterator:
        return iter(self.pool_archs)

    def in_pool(self, arch) -> bool:
        return self.validate(arch) in self._pool_pos

    def to_index(self, arch) -> int:
        a = self.validate(arch)
        if a not in self._pool_pos:
            raise ArchError(f"{self.to_str(a)!r} is not in the pool ({self.pool_source})")
        return self._pool_pos[a]

    def from_index(self, idx: int):
        if not 0 <= int(idx) < len(self.pool_archs):
            raise ArchError(f"pool index {idx} out of range 0..{len(self.pool_archs) - 1}")
        return self.pool_archs[int(idx)]

    # ---- sampling and variation inside the pool ---------------------------------------------------
    def sample(self, rng: np.random.Generator):
        return self.pool_archs[int(rng.integers(len(self.pool_archs)))]

    def mutate(self, arch, rng: np.random.Generator, p: float = 0.1):
        a = self.validate(arch)
        if len(self.pool_archs) < 2:
            raise ArchError(f"a pool of {len(self.pool_archs)} arch has nothing to mutate to")
        return self.nearest(super().mutate(a, rng, p), rng, exclude=a)

    def crossover(self, a, b, rng: np.random.Generator):
        return self.nearest(super().crossover(a, b, rng), rng)

    def smallest(self, cost=None):
        """The member nearest to the base space's smallest arch."""
        return self.nearest(super().smallest(cost), np.random.default_rng(0))

    def nearest(self, arch, rng: np.random.Generator, exclude=None):
        """`arch` itself when it is a member (and not `exclude`), else the member with the fewest
        differing one-hot entries (ties drawn with `rng`)."""
        a = self.validate(arch)
        if a in self._pool_pos and a != exclude:
            return a
        if self._pool_onehot is None:
            self._pool_onehot = self.encode_many(self.pool_archs)
        d = np.abs(self._pool_onehot - self.encode(a)[None, :]).sum(axis=1)
        if exclude is not None and exclude in self._pool_pos:
            d[self._pool_pos[exclude]] = np.inf
        best = np.flatnonzero(d == d.min())
        return self.pool_archs[int(best[int(rng.integers(len(best)))])]

    def describe(self) -> dict:
        return {**super().describe(), "size": len(self.pool_archs), "pool": self.pool_source,
                "pool_sha256": self.pool_digest}

    def __repr__(self) -> str:
        return f"PooledSpace(name={self.name!r}, archs={len(self.pool_archs)}, pool={self.pool_source!r})"


def pooled_space(base: SearchSpace, archs: Sequence, source: str = "") -> SearchSpace:
    """`base` confined to `archs` (validated, duplicates dropped, order kept)."""
    if isinstance(base, PoolMixin):
        raise ValueError("the space is already a pool; pool the base space")
    uniq = list(dict.fromkeys(base.validate(a) for a in archs))
    if not uniq:
        raise ValueError(f"pool {source or ''} holds no arch")
    digest = hashlib.sha256("\n".join([base.name, *map(base.to_str, uniq)]).encode()).hexdigest()
    bases = (PoolMixin, type(base)) + (() if isinstance(base, Enumerable) else (Enumerable,))
    # the class name carries the digest: per-process caches keyed by class and size
    # (predictors/cells.py, search/methods/enumerated.py) then never mix two pools of the same size
    name = f"Pooled{type(base).__name__}_{digest[:12]}"
    cls = type(name, bases, {"__qualname__": name, "__module__": __name__})
    space = object.__new__(cls)
    space.__dict__.update(base.__dict__)
    space.pool_digest = digest
    space._setup_pool(uniq, source)
    return space


def read_pool(base: SearchSpace, path: str | os.PathLike) -> SearchSpace:
    """The space of the archs in the `arch_str` column of a table file (Parquet or CSV)."""
    from hwnas.core.paths import expand, portable
    from hwnas.devices.table import read_table_file

    p = Path(expand(path))  # `~`, `$VARS`; an unset variable is an error naming it
    if not p.exists():
        raise FileNotFoundError(f"pool {p} does not exist; give a table with an arch_str column "
                                "(e.g. results/device-bench/mbv3-fmnist/cpu-t1.parquet)")
    df = read_table_file(p)
    if "arch_str" not in df.columns:
        raise ValueError(f"pool {p}: no arch_str column (columns: {', '.join(map(str, df.columns[:8]))}); "
                         "a pool lists its archs in arch_str")
    archs = []
    for i, s in enumerate(df["arch_str"], start=1):
        try:
            archs.append(base.from_str(str(s)))
        except ArchError as exc:
            raise ArchError(f"pool {p} row {i}: {exc}") from None
    return pooled_space(base, archs, source=portable(p))

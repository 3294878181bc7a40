"""Latency look-up tables: the sum of a network's measured blocks plus the fixed parts.

A plain per-block sum is biased (docs/design.md, "Additivity": blocks timed alone see other cache
and scheduling states than inside a network); the calibrated predictor on top of these sums
(latency ~ a + b * table_sum + sum_s c_s * blocks_in_stage_s) is the registered `lut-sum`
predictor with a block table as `lut` (predictors/baselines.py). This module keeps the plain
table and its sums, which the constraint layer reads directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .table import TableError, read_table_file

DEFAULT_COLUMN = "latency_norm_ms"


class BlockTable:
    """Block key -> value from a profile table (`kind` block/fixed rows)."""

    def __init__(self, values: dict[str, float], fixed: dict[str, float], column: str, source: str = ""):
        self.values, self.fixed, self.column, self.source = values, fixed, column, source

    @classmethod
    def from_frame(cls, df: pd.DataFrame, column: str = DEFAULT_COLUMN, source: str = "") -> BlockTable:
        for c in ("block_key", "kind", column):
            if c not in df.columns:
                raise TableError(f"{source or 'table'}: no column {c!r}; is it a `hwnas profile` block table?")
        vals = pd.to_numeric(df[column], errors="coerce")
        bad = df.loc[vals.isna() & df["kind"].isin(["block", "fixed"]), "block_key"].tolist()
        if bad:
            raise TableError(f"{source or 'table'}: column {column!r} is empty for {bad[0]!r} ({len(bad)} rows); "
                             "re-profile them, or use --column latency_ms")
        blocks = dict(zip(df.loc[df["kind"] == "block", "block_key"], vals[df["kind"] == "block"], strict=True))
        fixed = dict(zip(df.loc[df["kind"] == "fixed", "block_key"], vals[df["kind"] == "fixed"], strict=True))
        return cls({k: float(v) for k, v in blocks.items()}, {k: float(v) for k, v in fixed.items()}, column, source)

    @classmethod
    def from_file(cls, path: str | Path, column: str = DEFAULT_COLUMN) -> BlockTable:
        return cls.from_frame(read_table_file(path), column, str(path))

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        missing = [k for k in keys if k not in self.values]
        if missing:
            raise LookupError(f"{self.source or 'table'}: no row for block {missing[0]!r} ({len(set(missing))} missing); "
                              "profile the space first (hwnas profile --resume)")
        return np.array([self.values[k] for k in keys])

    def fixed_sum(self, space) -> float:
        keys = [b.key for b in space.fixed_blocks()]
        missing = [k for k in keys if k not in self.fixed]
        if missing:
            raise LookupError(f"{self.source or 'table'}: no row for fixed part {missing[0]!r}; profile the space first")
        return float(sum(self.fixed[k] for k in keys))

    def network_sum(self, space, arch) -> float:
        """Sum over the arch's block occurrences plus the fixed parts."""
        return float(self.lookup(space.block_keys(arch)).sum()) + self.fixed_sum(space)


def stage_counts(space, arch) -> list[int]:
    """Blocks per stage for chain spaces (arch = one tuple per stage); [n_blocks] otherwise."""
    if isinstance(arch, tuple) and arch and all(isinstance(s, tuple) for s in arch):
        return [len(s) for s in arch]
    return [len(space.blocks(arch))]


def stage_block_values(table: BlockTable, space) -> dict[int, list[float]]:
    """The table values of the blocks each stage can hold (chain spaces; stage 0 holds every
    block elsewhere, as in `stage_counts`)."""
    from hwnas.core.capabilities import Chain

    if not isinstance(space, Chain):
        return {0: list(table.values.values())}
    out: dict[int, list[float]] = {}
    for s, st in enumerate(space.stages):
        firsts = (True, False) if st.max_depth > 1 else (True,)
        keys = {space.block_spec(s, first, ch).key for first in firsts for ch in range(len(st.choices))}
        out[s] = [table.values[k] for k in sorted(keys) if k in table.values]
    return out


def cheapest_arch(table: BlockTable, space):
    """The chain arch with the smallest table sum: minimum depth, the cheapest first and later
    block of each stage. When calibrated block costs are >= 0 it is also the cheapest calibrated
    network (every arch costs at least its minimum-depth truncation)."""
    def pick(s, first):
        return int(np.argmin([table.values.get(space.block_spec(s, first, ch).key, np.inf)
                              for ch in range(len(space.stages[s].choices))]))

    return tuple(tuple(pick(s, b == 0) for b in range(st.min_depth)) for s, st in enumerate(space.stages))


def features(table: BlockTable, space, archs) -> np.ndarray:
    return np.array([[table.network_sum(space, a), *stage_counts(space, a)] for a in archs], dtype=float)


# ---- validate-lut's whole-network calibration of a table ------------------------------------
def calibration_path(table_path: str | Path, column: str = DEFAULT_COLUMN) -> Path:
    """Where `hwnas validate-lut` writes the calibration of `table_path`'s `column`."""
    p = Path(table_path)
    return p.with_name(f"{p.stem}-lut-{'normalised' if column.endswith('_norm_ms') else 'raw'}.json")


def read_calibration(table_path: str | Path, column: str = DEFAULT_COLUMN) -> dict | None:
    """The calibration of this very table (None when validate-lut has not run on it).

    A calibration names the digest of the table it was fitted on; one fitted on an earlier table
    (re-profiled since) is refused with a line saying so. Calibrations written before digests
    were recorded are accepted when newer than the table (file times, as before).
    """
    from hwnas.core.io import file_sha256, read_json

    cp = calibration_path(table_path, column)
    if not cp.exists():
        return None
    doc = read_json(cp, "run `hwnas validate-lut --resume` again", TableError)
    if doc.get("column") != column:
        raise TableError(f"{cp}: calibrates column {doc.get('column')!r}, not {column!r}")
    digest = doc.get("table_sha256")
    if digest is None:
        return doc if cp.stat().st_mtime >= Path(table_path).stat().st_mtime else None
    if digest != file_sha256(table_path):
        raise TableError(f"{cp}: fitted on another version of {Path(table_path).name} (re-profiled since); "
                         "run `hwnas validate-lut --resume` again, or drop ':calibrated'")
    return doc

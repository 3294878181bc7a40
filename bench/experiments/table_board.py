"""A table board on a device-bench pool (`hwnas leaderboard --track mbv3-fmnist-table`).

The pool (`hwnas device-bench`: archs of a chain space, each timed end to end on one device and
trained stand-alone) is searched as a finite space, like NB201: queries read its validation
accuracy, each pick is scored by the test accuracy of the same training run, and the bounds are
quantiles of its measured latency, so regret is exact and every bound is judged by measured
latency on both sides (the pick's and the optimum's). Only query methods run: the one-shot ones
need a supernet, which is the chain track's board (`chain_board`). The statistics, tests and
writing are the NB201 boards' (`leaderboard._write_board`): paired Wilcoxon per cell against
random search and evolution, Holm-corrected over the board's cells.

Any complete pool table works the same (`--pool PATH`: `arch_str`, `val_acc`, `test_acc` and
`latency_ms` columns, every row filled); a pool still being measured is refused with a line saying
how far it got, since regret against a part of the pool would not be the pool's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hwnas.core import paths
from hwnas.devices.table import read_table_file
from hwnas.search.constraints import Constraint, make_constraint

from ..engine import search as search_pipeline
from . import leaderboard

TRACK = "mbv3-fmnist-table"
SPACE = "mbv3-fmnist"
DEFAULT_POOL = paths.RESULTS_DIR / "device-bench" / SPACE / "cpu-t1.parquet"
QUANTILES = (0.10, 0.25, 0.50, 0.75)
BUDGETS = (20, 50)
SEEDS = 50
#: what the queries read, what scores a pick, what the bounds constrain
READ, SCORE, LATENCY = "val_acc", "test_acc", "latency_ms"
ABOUT = ("the {quantiles} quantiles of the latency measured end to end (`" + LATENCY + "`) over the "
         "{n} archs of the pool `{pool}`; picks and the optimum are judged by the same measured latency. Budget "
         "= distinct pool archs whose accuracy a method read.")


@dataclass(frozen=True)
class TableTrack:
    """What a table board searches: the pool, its accuracy and truth specs, and its bounds."""

    pool: Path
    device: str
    n_archs: int
    accuracy: str
    truth: str
    constraints: tuple[Constraint, ...]
    where: dict[str, tuple[str, float]]

    @property
    def about(self) -> str:
        return ABOUT.replace("{n}", f"{self.n_archs:,}").replace("{pool}", self.pool.name)


def table_track(pool: str | os.PathLike = DEFAULT_POOL, quantiles=QUANTILES, space: str = SPACE) -> TableTrack:
    """The board's specs and bounds from a complete pool table (refused, with counts, if it is not)."""
    from hwnas.search.spaces import create_space
    from hwnas.search.spaces.pool import read_pool

    path = Path(paths.expand(str(pool)))
    if not path.exists():
        raise FileNotFoundError(f"pool table {path} does not exist; make it with `make device-bench` "
                                "(or give --pool a table with arch_str, val_acc, test_acc and latency_ms)")
    df = read_table_file(path)
    missing = [c for c in ("arch_str", READ, SCORE, LATENCY) if c not in df.columns]
    if missing:
        raise ValueError(f"pool table {path}: no column {missing[0]!r}; a table board needs arch_str, {READ}, "
                         f"{SCORE} and {LATENCY}")
    gaps = {c: int(df[c].isna().sum()) for c in (READ, SCORE, LATENCY) if df[c].isna().any()}
    if gaps:
        raise ValueError(f"pool table {path}: not complete ({', '.join(f'{n} of {len(df)} rows lack {c}' for c, n in gaps.items())}); "
                         "finish it (`make device-bench` resumes every stage) before its board: regret against a "
                         "part of the pool would not be the pool's")
    sp = read_pool(create_space(space), path)
    spec = paths.portable(path)  # the data folder's or the repository's own path, as a board commits it
    if path.is_absolute() and spec == path.name:  # elsewhere: as it is, so that it reads back here
        spec = path.as_posix()
    source = f"table:{spec}:{LATENCY}:ms"
    device = path.stem
    cons, where = [], {}
    for q in quantiles:
        b = float(f"{search_pipeline.bound_at_quantile(sp, LATENCY, source, q):.4g}")
        c = make_constraint(LATENCY, source, b)
        cons.append(c)
        where[c.text] = (device, float(q))
    return TableTrack(path, device, len(df), f"table:{spec}:{READ}", f"table:{spec}:{SCORE}", tuple(cons), where)


def run(out: str | os.PathLike = paths.LEADERBOARDS_DIR, pool: str | os.PathLike = DEFAULT_POOL,
        methods: list[str] | None = None, seeds: int = SEEDS, budgets: tuple[int, ...] = BUDGETS, quantile=None,
        params: dict[str, dict] | None = None, progress: bool = True, executor: str = "serial",
        workers: int | None = None, tables_dir: str | os.PathLike = paths.TABLES_DIR,
        track: str = TRACK, space: str = SPACE) -> Path:
    """Run (resumably) and write OUT/<track>.md|csv|png."""
    from hwnas.search.methods import list_methods

    out = Path(out)
    qs = _quantiles(quantile)
    t = table_track(pool, qs, space)
    if methods is None:  # query methods only: the one-shot ones are the chain track's (chain_board)
        methods = list(list_methods(supports=space, kind="query"))
    df = search_pipeline.run(space, methods, t.accuracy, list(t.constraints), budgets, seeds, out / f"{track}-runs",
                             params=params, tables_dir=tables_dir, progress=progress, executor=executor,
                             workers=workers, truth=t.truth, pool=t.pool)
    return _write(t, track, out, df, methods, seeds, budgets, qs, space, tables_dir)


def report(out: str | os.PathLike = paths.LEADERBOARDS_DIR, pool: str | os.PathLike = DEFAULT_POOL,
           seeds: int = SEEDS, budgets: tuple[int, ...] = BUDGETS, quantile=None,
           tables_dir: str | os.PathLike = paths.TABLES_DIR, track: str = TRACK, space: str = SPACE) -> Path:
    """Rewrite OUT/<track>.md|csv|png from the runs already in OUT/<track>-runs, running nothing
    (an interrupted board says how far it got; `run` resumes the rest)."""
    import pandas as pd

    out = Path(out)
    runs = out / f"{track}-runs" / "runs.csv"
    if not runs.exists():
        raise FileNotFoundError(f"{runs}: no runs to report; run the board first (without --report-only)")
    qs = _quantiles(quantile)
    df = pd.read_csv(runs)
    return _write(table_track(pool, qs, space), track, out, df, sorted(df.method.unique()), seeds, budgets, qs,
                  space, tables_dir)


def _quantiles(quantile) -> tuple[float, ...]:
    return (quantile,) if isinstance(quantile, int | float) else tuple(quantile or QUANTILES)


def _write(t: TableTrack, track, out, df, methods, seeds, budgets, qs, space, tables_dir) -> Path:
    """The NB201 boards' statistics and writer, with this board's bounds text and make target."""
    return leaderboard._write_board(track, out, df, [c.text for c in t.constraints], t.where, t.accuracy, t.truth,
                                    methods, seeds, budgets, qs, space, "fashion-mnist", tables_dir, about=t.about,
                                    make="make leaderboard-table")

"""The evaluation engine of the predictor comparison (`hwnas predictors evaluate` / `standard`).

The engine computes and stores rows only: the experiments of `make predictors` are records in
predictor_experiments.py (run by predictor_standard.py), and the summaries and plots are the
report's (predictor_report.py).

For each predictor, train size and seed: train on a random subset (seed's permutation, prefix of
that size, so sizes are nested), test on every remaining row. Rows are appended to
DIR/rank_correlation.csv atomically after each fit, so a killed run resumes where it stopped.
Same seeds -> identical CSV except the timing columns `fit_seconds` and `predict_seconds`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine.store import locked_output, read_csv_rows, read_json_file
from hwnas.core import paths
from hwnas.core.io import atomic_write_bytes, file_sha256
from hwnas.core.log import bars_off
from hwnas.devices.table import import_arch_table, parse_table_spec, read_table_file
from hwnas.predictors.base import create_predictor, list_predictors
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.predictors.transfer import PriorTables

__all__ = ["ACCURACY_PREDICTORS", "COST_PREDICTORS", "evaluate", "load_prior", "load_target", "split"]

log = logging.getLogger(__name__)

#: The predictors compared by default (`hwnas predictors evaluate` without --predictors).
ACCURACY_PREDICTORS = ("auto", "bilinear", "bilinear-struct", "gcn", "gcn-struct", "xgb", "xgb-struct",
                       "xgb-graf", "xgb-graf-struct", "rf", "rf-graf", "mlp", "mlp-graf", "ridge",
                       "ridge-struct", "ridge-graf", "knn", "knn-graf")
COST_PREDICTORS = ACCURACY_PREDICTORS + ("ridge-ops", "ridge-cost", "lut-sum")

COLUMNS = ["predictor", "train_size", "seed", "kendall_tau", "spearman", "pearson", "mae", "rmse",
           "precision_at_top5pct", "within_10pct", "n_test", "fit_seconds", "predict_seconds"]
TIMING_COLUMNS = ["fit_seconds", "predict_seconds"]
_COST_HINTS = ("latency", "energy", "_ms", "_mj", "mem", "_bytes")


@dataclass
class Target:
    archs: list
    arch_strs: list[str]
    y: np.ndarray
    source: str
    column: str
    cost: bool


_IMPORTED: dict[tuple, pd.DataFrame] = {}


def _import_columns(path, space, columns: list[str]) -> pd.DataFrame:
    """`import_arch_table(path, space, columns)`, with every metric column of a file imported
    once per process (the standard comparison reads the HELP table for 29 experiments; parsing
    its 15,625 arch strings took seconds each time). A file whose other columns do not import
    (NaN, negative values) is read per call, as before."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, repr(space.describe()))  # every space describes itself
    full = _IMPORTED.get(key)
    if full is None:
        try:
            full = import_arch_table(p, space, None)
        except (ValueError, LookupError):
            return import_arch_table(p, space, list(columns))
        if len(_IMPORTED) >= 4:  # a few tables at a time: the experiments go file by file
            _IMPORTED.clear()
        _IMPORTED[key] = full
    if not all(c in full.columns for c in columns):
        return import_arch_table(p, space, list(columns))
    return full[[c for c in ("arch_str", "arch_idx") if c in full.columns] + list(columns)].copy()


def load_target(space, spec: str, target: str | None, mode: str = "auto") -> Target:
    """Read a table SPEC (`table:PATH:COLUMN`, `PATH:COLUMN` or `PATH` + `target`).

    Files with repeated archs (`hwnas sample` writes one row per evaluation seed) are averaged
    per arch. A NaN in the target column is an error naming the row.
    """
    path, col = parse_table_spec(spec)
    if col and target and col != target:
        raise ValueError(f"table spec {spec!r} names column {col!r} but --target is {target!r}; give one")
    column = col or target
    if not column:
        raise ValueError(f"no target column: use --target COLUMN or the form table:{path}:COLUMN")
    df = read_table_file(path)
    key = next((k for k in ("arch_str", "op_idx_list", "arch_idx") if k in df.columns), None)
    src = Path(path)
    if key and column in df.columns and df[key].duplicated().any():
        if df[column].isna().any():
            bad = int(np.flatnonzero(df[column].isna().to_numpy())[0]) + 1
            raise ValueError(f"{path} row {bad}: column {column!r} is empty (NaN); drop or fill those rows")
        agg = df.groupby(key, sort=False, as_index=False)[column].mean()
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d) / (src.stem + ".parquet")
            agg.to_parquet(tmp, index=False)
            table = import_arch_table(tmp, space, [column])
    else:
        table = _import_columns(path, space, [column])
    arch_strs = table["arch_str"].tolist()
    archs = [space.validate(space.from_str(s)) for s in arch_strs]  # canonical once (_predict_validated)
    if mode == "auto":
        name = f"{column} {src.name}".lower()
        cost = any(h in name for h in _COST_HINTS)
    else:
        cost = mode == "cost"
    return Target(archs, arch_strs, table[column].to_numpy(np.float64), str(path), column, cost)


def load_prior(space, specs: list[str], target: Target) -> PriorTables:
    """Other devices' columns over the target table's archs (each SPEC: PATH:COLUMN)."""
    by_path: dict[str, list[str]] = {}
    for spec in specs:
        path, col = parse_table_spec(spec)
        if not col:
            raise ValueError(f"prior table spec {spec!r} needs a column: PATH:COLUMN")
        if Path(path).resolve() == Path(target.source).resolve() and col == target.column:
            raise ValueError(f"prior table {spec!r} is the target itself; a prior must be another device")
        by_path.setdefault(path, []).append(col)
    cols, values = [], []
    for path, path_cols in by_path.items():  # one read per file, however many columns
        t = _import_columns(path, space, path_cols)
        row = {a: i for i, a in enumerate(t["arch_str"])}
        missing = [a for a in target.arch_strs if a not in row]
        if missing:
            raise ValueError(f"prior table {path} has no row for {len(missing)} arch(s) of the target, e.g. {missing[0][:60]!r}")
        idx = np.asarray([row[a] for a in target.arch_strs])
        for col in path_cols:
            cols.append(f"{Path(path).stem}:{col}")
            values.append(t[col].to_numpy(np.float64)[idx])
    return PriorTables(list(target.arch_strs), cols, np.asarray(values, dtype=np.float64).T)


def target_params(name: str, cost: bool) -> dict:
    """What a predictor that takes the target kind (`auto`) is told about this table."""
    import inspect

    from hwnas.predictors.base import predictor_class

    params = inspect.signature(predictor_class(name).__init__).parameters
    return {"target": "cost" if cost else "accuracy"} if "target" in params else {}


def split(n_rows: int, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_rows)
    return perm[:train_size], perm[train_size:]


@locked_output()  # one writer per --out (core/lock.py)
def evaluate(space, table: str, target: str | None, out: str | os.PathLike,
             predictors: list[str] | None = None, train_sizes: tuple[int, ...] = (10, 100, 1000),
             seeds: int = 5, prior_tables: list[str] | None = None, mode: str = "auto",
             fresh: bool = False, progress: bool = True, title: str | None = None,
             size_limits: dict[str, int] | None = None, fit: bool = True) -> pd.DataFrame:
    """Run the comparison into `out`; returns the rows. Validates everything before fitting.

    `size_limits` caps the train size per predictor (e.g. {"auto": 100}: the slow ones skip 1000).
    `fit=False` fits nothing: the rows already in `out` are returned. The summary and the plot
    are the report's (`predictor_report.report_evaluation`); the engine writes only rows.
    """
    limits = dict(size_limits or {})
    from hwnas.search.spaces import create_space
    from tqdm import tqdm

    space = create_space(space) if isinstance(space, str) else space
    t = load_target(space, table, target, mode)
    names = list(predictors) if predictors else list(COST_PREDICTORS if t.cost else ACCURACY_PREDICTORS)
    if prior_tables and not predictors and "transfer" not in names:
        names.append("transfer")
    known = set(list_predictors())
    for n in names:
        if n not in known:
            raise LookupError(f"unknown predictor {n!r}; known: {', '.join(sorted(known))}")
    sizes = sorted({int(s) for s in train_sizes})
    if not sizes or sizes[0] < 2:
        raise ValueError(f"train sizes must be >= 2, got {train_sizes}")
    if sizes[-1] > len(t.y) - 2:
        raise ValueError(f"train size {sizes[-1]} is larger than the table allows ({len(t.y)} rows, "
                         f"at least 2 kept for testing); use --train-sizes up to {len(t.y) - 2}")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    prior = load_prior(space, prior_tables, t) if prior_tables else None

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # the input files' bytes are part of the provenance: a resumed run never mixes rows computed
    # on another version of a table (same path, other contents) into this one's CSV
    files = dict.fromkeys([t.source] + [parse_table_spec(sp)[0] for sp in (prior_tables or [])])
    config = paths.portable_doc({"space": space.name, "table": t.source, "target": t.column, "cost": t.cost,
                                 "prior_tables": list(prior_tables or []), "n_rows": len(t.y),
                                 "sha256": {paths.portable_spec(f): file_sha256(f) for f in files}})
    csv_path, cfg_path = out / "rank_correlation.csv", out / "config.json"
    rows: list[dict] = []
    if csv_path.exists() and not fresh:
        old_cfg = paths.portable_doc(read_json_file(cfg_path, "predictor comparison config")) if cfg_path.exists() else None
        if old_cfg != config:
            raise StaleResults(_mismatch(out, old_cfg, config))
        rows = read_csv_rows(csv_path, ["predictor", "train_size", "seed"], "rank-correlation table").to_dict("records")
    atomic_write_bytes(cfg_path, (json.dumps(config, indent=2) + "\n").encode())
    done = {(r["predictor"], int(r["train_size"]), int(r["seed"])) for r in rows}
    jobs = [(n, s, k) for n in names for s in sizes for k in range(seeds)
            if fit and (n, s, k) not in done and s <= limits.get(n, s)]
    bar = tqdm(jobs, desc=title or out.name, disable=bars_off() or not progress, unit="fit")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # BLAS / OpenMP: one core per fit (2 shared cores here;
        _run_jobs(bar, t, space, prior, csv_path, rows, names, sizes)  # threads fought: mlp-graf 195 s)
    df = _write_rows(csv_path, rows, names, sizes)
    df = df[df.predictor.isin(names) & df.train_size.isin(sizes) & (df.seed < seeds)]
    df = df[df.train_size <= df.predictor.map(limits).fillna(np.inf)]
    return df


class StaleResults(ValueError):
    """A comparison folder whose rows were computed on other inputs than the ones given."""


def _mismatch(out: Path, old: dict | None, new: dict) -> str:
    """One line: why `out` cannot be resumed (the first differing field, table contents named)."""
    if old is None:
        return f"{out} holds a rank_correlation.csv but no config.json; use another --out or --fresh"
    if {k: v for k, v in old.items() if k != "sha256"} == {k: v for k, v in new.items() if k != "sha256"}:
        was, now = old.get("sha256") or {}, new["sha256"]
        changed = [f for f in now if was.get(f) != now[f]]
        if not was:
            return (f"{out} was computed before input tables were fingerprinted (no sha256 in its config.json): "
                    "it cannot be checked against the tables now; use --fresh to recompute it or another --out")
        return (f"{out} was computed on other contents of {', '.join(changed)} (sha256 {was.get(changed[0], '?')[:12]} "
                f"then, {now[changed[0]][:12]} now); use --fresh to recompute it or another --out")
    return f"{out} holds results of another comparison ({old}); use another --out or --fresh"


def _run_jobs(bar, t: Target, space, prior, csv_path: Path, rows: list[dict], names: list[str], sizes: list[int]) -> None:
    for name, size, seed in bar:
        bar.set_postfix_str(f"{name} n={size} seed={seed}")
        tr, te = split(len(t.y), size, seed)
        model = create_predictor(name, space=space, seed=seed, **target_params(name, t.cost))
        t0 = time.perf_counter()
        model.fit([t.archs[i] for i in tr], t.y[tr], prior=prior if model.uses_prior else None)
        t1 = time.perf_counter()
        pred = _predict_validated(model, [t.archs[i] for i in te])
        t2 = time.perf_counter()
        m = evaluate_predictions(t.y[te], pred, cost=t.cost)
        row = {"predictor": name, "train_size": size, "seed": seed,
               **{k: round(v, 8) for k, v in m.items()}, "n_test": len(te),
               "fit_seconds": round(t1 - t0, 4), "predict_seconds": round(t2 - t1, 4)}
        rows.append(row)
        _write_rows(csv_path, rows, names, sizes)


def _predict_validated(model, archs: list, chunk: int = 4096) -> np.ndarray:
    """`model.predict(archs)` for archs the table import already made canonical (`from_str`):
    `predict` would validate all ~15,600 test cells again for every fit (a Python loop that
    cost about as much as a ridge's whole fit and predict)."""
    model._check_fitted()
    out = [np.asarray(model._predict(archs[i:i + chunk]), dtype=np.float64).ravel() for i in range(0, len(archs), chunk)]
    return np.concatenate(out) if out else np.zeros(0)


def _write_rows(path: Path, rows: list[dict], names: list[str], sizes: list[int]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {n: i for i, n in enumerate(names)}
    df = df.assign(_o=df.predictor.map(order).fillna(len(order))).sort_values(
        ["_o", "predictor", "train_size", "seed"], kind="stable").drop(columns="_o").reset_index(drop=True)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())
    return df


# ---- the standard comparison (`make predictors`) ------------------------------------------
#: Further studies run after the standard experiments: each is called as
#: `study(out_root, data_dir, seeds, only, progress)` and returns summary lines (or []).

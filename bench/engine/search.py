"""`hwnas search`: run methods x constraints x seeds under a query budget, resumably.

Each finished run is one row of `OUT/runs.csv` (written atomically at most every `FLUSH_S`
seconds and when the search stops, so a killed job loses at most the runs of those seconds and
`--resume` picks up the rest) and its best-so-far curve
goes to `OUT/trajectories.parquet` (a row per query: Parquet keeps it small). Where the space is finite and the accuracy source is a table, the
exact constrained optimum is computed once per constraint and every row gets its regret.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine.store import locked_output, resume_runs, source_digest
from hwnas.core.capabilities import is_enumerable
from hwnas.core.io import atomic_write_bytes
from hwnas.core.log import bars_off
from hwnas.core.paths import TABLES_DIR, portable_spec
from hwnas.search.accuracy import accuracy_source
from hwnas.search.budget import check_budgets, clamp_budgets
from hwnas.search.constraints import Constraint, cost_model, make_constraint

RUN_KEY = ["method", "constraint", "budget", "seed"]
#: finished runs are written at most this often (seconds; 0: after every run): a kill loses at
#: most the runs of the last FLUSH_S seconds, which a resume runs again
FLUSH_S = 10.0


def parse_params(items: Sequence[str]) -> dict[str, dict]:
    """'evolution.population=20' -> {'evolution': {'population': 20}} (values read as JSON when they parse)."""
    out: dict[str, dict] = {}
    for it in items:
        key, sep, value = it.partition("=")
        method, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise ValueError(f"method parameter {it!r} is not METHOD.PARAM=VALUE, e.g. evolution.population=20")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        out.setdefault(method, {})[param] = v
    return out


@locked_output()  # one writer per --out (core/lock.py)
def run(space_name: str, methods: Sequence[str], accuracy: str, constraints: Sequence[str | Constraint],
        budgets: Sequence[int], seeds: int, out: str | os.PathLike, params: dict[str, dict] | None = None,
        data: str = "fashion-mnist", tables_dir: str | os.PathLike = TABLES_DIR,
        resume: bool = True, progress: bool = True, executor: str = "serial",
        workers: int | None = None, truth: str | None = None,
        estimate_store: str | os.PathLike | None = None, adopt: bool = False,
        pool: str | os.PathLike | None = None, final_reads: int | None = None) -> pd.DataFrame:
    """Every (method, constraint, budget, seed) not yet in OUT; returns all rows.

    `constraints`: texts (`latency_ms<=25@cpu-t1`) or Constraint objects built from numbers
    (search.constraints.make_constraint); a row's `constraint` is the text.
    Methods read `accuracy` (the counted queries). `truth` (table:PATH:COLUMN), when given,
    scores every pick: each row gets `accuracy` (as read), `true_accuracy` (the truth's) and
    `regret` against the exact constrained optimum of the truth. Without it the accuracy source
    is the truth. `estimate_store` (a folder) shares a supernet source's estimates between runs,
    each run charged what an estimate cost when made. `$VARS` in specs (e.g. `$HWNAS_DATA_DIR`)
    are expanded when read (core.paths.expand), so rows can name tables without a machine's absolute path; the
    files they name are hashed after that expansion. Rows in OUT without its provenance.json are
    refused unless `adopt` (or `resume=False`, which backs them up).
    `pool` (a table with an `arch_str` column) confines every method to those archs, searched as
    a finite space (search/spaces/pool.py): exact optima and regret, like NB201.
    `final_reads` (k): every method, query and one-shot, ends with the same k final validation
    reads (Searcher.search's uniform rule); each row then carries the method's own top-1 pick
    (`model_arch_str`, k = 0) beside its k-validated pick (`arch_str`). None: each method's own rule.

    Runs are independent: `executor="process"` or `"ray"` (search/supernet/executor.py) spreads
    them over workers that each load the problem once; rows are still written in job order.
    """
    from hwnas.search.methods import create_method, list_methods, method_meta, method_supports
    from hwnas.search.methods.base import protocol_version
    from hwnas.search.optimum import exact_optimum
    from hwnas.search.supernet.executor import create_executor
    from tqdm import tqdm

    # rows and provenance name data portably ($HWNAS_DATA_DIR/..., repository-relative), never by
    # this machine's absolute path; `_load_problem` expands them again
    accuracy, truth = portable_spec(accuracy, True), truth and portable_spec(truth, True)
    constraints = [_portable(c) for c in constraints]
    known = list_methods()
    for m in methods:
        if m not in known:
            raise LookupError(f"unknown method {m!r}; known: {', '.join(known)}")
    params = params or {}
    for m in params:
        if m not in methods:
            raise ValueError(f"parameters given for {m!r}, which is not among the methods run ({', '.join(methods)})")
    if not constraints:
        raise ValueError("give at least one --constraint, e.g. 'latency_ms<=25@cpu-t1'")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1 (got {seeds})")
    check_budgets(budgets)
    for m in methods:  # unknown or bad parameters fail before any table is read or run made
        create_method(m, **params.get(m, {}))
    problem = (space_name, accuracy, tuple(constraints), data, str(tables_dir), truth,
               None if estimate_store is None else str(estimate_store), None if pool is None else str(pool))
    space, acc, bound, truth_src = _load_problem(*problem)
    budgets = clamp_budgets(space, budgets)
    for m in methods:
        if not method_supports(m, space):
            raise ValueError(f"method {m!r} does not support space {space.name!r}; it runs on "
                             f"{', '.join(method_meta(m).get('supports', ('any',)))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs_csv, traj_path = out / "runs.csv", out / "trajectories.parquet"
    facts = {"space": space.name, "accuracy": accuracy, "data": data, "accuracy_sha256": source_digest(accuracy),
             "params": params, "truth": truth, "truth_sha256": truth and source_digest(truth),
             **({"pool": getattr(space, "pool_source", None), "pool_sha256": space.pool_digest} if pool else {}),
             **_cost_digests(bound), **({"final_reads": int(final_reads)} if final_reads is not None else {})}
    rows, traj = resume_runs(out, RUN_KEY, resume, facts, adopt=adopt)
    versions = {m: method_version(m, space) for m in methods}
    rows, traj = _drop_superseded(out, rows, traj, versions, protocol_version(space), final_reads)
    done = {tuple(r[k] for k in RUN_KEY) for r in rows}

    optimum: dict[str, object] = {}
    if is_enumerable(space) and (truth or accuracy).startswith("table:"):
        for c, b in bound.items():
            optimum[c] = exact_optimum(space, truth_src, [b])

    # seed-major: a search stopped part-way leaves the first seeds of every cell, paired across methods
    jobs = [(m, c, int(b), s, params.get(m, {}), final_reads) for s in range(seeds) for c in map(_key, constraints) for b in budgets
            for m in methods if (m, c, int(b), s) not in done]
    if not jobs:
        return pd.DataFrame(rows)
    bar = tqdm(total=len(jobs), desc=f"search {space.name}", disable=bars_off() or not progress, unit="run")
    ex = create_executor(executor, workers)
    if executor == "serial":  # in-process: the problem loaded above serves as is
        _WORKER["problem"] = (space, acc, bound, truth_src)
    else:
        ex.start(_init_worker, problem)
    curves = [pd.DataFrame(traj)]  # one frame per flush: rewriting a board's million curve rows from
    new: list[dict] = []  # dicts after every run cost seconds per run (quadratic in the runs)
    last = time.monotonic()

    def flush():
        nonlocal last
        if new:
            curves[:] = [pd.concat([*curves, pd.DataFrame(new)], ignore_index=True)]
            new.clear()
        _write(traj_path, curves[0])  # the curves first: a kill between the two never leaves a run without one
        _write(runs_csv, rows)
        last = time.monotonic()

    try:
        with ex:
            for row, curve in ex.map(_run_one, jobs):
                opt = optimum.get(row["constraint"])
                if opt is not None:
                    row.update(optimum_accuracy=opt.accuracy, regret=opt.accuracy - row["true_accuracy"],
                               n_feasible=opt.n_feasible)
                    if row.get("model_arch_str"):
                        row["model_regret"] = opt.accuracy - row["model_true_accuracy"]
                rows.append(row)
                new.extend(curve)
                if time.monotonic() - last >= FLUSH_S:
                    flush()
                bar.set_postfix_str(f"{row['method']} budget={row['budget']} seed={row['seed']}")
                bar.update()
    finally:
        if new:  # also when stopped (Ctrl-C, an error): what finished is kept
            flush()
    bar.close()
    return pd.DataFrame(rows)


def method_version(name: str, space=None) -> int:
    """The method's code version on `space` (`register_method(..., version=N)`, 1 when not
    given): raised when a change alters which archs the method reads or returns, so runs of the
    old code are not mixed silently with runs of the new one. `version={"nb201": 2}` versions
    the code per space (keys as in `supports=`; spaces no key covers: 1), so a change to what a
    method does on one space does not send another space's runs to be redone."""
    from hwnas.search.methods import method_meta
    from hwnas.search.methods.base import supports_space

    v = method_meta(name).get("version", 1)
    if not isinstance(v, dict):
        return int(v)
    if space is None:
        raise ValueError(f"method {name!r} is versioned per space; say which space")
    return int(next((n for k, n in v.items() if supports_space((k,), space)), 1))


def _drop_superseded(out: Path, rows: list[dict], traj: list[dict], versions: dict[str, int], protocol: int = 1,
                     final_reads: int | None = None):
    """Rows (and curves) of a method made by another version of its code than the current one
    (no `method_version`: version 1), or under another query protocol (`protocol_version`; no
    `protocol`: 1), or under another final-validation rule (`final_reads`; none: each method's
    own rule), are moved to OUT/superseded-runs.csv and run again."""
    import logging

    def ver(r, col="method_version"):
        v = r.get(col)
        return 1 if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)

    def rule(r):
        v = r.get("final_reads")
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)

    old = [r for r in rows if r["method"] in versions
           and (ver(r) != versions[r["method"]] or ver(r, "protocol") != protocol or rule(r) != final_reads)]
    if not old:
        return rows, traj
    gone = {tuple(r[k] for k in RUN_KEY) for r in old}
    prev = out / "superseded-runs.csv"
    kept_before = pd.read_csv(prev).to_dict("records") if prev.exists() else []
    _write(prev, kept_before + old)
    for m in sorted({r["method"] for r in old}):
        n = sum(r["method"] == m for r in old)
        logging.getLogger("hwnas").warning("%s: %d run(s) of %s were made by version %s of the method (now %d) "
                                           "under query protocol %s (now %d), final reads %s (now %s); moved to %s, "
                                           "they run again", out, n, m,
                                           sorted({ver(r) for r in old if r["method"] == m}), versions[m],
                                           sorted({ver(r, "protocol") for r in old if r["method"] == m}), protocol,
                                           sorted({str(rule(r)) for r in old if r["method"] == m}), final_reads,
                                           prev.name)
    rows = [r for r in rows if tuple(r[k] for k in RUN_KEY) not in gone]
    traj = [t for t in traj if tuple(t[k] for k in RUN_KEY) not in gone]
    _write(out / "runs.csv", rows)
    _write(out / "trajectories.parquet", traj)
    return rows, traj


def _load_problem(space_name: str, accuracy: str, constraints: tuple[str | Constraint, ...], data: str,
                  tables_dir: str,
                  truth: str | None = None, estimate_store: str | None = None, pool: str | None = None,
                  evaluator: str = "process"):
    from hwnas.search.constraints import resolve
    from hwnas.search.spaces import create_space

    space = create_space(space_name)
    if pool is not None:
        from hwnas.search.spaces.pool import read_pool

        space = read_pool(space, pool)
    bound = {_key(c): resolve(space, [c], tables_dir)[0] for c in constraints}  # paths: core.paths.expand
    acc = accuracy_source(space, accuracy, data, estimate_store, evaluator)
    if truth is None:
        return space, acc, bound, acc
    if not truth.startswith("table:"):
        raise ValueError(f"--truth {truth!r}: expected table:PATH:COLUMN")
    return space, acc, bound, accuracy_source(space, truth, data)


def _key(constraint: str | Constraint) -> str:
    """A constraint's row key: the text it was given as, or the one a Constraint states."""
    return constraint if isinstance(constraint, str) else constraint.text


def _portable(constraint: str | Constraint) -> str | Constraint:
    """A constraint naming data by `$HWNAS_DATA_DIR/...` rather than this machine's path (rows,
    provenance); a Constraint keeps its bound, the number it was built from."""
    if isinstance(constraint, str):
        return portable_spec(constraint, True)
    return dataclasses.replace(constraint, source=portable_spec(constraint.source, True),
                               text=portable_spec(constraint.text, True))


def _cost_digests(bound: dict) -> dict:
    """`cost_sha256 <constraint>` -> content hashes of the files its costs are read from, one
    fact per constraint, so runs of another constraint can join the same folder later while a
    table that changed under a constraint already run is refused on resume."""
    from hwnas.core.io import file_sha256

    files = {p for b in bound.values() for p in b.cost.sources if Path(p).is_file()}
    sha = {p: file_sha256(p) for p in files}  # a board's constraints share one table: hash it once
    return {f"cost_sha256 {c}": ",".join(sha[p] for p in b.cost.sources if p in sha) or None
            for c, b in bound.items()}


_WORKER: dict = {}


def _init_worker(space_name, accuracy, constraints, data, tables_dir, truth=None, estimate_store=None,
                 pool=None, threads=None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    # a pool worker scores its subnets itself: the runs already fill the cores, and a pool started
    # in a spawned worker is never shut down (the worker joins its children before they are told
    # to quit, so the search hung at exit with every run written)
    _WORKER["problem"] = _load_problem(space_name, accuracy, constraints, data, tables_dir, truth, estimate_store,
                                       pool, evaluator="serial")


def _run_one(job) -> tuple[dict, list[dict]]:
    from hwnas.search.methods import create_method
    from hwnas.search.methods.base import protocol_version
    from hwnas.search.methods.oneshot import cpu_seconds

    m, c, b, s, kw, k = job
    space, acc, bound, truth = _WORKER["problem"]
    c0, q0 = cpu_seconds(), acc.remote_cpu_seconds()
    r = create_method(m, **kw).search(space, acc, [bound[c]], budget=b, seed=s, final_reads=k)
    # one-shot results time their own process; every method pays for its queries' evaluation
    own = getattr(r, "search_cpu_s", None)
    cpu = (cpu_seconds() - c0 if own is None else own) + acc.remote_cpu_seconds() - q0
    true_acc = r.accuracy if truth is acc else float(truth.peek([r.arch])[0])
    row = {"method": m, "constraint": c, "budget": b, "seed": s, "space": space.name, "accuracy_source": acc.name,
           "truth": truth.name, "arch_str": r.arch_str, "accuracy": r.accuracy, "true_accuracy": true_acc,
           "predicted_accuracy": r.predicted_accuracy,
           "cost": next(iter(r.costs.values())), "bound": bound[c].constraint.bound,
           "cost_metric": bound[c].constraint.metric, "feasible": r.feasible, "queries": r.queries,
           "wall_seconds": round(r.wall_seconds, 3), "search_cpu_s": round(cpu, 2), "notes": r.notes,
           "method_version": method_version(m, space), "protocol": protocol_version(space),
           **({"final_reads": k, "final_rank": r.final_rank} if k is not None else {}),
           **{k: getattr(r, k) for k in ("supernet_cpu_s", "supernet_train_acc", "supernet_val_acc") if hasattr(r, k)}}
    if r.model_arch is not None:  # the method's own fitted pick, scored like the returned one
        row.update(model_arch_str=space.to_str(r.model_arch), model_predicted=r.model_predicted,
                   model_accuracy=float(acc.peek([r.model_arch])[0]),
                   model_true_accuracy=float(truth.peek([r.model_arch])[0]),
                   model_feasible=bool(bound[c].feasible([r.model_arch])[0]),
                   model_cost=float(bound[c].values([r.model_arch])[0]))
    return row, _curve(m, c, b, s, r, acc, space, bound[c])


def _curve(m, c, b, s, r, acc, space, bound) -> list[dict]:
    """One row per query: the best feasible accuracy so far and what was read (the arch, its
    accuracy and its cost under the run's constraint), for the plots of `search_plots`."""
    read = acc.history()
    costs = bound.values([space.from_str(k) for k, _ in read]) if read else []
    rows = []
    for i, v in enumerate(r.best_so_far):
        row = {"method": m, "constraint": c, "budget": b, "seed": s, "query": i + 1, "best_accuracy": v}
        if i < len(read):
            row.update(arch_str=read[i][0], read_accuracy=read[i][1], read_cost=float(costs[i]))
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict] | pd.DataFrame) -> None:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    atomic_write_bytes(path, df.to_parquet(index=False) if path.suffix == ".parquet" else df.to_csv(index=False).encode())


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per method, constraint and budget (the leaderboard's rows)."""
    g = df.groupby(["constraint", "budget", "method"], sort=False)
    cols = {"accuracy": ["mean", "std"], **({"true_accuracy": ["mean"]} if "true_accuracy" in df else {}),
            "feasible": ["mean"], "queries": ["mean"], "wall_seconds": ["median"],
            "seed": ["count"]}
    if "regret" in df.columns:
        cols["regret"] = ["mean", "std"]
    s = g.agg(cols)
    s.columns = ["_".join(c) for c in s.columns]
    return s.reset_index().rename(columns={"seed_count": "runs", "feasible_mean": "feasible_rate"})


def bound_at_quantile(space, metric: str, source: str, q: float, tables_dir: str | os.PathLike = TABLES_DIR,
                      n: int = 4000, seed: int = 0) -> float:
    """The q-quantile of `metric` measured on `source` over the space (all archs if finite, else
    n samples): a budget that binds, stated with its quantile so users know how tight it is."""
    cm = cost_model(space, make_constraint(metric, source), tables_dir)
    if is_enumerable(space):
        archs = list(space.iter_all())
    else:
        archs = space.sample_many(n, np.random.default_rng(seed))
    return float(np.quantile(cm.predict(archs), q))

"""`hwnas leaderboard`: every method under the same measured constraints and query budget.

Tracks (the field's protocol, NAS-Bench-201 / NASLib: search on validation, score on test):
- `nb201`: queries read the NB201 cifar10-valid validation accuracy (cells trained 200 epochs on
  25k images, `nb201-cifar10valid-200ep`); every pick is scored by the CIFAR-10 200-epoch test
  accuracy (the truth), regret against the exact constrained optimum of that truth. Constraints =
  HELP latency of one phone, one CPU and one GPU, each bound at a quantile of that device's
  latency over all 15,625 cells.
- `nb201-ws`: the same constraints and truth; queries read a real one-shot supernet's estimates.
Both count one query per functional class (the protocol's deduplication, `AccuracySource`).
The chain track (`mbv3-fmnist`: picks re-measured and trained stand-alone) is
bench/experiments/chain_board.py.
Writes `OUT/<track>.md` (mean +- std per method), `OUT/<track>.csv` (one row per run),
`OUT/<track>-trajectories.png` (best feasible accuracy found vs queries), and the resumable
run folder `OUT/<track>-runs/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core import paths
from hwnas.core.invocation import command_line
from hwnas.core.io import atomic_write_bytes
from hwnas.search.constraints import Constraint, make_constraint, parse_constraint

from ..engine import search as search_pipeline
from ..reports.writer import pyplot, save_figure, table, write_markdown

NB201_DEVICES = ("pixel3", "gold_6240", "1080ti_1")
NB201_QUANTILES = (0.25, 0.5, 0.75)
#: query-based methods go on the NB201 boards; one-shot methods are kept off (see `_OFF_BOARD`)
NB201_TRACKS = ("nb201", "nb201-ws")
_ACC_200EP = ("nb201-acc-200ep/nb201_cifar10_200ep.csv", "cifar10_test_acc")
_VALID = ("nb201-cifar10valid-200ep/nb201_cifar10valid_200ep.csv", "cifar10_valid_acc")
_SUPERNET = ("nb201-supernet-estimates/nb201_cifar10_oneshot_supernet.csv", "oneshot_supernet_acc")
_LATENCY = "help-latency/help_nasbench201_latency_ms.csv"
_OFF_BOARD = ("One-shot methods (mgas, bayesnas) are not on this board: here they would be searched on "
              "Fashion-MNIST (~100 training steps) and scored on CIFAR-10; trained that briefly their "
              "supernets do not learn (MGAS's ranking was no better than untrained gates, BayesNAS pruned no "
              "switch), so a row would be a silent proxy. They run on the chain track.")


def nb201_track(data_dir: Path, quantiles=NB201_QUANTILES, track: str = "nb201"
                ) -> tuple[str, str | None, list[Constraint], dict[str, tuple[str, float]]]:
    """(accuracy spec, truth spec, constraints, constraint text -> (device, quantile)).

    `nb201`: queries read the cifar10-valid validation accuracy; `nb201-ws`: the one-shot
    supernet's estimates of every cell. Both score picks by the 200-epoch CIFAR-10 test table.
    Each bound is a quantile of the device's latency, stated with 4 significant digits."""
    acc = data_dir / _ACC_200EP[0]
    lat = data_dir / _LATENCY
    src = data_dir / (_SUPERNET[0] if track == "nb201-ws" else _VALID[0])
    for f in (acc, lat, src):
        if not f.exists():
            raise FileNotFoundError(f"{f}: benchmark table missing; set HWNAS_DATA_DIR to the shared data folder")
    from hwnas.search.spaces import create_space

    sp = create_space("nb201")
    cons, where = [], {}
    lat_s, acc_s = paths.portable(lat), paths.portable(acc)  # specs go into the committed board as written
    for dev in NB201_DEVICES:
        source = f"table:{lat_s}:{dev}"
        for q in quantiles:
            b = float(f"{search_pipeline.bound_at_quantile(sp, 'latency_ms', source, q):.4g}")
            c = make_constraint("latency_ms", source, b)
            cons.append(c)
            where[c.text] = (dev, float(q))
    return _source_spec(data_dir, track), f"table:{acc_s}:{_ACC_200EP[1]}", cons, where


def _source_spec(data_dir: Path, track: str) -> str:
    """What a track's queries read (table:PATH:COLUMN)."""
    f, col = _SUPERNET if track == "nb201-ws" else _VALID
    return f"table:{paths.portable(data_dir / f)}:{col}"


def run(track: str, out: str | os.PathLike = paths.LEADERBOARDS_DIR, methods: list[str] | None = None,
        seeds: int = 5, budgets: tuple[int, ...] = (100,), quantile=None,
        tables_dir: str | os.PathLike = paths.TABLES_DIR,
        data: str = "fashion-mnist", data_dir: str | os.PathLike | None = None,
        params: dict[str, dict] | None = None, progress: bool = True, executor: str = "serial",
        workers: int | None = None) -> Path:
    """Run (resumably) and write OUT/<track>.md|csv|png. `quantile`: one or several bound
    quantiles (default: 25/50/75%)."""
    from hwnas.search.methods import list_methods

    out = Path(out)
    data_dir = paths.data_dir(data_dir)
    qs = (quantile,) if isinstance(quantile, int | float) else tuple(quantile or ())
    if track not in NB201_TRACKS:
        raise ValueError(f"unknown track {track!r}; expected nb201 or nb201-ws (the chain track: chain_board.run)")
    space = "nb201"
    accuracy, truth, constraints, where = nb201_track(data_dir, qs or NB201_QUANTILES, track)
    if methods is None:  # query-based methods only (one-shot ones: `_OFF_BOARD`)
        methods = [m for m in list_methods(supports=space, kind="query")]
    df = search_pipeline.run(space, methods, accuracy, constraints, budgets, seeds, out / f"{track}-runs",
                             params=params, data=data, tables_dir=tables_dir, progress=progress,
                             executor=executor, workers=workers, truth=truth)
    return _write_board(track, out, df, [c.text for c in constraints], where, accuracy, truth, methods, seeds, budgets, qs, space,
                        data, tables_dir)


def _argmax_name(accuracy: str) -> str:
    """The reference row's name: the source's own feasible argmax (supernet or validation)."""
    return "supernet-argmax" if "supernet" in accuracy else "valid-argmax"


def _source_argmax(space_name, accuracy, truth, constraints, where, data, tables_dir) -> pd.DataFrame:
    """The reference row: the accuracy source's own feasible argmax (zero queries), scored by the
    truth. The tables hold every cell (or pool arch) once, so this is plain table arithmetic (first
    maximum in arch_idx order where there is one, as `exact_optimum` takes it, else in the table's
    own order); the other columns are aligned to it by arch_str."""
    from hwnas.devices.table import parse_table_spec, read_table_file

    def column(spec, order=None):
        path, col = parse_table_spec(spec)  # its path through core.paths.expand
        t = read_table_file(path)
        t = t.sort_values("arch_idx") if "arch_idx" in t.columns else t
        v = pd.Series(t[col].to_numpy(float), index=t.arch_str.astype(str))
        return (v.index.to_numpy(), v.to_numpy()) if order is None else (order, v.reindex(order).to_numpy())

    strs, src = column(accuracy)
    _, tru = column(truth, strs)
    rows = []
    for c in constraints:
        con = parse_constraint(c)  # a run's key, as the runs were made under it
        _, lat = column(con.source, strs)
        ok = lat <= con.bound
        i = int(np.argmax(np.where(ok, src, -np.inf)))
        opt = float(np.max(tru[ok]))
        rows.append({"method": _argmax_name(accuracy), "constraint": c, "budget": 0, "seed": 0, "space": space_name,
                     "arch_str": strs[i], "accuracy": float(src[i]), "true_accuracy": float(tru[i]), "feasible": True,
                     "queries": 0, "optimum_accuracy": opt, "regret": opt - float(tru[i]),
                     "n_feasible": int(ok.sum()), "device": where[c][0], "quantile": where[c][1],
                     "notes": "the accuracy source's best feasible cell; reads nothing"})
    return pd.DataFrame(rows)


def report(track: str, out: str | os.PathLike = paths.LEADERBOARDS_DIR, seeds: int = 20,
           budgets: tuple[int, ...] = (100, 200), data_dir: str | os.PathLike | None = None) -> Path:
    """Rewrite OUT/<track>.md|csv|png from the runs already in OUT/<track>-runs without running
    anything (an interrupted board; `hwnas leaderboard` resumes the rest). NB201 tracks only:
    each constraint's device and quantile are read back from the latency table."""
    from hwnas.devices.table import parse_table_spec

    out = Path(out)
    data_dir = paths.data_dir(data_dir)
    runs = pd.read_csv(out / f"{track}-runs" / "runs.csv")
    lat = pd.read_csv(data_dir / _LATENCY)
    where = {}
    for c in runs.constraint.unique():
        con = parse_constraint(c)
        dev, b = parse_table_spec(con.source)[1], con.bound
        q = min(NB201_QUANTILES, key=lambda q: abs(float(f"{np.quantile(lat[dev], q):.4g}") - b))
        where[c] = (dev, q)
    try:  # the board's full set of cells, also those with no run yet (an interrupted board says so)
        where.update(nb201_track(data_dir, NB201_QUANTILES, track)[3])
    except FileNotFoundError:
        pass
    constraints = sorted(where, key=lambda c: (NB201_DEVICES.index(where[c][0]), where[c][1]))
    truth = f"table:{paths.portable(data_dir / _ACC_200EP[0])}:{_ACC_200EP[1]}"
    methods = [m for m in runs.method.unique()]
    return _write_board(track, out, runs, constraints, where, _source_spec(data_dir, track), truth,
                        methods, seeds, budgets, NB201_QUANTILES, "nb201", "fashion-mnist", paths.TABLES_DIR)


def _write_board(track, out, df, constraints, where, accuracy, truth, methods, seeds, budgets, qs, space, data,
                 tables_dir, about: str | None = None, make: str = "make leaderboard") -> Path:
    df = df[df.constraint.isin(constraints) & df.budget.isin([int(b) for b in budgets])
            & (df.seed < seeds) & df.method.isin(methods)].copy()
    df["device"] = df.constraint.map(lambda c: where.get(c, ("", float("nan")))[0])
    df["quantile"] = df.constraint.map(lambda c: where.get(c, ("", float("nan")))[1])
    ref = _source_argmax(space, accuracy, truth, constraints, where, data, tables_dir) if truth else None
    full = pd.concat([df, ref]) if ref is not None else df
    atomic_write_bytes(out / f"{track}.csv", full.to_csv(index=False).encode())
    scored = _with_model_picks(df) if track == "nb201-ws" else df
    cells = _cell_stats(scored) if "regret" in df else None
    tests = None
    if cells is not None:
        from ..reports import board_stats

        tests = board_stats.paired_table(scored, _pairs(scored))
        _plot_cells(cells, ref, out / f"{track}.png", track)
    else:
        traj = pd.read_parquet(out / f"{track}-runs" / "trajectories.parquet")
        _plot(traj, out / f"{track}-trajectories.png", track, {})
    md = _markdown(scored, track, qs or NB201_QUANTILES, accuracy, truth, cells, ref, seeds, budgets, tests, about, make)
    i = md.index("", 2) + 1  # after the paragraph that says how the board was made
    md[i:i] = [_versions_line(df, out / f"{track}-runs"), ""]
    gap = _completeness(df, constraints, where, methods, seeds, budgets)
    if gap:
        md[1:1] = ["", gap]
    return write_markdown(out / f"{track}.md", md)


#: the baselines every other method is tested against, cell by cell (board_stats)
BASELINES = ("random", "evolution")
#: suffix of the rows made from a method's own fitted pick (`SearchResult.model_arch`)
FITTED = "-fitted"


def _with_model_picks(df: pd.DataFrame) -> pd.DataFrame:
    """The runs plus one row per run that reported its own fitted pick (GCN on NB201: its top
    feasible cell after a last refit), as method `<method>-fitted` scored like any pick."""
    if "model_regret" not in df or df.model_regret.isna().all():
        return df
    runs = df[df.model_regret.notna()]
    picks = runs.assign(method=runs.method + FITTED, arch_str=runs.model_arch_str, accuracy=runs.model_accuracy,
                        true_accuracy=runs.model_true_accuracy, regret=runs.model_regret,
                        feasible=runs.model_feasible.astype(bool),
                        notes="the method's own fitted top feasible cell (read or not)")
    return pd.concat([df, picks], ignore_index=True)


def _pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, baseline) comparisons: every method against each baseline (evolution against
    random), and a fitted pick against the same method's best read (the denoising claim)."""
    ms = sorted(df.method.unique())
    pairs = [(m, b) for m in ms for b in BASELINES if b in ms and b != m
             and not (m in BASELINES and BASELINES.index(m) < BASELINES.index(b))]  # evolution vs random once
    return pairs + [(m, m[:-len(FITTED)]) for m in ms if m.endswith(FITTED) and m[:-len(FITTED)] in ms]


def _completeness(df, constraints, where, methods, seeds, budgets) -> str | None:
    """None when every (method, constraint, budget, seed) has its run; else a line saying how far
    the board got (an interrupted board is resumable: `hwnas leaderboard` runs the rest)."""
    want = len(constraints) * len(budgets) * len(methods) * seeds
    if len(df) >= want:
        return None
    have = df.groupby(["constraint", "budget"]).size()
    full = int((have >= len(methods) * seeds).sum())
    missing = [f"{where[c][0]} {where[c][1]:.0%} ({b} q)" for c in constraints for b in budgets
               if have.get((c, int(b)), 0) == 0]
    return (f"**Incomplete board: {len(df)} of {want} runs ({full} of {len(constraints) * len(budgets)} "
            f"(device, bound, budget) cells complete"
            + (f"; no runs yet: {', '.join(missing)}" if missing else "")
            + "). Rerunning the same `hwnas leaderboard` command resumes from the runs folder.**")


def _versions_line(df: pd.DataFrame, runs_dir: Path) -> str:
    """Which version of each method's code made the runs shown (`register_method(version=)`;
    rows without one are version 1), and how many runs of older versions were set aside."""
    v = df.get("method_version", pd.Series(np.nan, index=df.index)).fillna(1).astype(int)
    per = {m: sorted(set(v[df.method == m])) for m in sorted(df.method.unique())}
    txt = ", ".join(f"{m} v{'/v'.join(map(str, vs))}" for m, vs in per.items())
    mixed = [m for m, vs in per.items() if len(vs) > 1]
    line = f"Method code versions of these runs: {txt}."
    if mixed:
        line += f" **Mixed versions ({', '.join(mixed)}): rerun the board to resume and redo the old runs.**"
    old = runs_dir / "superseded-runs.csv"
    if old.exists():
        o = pd.read_csv(old)
        line += (f" {len(o)} earlier runs made by older versions ("
                 + ", ".join(f"{m}: {n}" for m, n in o.method.value_counts().sort_index().items())
                 + f") were set aside in `{runs_dir.name}/superseded-runs.csv` and run again with the current code.")
    return line


def _cell_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Per (device, quantile, budget, method): mean, median and 95% t-interval of regret (the
    paired tests against the baselines: board_stats)."""
    from scipy import stats

    out = []
    for (dev, q, b, m), g in df.groupby(["device", "quantile", "budget", "method"], sort=False):
        r = g.regret.to_numpy(float)
        n = len(r)
        half = float(stats.t.ppf(0.975, n - 1) * r.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        out.append({"device": dev, "quantile": q, "budget": b, "method": m, "runs": n,
                    "regret_mean": r.mean(), "regret_median": float(np.median(r)),
                    "ci_low": r.mean() - half, "ci_high": r.mean() + half,
                    "accuracy_read": g.accuracy.mean(), "true_accuracy": g.true_accuracy.mean(),
                    "feasible_rate": g.feasible.mean(), "max_queries": int(g.queries.max()),
                    "wall_s": g.wall_seconds.median()})
    return pd.DataFrame(out)


def _short(constraint: str) -> str:
    """'latency_ms<=3.1@table:/x/help_..._ms.csv:pixel3' -> 'latency_ms<=3.1@pixel3'."""
    head, _, src = constraint.partition("@")
    return f"{head}@{src.rsplit(':', 1)[-1] if src.startswith('table:') else src}"


def _column(spec: str) -> str:
    """'table:$D/x/nb201_cifar10_200ep.csv:cifar10_test_acc' -> '`cifar10_test_acc` (nb201_cifar10_200ep.csv)'."""
    head, _, col = spec.rpartition(":")
    return f"`{col}` ({head.rsplit('/', 1)[-1]})"


#: what the NB201 boards' bounds and budgets are (a table board states its own: `_write_board(about=)`)
NB201_ABOUT = ("the {quantiles} quantiles of each HELP device's latency over all 15,625 cells. Budget = distinct "
               "functional classes whose accuracy a method read: for every method alike, a read of a cell "
               "isomorphic to one already read (same function, dead edges masked) costs no query and returns the "
               "stored value.")


def _markdown(df, track, quantiles, accuracy, truth, cells, ref, seeds, budgets, tests=None,
              about: str | None = None, make: str = "make leaderboard") -> list[str]:
    from ..reports import board_stats

    src, tru = _column(accuracy), _column(truth) if truth else None
    reads = f"{accuracy.rpartition(':')[2]} -> {(truth or accuracy).rpartition(':')[2]}"
    default = f"hwnas leaderboard --track {track} --seeds {seeds} --budget {','.join(str(b) for b in budgets)}"
    L = [f"# Leaderboard: {track}", "",
         f"Written by `{command_line(default)}` (`{make}`). **Search reads {src}; every pick is "
         f"scored by {tru or src}** (true accuracy), regret against the exact constrained optimum of that truth"
         + (" (the field's protocol: search on validation, report test)." if "valid" in accuracy else ".")
         + " Bounds: " + (about or NB201_ABOUT).format(quantiles="/".join(f"{q:.0%}" for q in quantiles))
         + " Cost look-ups are free; every query-based method spends its "
         "whole budget and returns the best feasible cell it read. Regret in percentage points: mean, median, 95% "
         "t-interval of the mean over seeds. **Significance**: each method against each baseline over the paired "
         "seeds of a cell, Wilcoxon signed-rank (two-sided), p-values Holm-corrected over the board's "
         f"{len(df.groupby(['device', 'quantile']))} cells of each (method, baseline, budget); a cell is "
         f"*significantly below / above* when p_Holm < {board_stats.ALPHA}, else *tied*; the effect is the mean "
         "paired regret difference (method - baseline, pp) with a 95% BCa bootstrap interval. Wall time: median "
         "seconds per run on a shared, loaded 2-core CPU.", ""]
    if cells is None:
        return L + ["(no regret: the accuracy source is not a table)"]
    fit = df.method.str.endswith(FITTED)
    L.append(f"Zero constraint violations: {int((~df.feasible.astype(bool)).sum())} infeasible picks in "
             f"{int((~fit).sum())} runs" + (f" and their {int(fit.sum())} fitted picks" if fit.any() else "")
             + f"; most queries used by any run: {int(df.queries.max())} (budgets "
             f"{', '.join(str(b) for b in budgets)}).")
    L.append("")
    n_cells = len(df.groupby(["device", "quantile"]))
    L += ["## Summary over the cells", "",
          f"Cells significantly below / tied / above each baseline (of {n_cells}, Holm-corrected paired Wilcoxon), "
          "and mean regret over the cells. Read -> scored: the column each side reads.", ""]
    rows = []
    for b in sorted(cells.budget.unique()):
        cb = cells[cells.budget == b]
        for m in sorted(cb.method.unique(), key=lambda m: cb[cb.method == m].regret_mean.mean()):
            me = cb[cb.method == m].regret_mean
            rows.append([m, b, reads, f"{me.mean():.3f}", *(_count(tests, m, k, b) for k in BASELINES)])
        if ref is not None:
            rows.append([f"{ref.method.iloc[0]} (0 queries)", "-", reads, f"{ref.regret.mean():.3f}", "", ""])
    L += table(["method", "budget", "read -> scored", "mean regret (pp)", "vs random", "vs evolution"], rows, "lrlrll")
    L.append("")
    L += _target(cells, tests, track)
    fitted = [] if tests is None or tests.empty else sorted(m for m in tests.method.unique() if m.endswith(FITTED))
    for m in fitted:
        base = m[:-len(FITTED)]
        L += [f"`{m}`: {base}'s own fitted top feasible cell (the paper's denoised choice, read or not), scored by "
              f"the truth beside {base}'s best read; against {base} ({n_cells} cells, Holm): "
              + "; ".join(f"{b} queries {_count(tests, m, base, b)}" for b in sorted(cells.budget.unique())) + ".", ""]
    for (dev, q), part in cells.groupby(["device", "quantile"], sort=False):
        rows = df[(df.device == dev) & (df["quantile"] == q)]
        c = rows.constraint.iloc[0]
        L.append(f"## `{c.partition('@')[0]}@{dev}` ({q:.0%} quantile)")
        L.append(f"Search reads {src}; scored by {tru or src}. Exact optimum {rows.optimum_accuracy.iloc[0]:.2f}% "
                 f"(truth) among {int(rows.n_feasible.iloc[0])} feasible cells.")
        if ref is not None:
            r = ref[ref.constraint == c].iloc[0]
            L.append(f"Reference, the source's own feasible argmax (`{r.method}`, zero queries: every cell's "
                     f"{accuracy.rpartition(':')[2]} known): true accuracy {r.true_accuracy:.2f}%, regret "
                     f"{r.regret:.2f} pp (read {r.accuracy:.2f}%).")
        accs = ["read acc %", "true acc %"] if truth else ["accuracy %"]
        rows = []
        for _, r in part.sort_values(["budget", "regret_mean"]).iterrows():
            vs = [_verdict(tests, r.method, k, r.budget, dev, q) for k in BASELINES]
            rows.append([r.method, r.budget, r.runs, f"{r.regret_mean:.3f}", f"{r.regret_median:.3f}",
                         f"[{r.ci_low:.3f}, {r.ci_high:.3f}]", *vs]
                        + ([f"{r.accuracy_read:.2f}"] if truth else []) + [f"{r.true_accuracy:.2f}",
                        f"{r.feasible_rate:.0%}", r.max_queries, f"{r.wall_s:.2f}"])
        L += ["", *table(["method", "budget", "runs", "mean regret", "median", "95% CI", "vs random", "vs evolution",
                          *accs, "feasible", "max queries", "wall s"], rows, "lrrrrlll" + "r" * (len(accs) + 3))]
        for m in fitted:
            for b in sorted(part.budget.unique()):
                L.append(f"\n`{m}` against `{m[:-len(FITTED)]}` at {b} queries: "
                         f"{_verdict(tests, m, m[:-len(FITTED)], b, dev, q)}.")
        L.append("")
    if track in NB201_TRACKS:
        L += [_OFF_BOARD, ""]
    L.append("Per-run rows (arch, read and true accuracy, cost, bound, notes): the csv beside this file"
             + (f" (the {ref.method.iloc[0]} reference rows have budget 0)" if ref is not None else "")
             + ("; a GCN row's `model_*` columns are its fitted pick." if fitted else "."))
    return L


def _count(tests, m, base, b) -> str:
    """'7 below / 2 tied / 0 above' over the cells of (method, baseline, budget); '-' if none."""
    if tests is None or tests.empty:
        return "-"
    t = tests[(tests.method == m) & (tests.baseline == base) & (tests.budget == b)]
    if t.empty:
        return "-"
    n = t.verdict.value_counts()
    return f"{n.get('below', 0)} below / {n.get('tied', 0)} tied / {n.get('above', 0)} above"


def _verdict(tests, m, base, b, dev, q) -> str:
    from ..reports import board_stats

    if tests is None or tests.empty:
        return "-"
    t = tests[(tests.method == m) & (tests.baseline == base) & (tests.budget == b) & (tests.device == dev)
              & (tests["quantile"] == q)]
    return "-" if t.empty else board_stats.describe(t.iloc[0])


#: the protocol's bar for the table board, checked as it stands (never tuned on): BINAS and GCN
#: significantly below both baselines in at least 7 of 9 cells at 200 queries, mean regret <= 0.2 pp
TARGET = {"methods": ("binas", "gcn"), "budget": 200, "cells": 7, "mean_regret": 0.2}


def _target(cells, tests, track) -> list[str]:
    """A line per method saying whether the table board's target holds, with the figures."""
    if track != "nb201" or tests is None or tests.empty or TARGET["budget"] not in set(cells.budget):
        return []
    b = TARGET["budget"]
    n_cells = len(cells[cells.budget == b].groupby(["device", "quantile"]))
    L = [f"Target: BINAS and GCN significantly below both baselines in at least {TARGET['cells']} of "
         f"{n_cells} cells at {b} queries (Holm), and at most {TARGET['mean_regret']} pp mean regret at {b} queries:", ""]
    for m in TARGET["methods"]:
        if m not in set(cells.method):
            continue
        below = {k: int(((tests.method == m) & (tests.baseline == k) & (tests.budget == b)
                         & (tests.verdict == "below")).sum()) for k in BASELINES}
        both = tests[(tests.method == m) & (tests.budget == b)].pivot_table(
            index=["device", "quantile"], columns="baseline", values="verdict", aggfunc="first")
        n_both = int((both == "below").all(axis=1).sum()) if set(BASELINES) <= set(both.columns) else 0
        mean = float(cells[(cells.method == m) & (cells.budget == b)].regret_mean.mean())
        ok = n_both >= TARGET["cells"] and mean <= TARGET["mean_regret"]
        L.append(f"- {m}: below both in {n_both}/{n_cells} cells (below random {below['random']}, below evolution "
                 f"{below['evolution']}), mean regret {mean:.3f} pp: **{'holds' if ok else 'does not hold'}**.")
    return L + [""]


def _plot_cells(cells: pd.DataFrame, ref: pd.DataFrame | None, path: Path, track: str) -> None:
    plt = pyplot()
    budgets = sorted(cells.budget.unique())
    keys = list(dict.fromkeys(zip(cells.device, cells["quantile"], strict=True)))
    methods = sorted(cells.method.unique())
    fig, axes = plt.subplots(1, len(budgets), figsize=(7 * len(budgets), 3.8), squeeze=False, sharey=True)
    w = 0.8 / max(1, len(methods))
    for ax, b in zip(axes[0], budgets, strict=True):
        for j, m in enumerate(methods):
            cm = cells[(cells.budget == b) & (cells.method == m)].set_index(["device", "quantile"]).reindex(keys)
            x = np.arange(len(keys)) + (j - (len(methods) - 1) / 2) * w
            ax.errorbar(x, cm.regret_mean, yerr=[cm.regret_mean - cm.ci_low, cm.ci_high - cm.regret_mean],
                        fmt="o", ms=4, capsize=2, label=m)
        if ref is not None:
            rr = ref.set_index(["device", "quantile"]).reindex(keys)
            ax.scatter(np.arange(len(keys)), rr.regret, marker="x", color="k", label="supernet argmax (0 queries)")
        ax.set_xticks(np.arange(len(keys)), [f"{d}\n{q:.0%}" for d, q in keys], fontsize=7)
        ax.set_title(f"{b} queries", fontsize=9)
        ax.set_ylabel("regret, pp (mean, 95% CI)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path, f"{track}: regret of the returned cell against the exact constrained optimum")


def _nz(x) -> float:
    return 0.0 if pd.isna(x) else float(x)


def _plot(traj: pd.DataFrame, path: Path, track: str, optima: dict[str, float] | None = None) -> None:
    plt = pyplot()
    cons = list(dict.fromkeys(traj.constraint))
    fig, axes = plt.subplots(1, len(cons), figsize=(5 * len(cons), 3.6), squeeze=False)
    for ax, c in zip(axes[0], cons, strict=True):
        part = traj[traj.constraint == c]
        for m, g in part.groupby("method", sort=True):
            curve = g.pivot_table(index="query", columns="seed", values="best_accuracy").ffill()
            med = curve.median(axis=1)
            ax.plot(med.index, med.to_numpy(), label=m)
        if optima and c in optima:
            ax.axhline(optima[c], color="k", ls="--", lw=0.8, label="exact optimum")
        ax.set_title(_short(c), fontsize=9)
        ax.set_xlabel("accuracy queries")
        ax.set_ylabel("best feasible accuracy seen (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    save_figure(fig, path, f"{track}: median over seeds of the best feasible accuracy a method has queried")

"""Development tasks for the NB201 search methods' acquisition, kept apart from the boards.

BINAS and GCN read in rounds (`search.methods.enumerated.read_in_rounds`); which cells a round
reads (greedy top of the model, or batch Thompson sampling from a posterior) was chosen here,
on tasks that are NOT the leaderboard's cells: only devices of `DEV_DEVICES`, which no board
uses (`leaderboard.NB201_DEVICES`: pixel3, gold_6240, 1080ti_1; a test and `run` refuse an
overlap), other latency quantiles, and for four of them another source (the 12-epoch NB201
table, validation split). What this does NOT keep apart: nine of the thirteen tasks read and are
scored by the 200-epoch CIFAR-10 test column, the boards' truth (the boards now search on the
cifar10-valid validation column, which no task reads), and their feasible sets overlap board
cells'. Order of events, for docs/methods.md: versions 1 and 2 were chosen here; version 3 was
chosen after the table board's pixel3 25% cell had been seen to fail and the last five tasks
(low quantiles) had been added toward that failure.

`hwnas dev acquisition [--seeds 8] [--out DIR]` (resumable: one runs folder
per variant under DIR, the `hwnas search` runs format) writes DIR/acquisition-dev.md and .parquet
(every run's regret; the notes stay in the runs folders).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core import paths
from hwnas.core.io import atomic_write_bytes
from scipy import stats

from ..reports.writer import table, write_markdown

_LAT = "help-latency/help_nasbench201_latency_ms.csv"
_T200 = ("nb201-acc-200ep/nb201_cifar10_200ep.csv", "cifar10_test_acc")
_T12 = ("nb201-acc-12ep-minibench/nb201_cifar10_12ep.csv", "cifar10-val")
#: (source read, truth or None (the source is the truth), device, quantile): no board cell (other
#: devices); the 12ep ones read the 12-epoch table, and the `-scored-by-200ep` ones are scored by the
#: 200-epoch one, the weight-sharing track's setting (a cheap, noisy estimate read, the truth
#: scores) without its data. The last five (added for version 3) are low latency quantiles, where
#: version 2 read worse cells than random search on its own development tasks (silver_4114 at
#: 20%) and on the table board (pixel3 at 25%).
#: the HELP devices development may use: none of them is on a board (a test checks)
DEV_DEVICES = ("samsung_a50", "essential_ph_1", "silver_4114", "titanxp_1", "samsung_s7", "silver_4210r",
               "titanx_1", "titan_rtx_32")
TASKS = ((_T200, None, "samsung_a50", 0.15), (_T200, None, "essential_ph_1", 0.3),
         (_T200, None, "silver_4114", 0.2), (_T200, None, "titanxp_1", 0.4),
         (_T12, None, "samsung_s7", 0.25), (_T12, None, "silver_4210r", 0.5),
         (_T12, _T200, "samsung_s7", 0.3), (_T12, _T200, "titanx_1", 0.6),
         (_T200, None, "samsung_s7", 0.2), (_T200, None, "essential_ph_1", 0.15),
         (_T200, None, "silver_4210r", 0.25), (_T200, None, "samsung_a50", 0.3),
         (_T200, None, "titan_rtx_32", 0.25))
#: the schedule of version 1 (init_frac 0.5, no local or uniform share); every variant states it
#: in full so a variant keeps its meaning when the methods' defaults change
_V1 = {"init_frac": 0.5, "local_share": 0.0, "explore_share": 0.0}


def _v(methods=("binas", "gcn"), **kw) -> tuple[list[str], dict]:
    return list(methods), {m: {**_V1, **kw} for m in methods}


#: variant -> (methods, parameters); version 2 = binas `init25-local50`, gcn `init25`; version 3 =
#: binas `init25-local50-explore33`, gcn `init25-explore33` (a third of each round uniform: BOHB's
#: `random_fraction` default, not a value fitted here; 25% and 40% shown beside it)
VARIANTS = {"baselines": (["random", "evolution"], {}),
            "greedy-loo": _v(acquisition="greedy", posterior="loo"),
            "ts-evidence": _v(acquisition="thompson", posterior="evidence"),
            "ts-loo": _v(acquisition="thompson", posterior="loo"),
            "ts-bootstrap": _v(("binas",), acquisition="thompson", posterior="bootstrap"),
            "ts-evidence-paths": _v(("binas",), acquisition="thompson", posterior="evidence", estimator="struct-paths"),
            "greedy-init25": _v(init_frac=0.25),
            "greedy-batch5": _v(batch=5),
            "greedy-init25-batch5": _v(init_frac=0.25, batch=5),
            "greedy-local50": _v(local_share=0.5),
            "greedy-init25-local50": _v(init_frac=0.25, local_share=0.5),
            "greedy-init25-explore33": _v(("gcn",), init_frac=0.25, explore_share=1 / 3),
            "greedy-init25-local50-explore25": _v(("binas",), init_frac=0.25, local_share=0.5, explore_share=0.25),
            "greedy-init25-local50-explore33": _v(("binas",), init_frac=0.25, local_share=0.5, explore_share=1 / 3),
            "greedy-init25-local50-explore40": _v(("binas",), init_frac=0.25, local_share=0.5, explore_share=0.4)}
#: method -> its version-2 variant, against which the report pairs the variants that add a uniform share
PREVIOUS = {"binas": "greedy-init25-local50", "gcn": "greedy-init25"}


def run(out: str | os.PathLike = paths.RESULTS_DIR / "search" / "acquisition-dev", seeds: int = 8,
        budgets=(100, 200), variants=None, data_dir=None, tasks: int | None = None) -> Path:
    import functools

    from ..engine import search as search_pipeline

    check_apart(TASKS[:tasks])
    out = Path(out)
    data_dir = paths.data_dir(data_dir)
    # one load per table for all variants (importing a 15,625-row table takes seconds); the
    # pipeline restarts the sources for every search, as it does within one call
    search_pipeline._load_problem = functools.lru_cache(maxsize=None)(search_pipeline._load_problem)
    lat_table = pd.read_csv(data_dir / _LAT)
    frames = []
    for (sfile, scol), tru, dev, q in TASKS[:tasks]:
        source = f"table:{paths.portable(data_dir / sfile)}:{scol}"
        truth = f"table:{paths.portable(data_dir / tru[0])}:{tru[1]}" if tru else None
        lat = f"table:{paths.portable(data_dir / _LAT)}:{dev}"
        b = float(np.quantile(lat_table[dev], q))  # every cell once: bound_at_quantile's value, without a re-import
        c = f"latency_ms<={b:.4g}@{lat}"
        task = (f"{dev}-q{int(q * 100)}-" + ("12ep" if sfile == _T12[0] else "200ep")
                + ("-scored-by-200ep" if tru else ""))
        for name in variants or VARIANTS:
            methods, params = VARIANTS[name]
            df = search_pipeline.run("nb201", methods, source, [c], budgets, seeds, out / name / task,
                                     params=params, progress=False, truth=truth)
            frames.append(df.assign(variant=name, task=task))
        print(task, flush=True)
    return report(out)


def check_apart(tasks=TASKS) -> None:
    """Refuse a development task on a device outside `DEV_DEVICES` or on a board's device."""
    from .leaderboard import NB201_DEVICES

    if set(DEV_DEVICES) & set(NB201_DEVICES):
        raise ValueError(f"DEV_DEVICES and the boards' devices overlap: {sorted(set(DEV_DEVICES) & set(NB201_DEVICES))}")
    bad = sorted({dev for _, _, dev, _ in tasks if dev not in DEV_DEVICES or dev in NB201_DEVICES})
    if bad:
        raise ValueError(f"development tasks on {', '.join(bad)}: use only DEV_DEVICES ({', '.join(DEV_DEVICES)}), "
                         "devices no board uses")


def report(out: str | os.PathLike = paths.RESULTS_DIR / "search" / "acquisition-dev") -> Path:
    """DIR/acquisition-dev.md|parquet from every runs folder under DIR (also of a stopped run): mean
    regret per task, budget and method-variant, with the runs behind each figure."""
    out = Path(out)
    frames = []
    for f in sorted(out.glob("*/*/runs.csv")):
        frames.append(pd.read_csv(f).assign(variant=f.parent.parent.name, task=f.parent.name))
    df = pd.concat(frames, ignore_index=True)
    df["label"] = np.where(df.variant == "baselines", df.method, df.method + " " + df.variant)
    keep = [c for c in ("variant", "task", "method", "budget", "seed", "regret", "accuracy", "true_accuracy", "queries",
                        "method_version", "arch_str") if c in df.columns]  # the notes stay in the runs folders
    atomic_write_bytes(out / "acquisition-dev.parquet", df[keep].to_parquet(index=False))
    piv = df.pivot_table(index=["task", "budget"], columns="label", values="regret", aggfunc="mean")
    n = df.pivot_table(index=["task", "budget"], columns="label", values="regret", aggfunc="count")
    labels = sorted(piv.columns, key=lambda c: (c.split()[0], c))
    L = ["# NB201 acquisition development (not the leaderboard's cells)", "",
         "`hwnas dev acquisition` (`--variants`, `--tasks`, `--seeds`): mean regret (pp) per "
         "task and budget, seeds 0..k-1 (runs in brackets). Tasks are HELP devices that are not on the boards, "
         "at other quantiles; `12ep` tasks read the 12-epoch NB201 table (validation split) as their truth, "
         "`12ep-scored-by-200ep` ones read it and are scored by the 200-epoch table (the weight-sharing "
         "setting). Variants (BINAS struct estimator, GCN): `greedy-loo` = the model's top cells each round "
         "after half the budget read uniformly (version 1's schedule), `ts-*` = batch Thompson sampling with the "
         "posterior named (evidence: marginal likelihood; loo: leave-one-out ridge; bootstrap: refits on resampled "
         "reads; -paths: BINAS estimator with path features); `init25` = a quarter of the budget read uniformly, "
         "`batch5` = rounds of 5 cells, `local50` = half of each round the model's best one-edge neighbours of the "
         "three best reads, `explore33` = a third of each round drawn uniformly (random interleaving). Version 2: "
         "BINAS `init25-local50`, GCN `init25`; version 3: BINAS `init25-local50-explore33`, GCN `init25-explore33`. "
         "A stopped run leaves some tasks without some variants (-).", ""]
    rows = [[t, b, *("-" if pd.isna(r[c]) else f"{r[c]:.3f} ({int(n.loc[(t, b), c])})" for c in labels)]
            for (t, b), r in piv.iterrows()]
    for b in sorted(df.budget.unique()):
        part = piv.xs(b, level="budget")
        rows.append(["**mean over the tasks each ran**", b,
                     *(f"{part[c].mean():.3f} ({part[c].notna().sum()} tasks)" for c in labels)])
    L += table(["task", "budget", *labels], rows, "lr" + "r" * len(labels))
    for ref, what in (("greedy-loo", "`greedy-loo` (version 1)"), (None, "version 2 (`binas greedy-init25-local50`, "
                                                                          "`gcn greedy-init25`)")):
        L += ["", f"Paired against {what} (same method, task, budget and seed): mean regret difference (pp; "
              "negative = the variant read better cells), 95% t-interval, wins / losses.", ""]
        L += table(["method", "variant", "budget", "runs", "mean difference", "95% CI", "wins / losses"],
                   _paired(df, ref), "llrrrlr")
    L += ["", "Cells where a variant's mean regret is not below both random's and evolution's (of the task and "
          "budget; the boards' target for BINAS and GCN):", ""]
    base = piv[["random", "evolution"]].min(axis=1) if {"random", "evolution"} <= set(piv.columns) else None
    for c in labels if base is not None else []:
        if c in ("random", "evolution"):
            continue
        miss = piv.index[(piv[c] >= base) & piv[c].notna()]
        L.append(f"- {c}: {len(miss)} of {int(piv[c].notna().sum())}"
                 + (": " + ", ".join(f"{t} @ {b}" for t, b in miss) if len(miss) else ""))
    return write_markdown(out / "acquisition-dev.md", L, command="hwnas dev acquisition")


def _paired(df: pd.DataFrame, ref: str | None) -> list[list]:
    """Table rows (cells): each method-variant minus `ref` over the same task, budget and seed (None: the
    variants with a uniform share minus the method's version-2 variant, `PREVIOUS`)."""
    key = ["task", "budget", "seed"]
    rows = []
    for (m, v), g in df[df.variant != "baselines"].groupby(["method", "variant"]):
        r = ref or PREVIOUS.get(m)
        base = df[(df.method == m) & (df.variant == r)].set_index(key).regret
        if v == r or base.empty or (ref is None and "explore" not in v):
            continue
        d = (g.set_index(key).regret - base).dropna()
        for b, db in d.groupby(level="budget"):
            h = stats.t.ppf(0.975, len(db) - 1) * db.std(ddof=1) / np.sqrt(len(db)) if len(db) > 1 else np.nan
            rows.append([m, v, b, len(db), f"{db.mean():+.3f}", f"[{db.mean() - h:+.3f}, {db.mean() + h:+.3f}]",
                         f"{int((db < 0).sum())} / {int((db > 0).sum())}"])
    return rows

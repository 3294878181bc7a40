"""The two plots of a search folder (`hwnas search`, `hwnas plot RUNS_DIR`):

- `regret.png`: best-so-far regret against queries, per method (median over seeds, band from
  the 25th to the 75th percentile), one panel per constraint; where the accuracy read is not the
  truth, or no optimum is known, the best-so-far accuracy read instead (the axis says which);
- `reads.png`: every arch the methods read, accuracy against cost, with the constraint's bound
  and each run's pick (stars), one panel per constraint.

Both read only `runs.csv` and `trajectories.parquet`, so they redraw any folder, finished or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from hwnas.bench.reports.writer import pyplot, save_figure

MAX_PANELS = 9


def plot_search(out: str | os.PathLike) -> list[Path]:
    """Draw `regret.png` and `reads.png` into the search folder `out`; returns their paths."""
    out = Path(out)
    runs_csv, traj_path = out / "runs.csv", out / "trajectories.parquet"
    if not runs_csv.exists() or not traj_path.exists():
        raise FileNotFoundError(f"{out}: no runs.csv and trajectories.parquet; run `hwnas search --out {out}` first")
    runs, traj = pd.read_csv(runs_csv), pd.read_parquet(traj_path)
    if runs.empty or traj.empty:
        raise ValueError(f"{out}: no finished run to plot yet")
    # each method at its largest budget: the curve of a smaller budget is a prefix of the same kind
    top = runs.groupby("method").budget.max()
    runs = runs[runs.budget == runs.method.map(top)]
    traj = traj[traj.budget == traj.method.map(top)]
    constraints = list(dict.fromkeys(runs.constraint))[:MAX_PANELS]
    return [_regret(out / "regret.png", runs, traj, constraints), _reads(out / "reads.png", runs, traj, constraints)]


def _grid(n: int):
    plt = pyplot()
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _short(constraint: str) -> str:
    head, _, src = constraint.partition("@")
    return f"{head}@{src.rsplit(':', 1)[-1] if src.startswith('table:') else src}"


def _regret(path: Path, runs: pd.DataFrame, traj: pd.DataFrame, constraints: list[str]) -> Path:
    fig, axes = _grid(len(constraints))
    for ax, c in zip(axes, constraints, strict=True):
        r = runs[runs.constraint == c]
        opt = r.optimum_accuracy.dropna() if "optimum_accuracy" in r else pd.Series(dtype=float)
        truth_is_read = "truth" not in r or (r.truth == r.accuracy_source).all()
        as_regret = not opt.empty and truth_is_read
        for m, g in traj[traj.constraint == c].groupby("method", sort=True):
            curves = g.pivot_table(index="query", columns="seed", values="best_accuracy", aggfunc="first")
            y = float(opt.iloc[0]) - curves if as_regret else curves
            q = y.quantile([0.25, 0.5, 0.75], axis=1).T
            (line,) = ax.plot(q.index, q[0.5], label=f"{m} ({curves.shape[1]} seeds)", lw=1.5)
            ax.fill_between(q.index, q[0.25], q[0.75], color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xlabel("queries (distinct archs read)")
        ax.set_ylabel("best-so-far regret (pp)" if as_regret else "best-so-far accuracy read")
        ax.set_title(_short(c), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path, "Best feasible arch so far, median and 25-75% over seeds")
    return path


def _reads(path: Path, runs: pd.DataFrame, traj: pd.DataFrame, constraints: list[str]) -> Path:
    fig, axes = _grid(len(constraints))
    has_reads = {"read_cost", "read_accuracy"} <= set(traj.columns)
    colors = {m: f"C{i}" for i, m in enumerate(sorted(runs.method.unique()))}
    for ax, c in zip(axes, constraints, strict=True):
        r = runs[runs.constraint == c]
        if has_reads:
            for m, g in traj[(traj.constraint == c) & traj.read_cost.notna()].groupby("method", sort=True):
                ax.scatter(g.read_cost, g.read_accuracy, s=6, alpha=0.35, color=colors[m], lw=0,
                           label=f"{m}: {len(g)} reads")
        for m, g in r.groupby("method", sort=True):
            ax.scatter(g.cost, g.accuracy, marker="*", s=90, color=colors[m], edgecolor="black", lw=0.6,
                       label=f"{m}: pick ({len(g)} seeds)", zorder=3)
        bound = float(r.bound.iloc[0])
        ax.axvline(bound, color="crimson", ls="--", lw=1, label=f"bound {bound:g}")
        ax.set_xlabel(str(r.cost_metric.iloc[0]) if "cost_metric" in r else "cost")
        ax.set_ylabel("accuracy read")
        ax.set_title(_short(c), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, markerscale=1.0)
        if not has_reads:
            ax.text(0.02, 0.02, "reads not recorded (runs made before hwnas recorded them)",
                    transform=ax.transAxes, fontsize=7)
    save_figure(fig, path, "What the methods read: accuracy vs cost, bound and picks")
    return path


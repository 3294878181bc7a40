"""`hwnas leaderboard`: every method under the same measured constraints and query budget.

Tracks:
- `nb201`: accuracy = NB201 CIFAR-10 200-epoch table, constraints = HELP latency of one phone,
  one CPU and one GPU, each bound at a quantile of that device's latency over all 15,625 cells;
  the exact constrained optimum is known, so every run has a regret.
- `mbv3-fmnist`: accuracy = subnets scored on a trained supernet, constraint = a block table this
  project measured (`hwnas profile`), bound at a quantile of the space's sampled latency.
Writes `OUT/<track>.md` (mean +- std per method), `OUT/<track>.csv` (one row per run),
`OUT/<track>-trajectories.png` (best feasible accuracy found vs queries), and the resumable
run folder `OUT/<track>-runs/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core import paths
from core.io import atomic_save_figure, atomic_write_bytes

from . import search as search_pipeline

NB201_DEVICES = ("pixel3", "gold_6240", "1080ti_1")


def nb201_track(data_dir: Path, quantile: float) -> tuple[str, list[str]]:
    acc = data_dir / "nb201-acc-200ep/nb201_cifar10_200ep.csv"
    lat = data_dir / "help-latency/help_nasbench201_latency_ms.csv"
    for f in (acc, lat):
        if not f.exists():
            raise FileNotFoundError(f"{f}: benchmark table missing; set HWNAS_DATA_DIR to the shared data folder")
    from search.spaces import create_space

    sp = create_space("nb201")
    cons = []
    for dev in NB201_DEVICES:
        spec = f"latency_ms@table:{lat}:{dev}"
        b = search_pipeline.bound_at_quantile(sp, spec, quantile)
        cons.append(f"latency_ms<={b:.4g}@table:{lat}:{dev}")
    return f"table:{acc}:cifar10_test_acc", cons


def run(track: str, out: str | os.PathLike = paths.LEADERBOARDS_DIR, methods: list[str] | None = None,
        seeds: int = 5, budgets: tuple[int, ...] = (100,), quantile: float = 0.25,
        supernet: str | None = None, device: str = "cpu-t1", tables_dir: str | os.PathLike = paths.TABLES_DIR,
        data: str = "fashion-mnist", data_dir: str | os.PathLike | None = None,
        params: dict[str, dict] | None = None, progress: bool = True, executor: str = "serial",
        workers: int | None = None) -> Path:
    from search.methods import create_method, list_methods
    from search.spaces import create_space

    out = Path(out)
    data_dir = paths.data_dir(data_dir)
    if track == "nb201":
        space = "nb201"
        accuracy, constraints = nb201_track(data_dir, quantile)
    elif track == "mbv3-fmnist":
        space = "mbv3-fmnist"
        if not supernet:
            raise ValueError("track mbv3-fmnist needs --supernet CKPT (make supernet writes one)")
        accuracy = f"supernet:{supernet}"
        b = search_pipeline.bound_at_quantile(create_space(space), f"latency_ms@{device}", quantile, tables_dir)
        constraints = [f"latency_ms<={b:.4g}@{device}"]
    else:
        raise ValueError(f"unknown track {track!r}; expected nb201 or mbv3-fmnist")
    if methods is None:
        methods = [m for m in list_methods()
                   if create_method(m).spaces is None or space in create_method(m).spaces]
    df = search_pipeline.run(space, methods, accuracy, constraints, budgets, seeds, out / f"{track}-runs",
                             params=params, data=data, tables_dir=tables_dir, progress=progress,
                             executor=executor, workers=workers)
    atomic_write_bytes(out / f"{track}.csv", df.to_csv(index=False).encode())
    traj = pd.read_parquet(out / f"{track}-runs" / "trajectories.parquet")
    optima = df.groupby("constraint").optimum_accuracy.first().to_dict() if "optimum_accuracy" in df else {}
    _plot(traj, out / f"{track}-trajectories.png", track, optima)
    atomic_write_bytes(out / f"{track}.md", "\n".join(_markdown(df, track, quantile, accuracy)).encode())
    return out / f"{track}.md"


def _short(constraint: str) -> str:
    """'latency_ms<=3.1@table:/x/help_..._ms.csv:pixel3' -> 'latency_ms<=3.1@pixel3'."""
    head, _, src = constraint.partition("@")
    return f"{head}@{src.rsplit(':', 1)[-1] if src.startswith('table:') else src}"


def _markdown(df: pd.DataFrame, track: str, quantile: float, accuracy: str) -> list[str]:
    s = search_pipeline.summarise(df)
    L = [f"# Leaderboard: {track}", "",
         f"Written by `hwnas leaderboard --track {track}` (`make leaderboard` for the committed NB201 board). Accuracy source: "
         f"`{accuracy.rsplit('/', 1)[-1]}`. Each constraint's bound is the {quantile:.0%} quantile of that "
         "cost over the space, so about that share of archs is feasible. Budget = distinct archs whose "
         "accuracy a method read; cost look-ups are free. Mean +- std over seeds; wall time is the median "
         "on a shared 2-core CPU.", ""]
    has_regret = "regret_mean" in s.columns
    for c, part in s.groupby("constraint", sort=False):
        L.append(f"## `{_short(c)}`")
        rows = df[df.constraint == c]
        if has_regret:
            L.append(f"Exact optimum {rows.optimum_accuracy.iloc[0]:.2f}% among {int(rows.n_feasible.iloc[0])} "
                     "feasible archs.")
        L += ["", "| method | budget | runs | accuracy % | regret pp | feasible | queries | wall s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in part.sort_values(["budget", "accuracy_mean"], ascending=[True, False]).iterrows():
            regret = f"{r.regret_mean:.2f} +- {_nz(r.regret_std):.2f}" if has_regret else "n/a"
            L.append(f"| {r.method} | {r.budget} | {r.runs} | {r.accuracy_mean:.2f} +- {_nz(r.accuracy_std):.2f} | "
                     f"{regret} | {r.feasible_rate:.0%} | {r.queries_mean:.0f} | {r.wall_seconds_median:.2f} |")
        L.append("")
    L.append("Per-run rows (arch, cost, bound, notes): the csv beside this file.")
    return L


def _nz(x) -> float:
    return 0.0 if pd.isna(x) else float(x)


def _plot(traj: pd.DataFrame, path: Path, track: str, optima: dict[str, float] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.suptitle(f"{track}: median over seeds of the best feasible accuracy a method has queried", fontsize=10)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)
    plt.close(fig)

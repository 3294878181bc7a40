"""What the stand-alone reference set says: the accuracy-latency trade-off, the seed noise, and
how well the supernet ranks the archs (Kendall tau against the stand-alone mean, beside the
ceiling that seed noise sets: tau between the two seeds' own accuracies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core.io import atomic_write_text
from scipy import stats

from .writer import facts_table, pyplot, save_figure, write_markdown


def per_arch(df: pd.DataFrame) -> pd.DataFrame:
    """One row per arch: mean and std over seeds of val/test accuracy, latency, supernet estimate."""
    agg = {"val_acc": ["mean", "std", "count"], "test_acc": "mean", "latency_ms": "first",
           "latency_table_ms": "first", "macs": "first", "params": "first"}
    if "supernet_val_acc" in df.columns:
        agg["supernet_val_acc"] = "first"
    g = df.groupby("arch_str").agg(agg)
    g.columns = ["val_acc", "val_acc_seed_std", "seeds", "test_acc", "latency_ms", "latency_table_ms",
                 "macs", "params"] + (["supernet_val_acc"] if "supernet_val_acc" in df.columns else [])
    return g.sort_values("latency_ms").reset_index()


def figures(df: pd.DataFrame) -> dict:
    a = per_arch(df)
    a = a[a["seeds"] >= 2] if (a["seeds"] >= 2).any() else a
    n = len(a)
    dec = max(1, int(round(n / 10)))
    fast, slow = a["val_acc"].iloc[:dec].mean(), a["val_acc"].iloc[-dec:].mean()
    seed_std = float(np.sqrt(np.nanmean(a["val_acc_seed_std"] ** 2))) if n else float("nan")
    spread = float(a["val_acc"].std(ddof=1)) if n > 1 else float("nan")
    out = {"archs": n, "rows": len(df), "decile_archs": dec,
           "fastest_decile_val_acc": fast, "slowest_decile_val_acc": slow, "decile_gap_pp": slow - fast,
           "seed_std_pp": seed_std, "spread_std_pp": spread,
           "spread_range_pp": float(a["val_acc"].max() - a["val_acc"].min()) if n else float("nan"),
           "seed_std_over_spread": seed_std / spread if spread else float("nan"),
           "tau_latency_vs_standalone": _tau(a["latency_ms"], a["val_acc"]),
           "tau_macs_vs_standalone": _tau(a["macs"], a["val_acc"])}
    seeds = sorted(df["seed"].unique())
    if len(seeds) >= 2:
        w = df.pivot_table(index="arch_str", columns="seed", values="val_acc").dropna()
        out["tau_seed_vs_seed"] = _tau(w[seeds[0]], w[seeds[1]])
    if "supernet_val_acc" in a.columns and a["supernet_val_acc"].notna().sum() >= 3:
        b = a.dropna(subset=["supernet_val_acc"])
        out["tau_supernet_vs_standalone"] = _tau(b["supernet_val_acc"], b["val_acc"])
        out["tau_supernet_vs_standalone_ci95"] = _tau_ci(b["supernet_val_acc"].to_numpy(), b["val_acc"].to_numpy())
    return out


def _tau(x, y) -> float:
    return float(stats.kendalltau(np.asarray(x, float), np.asarray(y, float)).statistic)


def _tau_ci(x: np.ndarray, y: np.ndarray, n: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap over archs (seeded)."""
    res = stats.bootstrap((x, y), lambda a, b: stats.kendalltau(a, b).statistic, paired=True,
                          n_resamples=n, method="percentile", random_state=0, vectorized=False)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def pareto(a: pd.DataFrame) -> pd.DataFrame:
    """Archs no other arch beats on both latency (lower) and stand-alone accuracy (higher)."""
    a = a.sort_values(["latency_ms", "val_acc"], ascending=[True, False])
    best, keep = -np.inf, []
    for i, v in zip(a.index, a["val_acc"], strict=True):
        if v > best:
            keep.append(i)
            best = v
    return a.loc[keep]


def write_report(df: pd.DataFrame, out_dir: str | Path, meta: dict, command: str) -> tuple[Path, dict]:
    """Write standalone.md, the per-arch CSV and the plots; returns the report's path and figures."""
    plt = pyplot()
    out = Path(out_dir)
    f, a = figures(df), per_arch(df)
    atomic_write_text(out / "standalone-per-arch.csv", a.to_csv(index=False))
    front = pareto(a)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(a["latency_ms"], a["val_acc"], yerr=a["val_acc_seed_std"].fillna(0), fmt="o", ms=4,
                alpha=0.7, label="reference arch (mean ± std over seeds)")
    ax.step(front["latency_ms"], front["val_acc"], where="post", color="C3", label="Pareto front")
    ax.set_xlabel(f"latency_ms ({meta.get('latency_source', 'table')})")
    ax.set_ylabel("stand-alone val accuracy (%)")
    ax.set_title(f"{meta.get('space', '')}: stand-alone accuracy vs measured latency")
    ax.legend(fontsize=7)
    save_figure(fig, out / "standalone-vs-latency.png")

    lines = [f"# Stand-alone reference set: {meta.get('space', '')}", "",
             f"Written by `{command}`. Protocol: {meta.get('protocol')}. Latency: {meta.get('latency_source')} "
             f"of `{meta.get('latency_table')}`. Selection: {meta.get('selection')}.", ""]
    if not meta.get("complete", True):
        lines += [f"**Partial set ({f['archs']} archs with every seed so far; `make standalone` resumes it). "
                  "Runs go ends first, so until the set is complete the deciles and the spread below are "
                  "those of the archs trained so far, not of the whole set.**", ""]
    lines += facts_table(f)
    lines += ["", "- spread_std_pp: std over archs of the seed-mean val accuracy; seed_std_pp: root mean "
              "square over archs of the std between seeds; deciles by latency_ms.",
              "- tau_seed_vs_seed is the ceiling that seed noise sets on any ranking of these archs "
              "(two stand-alone runs of the same arch rank the set only this well)."]
    if "supernet_val_acc" in a.columns and a["supernet_val_acc"].notna().any():
        b = a.dropna(subset=["supernet_val_acc"])
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(b["supernet_val_acc"], b["val_acc"], s=14)
        ax.set_xlabel("supernet val accuracy (%), BN recalibrated")
        ax.set_ylabel("stand-alone val accuracy (%), mean over seeds")
        ax.set_title(f"Kendall tau {f.get('tau_supernet_vs_standalone', float('nan')):.3f} "
                     f"(seed ceiling {f.get('tau_seed_vs_seed', float('nan')):.3f})")
        save_figure(fig, out / "supernet-vs-standalone.png")
        lines += ["", f"Supernet: `{meta.get('supernet_checkpoint')}`, {meta.get('supernet_epochs')} epochs, "
                  f"training config {meta.get('supernet_train_config')}."]
    return write_markdown(out / "standalone.md", lines), f


def predictor_study(space, samples: pd.DataFrame, reference: pd.DataFrame, predictors: list[str],
                    sizes: tuple[int, ...] = (50, 100, 200), seeds: int = 3) -> pd.DataFrame:
    """The GCN paper's setting on our own data: fit each predictor on N supernet-sampled
    (arch, supernet accuracy) pairs, rank the stand-alone reference archs, Kendall tau against
    their stand-alone mean; beside it the supernet's own estimate of the same archs (fit nothing)."""
    from hwnas.predictors.base import create_predictor

    ref = per_arch(reference)
    ref_archs = [space.from_str(s) for s in ref["arch_str"]]
    truth = ref["val_acc"].to_numpy()
    pool = samples[~samples["arch_str"].isin(set(ref["arch_str"]))].reset_index(drop=True)
    rows = []
    if "supernet_val_acc" in ref.columns and ref["supernet_val_acc"].notna().all():
        rows.append({"predictor": "supernet estimate (no fit)", "n_train": 0, "seed": 0,
                     "kendall_tau": _tau(ref["supernet_val_acc"], truth)})
    for n in sizes:
        if n > len(pool):
            continue
        for seed in range(seeds):
            idx = np.random.default_rng(seed).choice(len(pool), n, replace=False)
            archs = [space.from_str(s) for s in pool["arch_str"].iloc[idx]]
            y = pool["val_acc"].to_numpy()[idx]
            for name in predictors:
                p = create_predictor(name, space=space, seed=seed).fit(archs, y)
                rows.append({"predictor": name, "n_train": n, "seed": seed,
                             "kendall_tau": _tau(p.predict(ref_archs), truth)})
    return pd.DataFrame(rows)


def write_predictor_study(df: pd.DataFrame, out_dir: str | Path, facts: dict, command: str) -> Path:
    out = Path(out_dir)
    atomic_write_text(out / "rank_correlation.csv", df.to_csv(index=False))
    g = df.groupby(["predictor", "n_train"])["kendall_tau"].agg(["mean", "std", "count"]).reset_index()
    lines = ["# Predictors fitted on supernet samples, scored against stand-alone truth", "",
             f"Written by `{command}`. Truth: seed-mean stand-alone val accuracy of the "
             f"{facts.get('archs')} reference archs (seed-noise ceiling: Kendall tau between the two "
             f"seeds = {facts.get('tau_seed_vs_seed', float('nan')):.3f}). Training pairs: supernet-sampled "
             "subnets (reference archs excluded), seeds = draws of the training subset.", "",
             "| predictor | n_train | Kendall tau (mean) | std | seeds |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.predictor} | {r.n_train} | {r.mean:.3f} | {0 if np.isnan(r.std) else r.std:.3f} | {r.count} |"
              for r in g.itertuples()]
    return write_markdown(out / "summary.md", lines)

"""The GCN paper's claim on real data: does fitting a model to supernet-read cells rank NB201
better than the supernet itself? (`make predictors` runs it: `hwnas predictors ws-fitting`.)

Chen et al. (METHODS.md section 2) argue that a supernet's estimate of a subnet is its true
accuracy plus an error from mismatched shared weights, and that a GCN fitted on many such
estimates averages that error out. Here the estimates are real (`nb201-supernet-estimates`, a
CIFAR-10 one-shot supernet's accuracy of every NB201 cell) and the truth is the 200-epoch
CIFAR-10 table. Measured, for each training size N (cells drawn uniformly, their supernet
estimates read, nothing of the truth seen):
- Kendall tau against the truth over all 15,625 cells and among the true top 5%, of (a) the raw
  supernet estimates and (b) each fitted model's predictions of every cell;
- the true accuracy of the cell each ranks first.
Models: the GCN of the search method (`predictors.gcn.CellGCNPredictor`: two graph
convolutions over op-on-node graphs whose nodes know op, edge position and liveness, full-batch
Adam, `GCN_EPOCHS` epochs at every N: few, so N = 5,000 stays affordable on a shared CPU) and
two others on the structure-aware features (`struct_features`: live-masked isomorphism
representative, one-hot + pairwise terms): ridge (penalty by leave-one-out) and histogram
gradient boosting; the better of the two by mean all-cell tau is reported as the best other.
3 seeds (draws of the N cells and model seeds).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core import paths
from hwnas.core.io import atomic_write_bytes

from ..reports.writer import pyplot, save_figure, table, write_markdown

SIZES = (100, 1000, 5000)
SEEDS = 3
GCN_EPOCHS = 300
TOP = 0.05
#: gradient boosting is fitted up to this N (at 5,000 it costs minutes of a shared core)
HGB_MAX = 1000
_SUPERNET = ("nb201-supernet-estimates/nb201_cifar10_oneshot_supernet.csv", "oneshot_supernet_acc")
_TRUTH = ("nb201-acc-200ep/nb201_cifar10_200ep.csv", "cifar10_test_acc")


def _ridge(X, y, alphas=(0.1, 1.0, 10.0, 100.0)):
    """Primal ridge with intercept, penalty by exact leave-one-out error (features << cells)."""
    xm, ym = X.mean(0), y.mean()
    Xc, yc = X - xm, y - ym
    G = Xc.T @ Xc
    best = None
    for a in alphas:
        inv = np.linalg.inv(G + a * np.eye(len(G)))
        coef = inv @ (Xc.T @ yc)
        h = np.einsum("ij,jk,ik->i", Xc, inv, Xc)
        r = (yc - Xc @ coef) / np.maximum(1 - h, 1e-9)
        err = float(np.mean(r ** 2))
        if best is None or err < best[0]:
            best = (err, coef)
    coef = best[1]
    return lambda Z: (Z - xm) @ coef + ym


def _tau(pred, truth, mask=None):
    from scipy.stats import kendalltau

    if mask is not None:
        pred, truth = pred[mask], truth[mask]
    return float(kendalltau(pred, truth).statistic)


def run(out: str | os.PathLike = paths.PREDICTORS_DIR, data_dir: str | os.PathLike | None = None,
        sizes=SIZES, seeds: int = SEEDS, gcn_epochs: int = GCN_EPOCHS, resume: bool = True) -> Path:
    from hwnas.predictors.cells import cells, struct_features
    from hwnas.predictors.gcn import CellGCNPredictor
    from hwnas.search.methods import TableAccuracy
    from hwnas.search.spaces import create_space
    from threadpoolctl import threadpool_limits

    data_dir = paths.data_dir(data_dir)
    sp = create_space("nb201")
    cs = cells(sp)
    sup = TableAccuracy(sp, f"table:{data_dir / _SUPERNET[0]}:{_SUPERNET[1]}")
    tru = TableAccuracy(sp, f"table:{data_dir / _TRUTH[0]}:{_TRUTH[1]}")
    est, truth = sup.peek(cs.archs), tru.peek(cs.archs)
    top = truth >= np.quantile(truth, 1 - TOP)
    X = struct_features(sp)
    rows = [{"model": "supernet (raw estimates)", "n_train": 0, "seed": 0, "tau_all": _tau(est, truth),
             "tau_top5": _tau(est, truth, top), "top1_true_acc": float(truth[np.argmax(est)]), "fit_seconds": 0.0}]
    import time

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done: set = set()
    prev = out / "nb201-ws-fitting.csv"
    if resume and prev.exists():  # a stopped run continues: the (N, seed) pairs with all their models kept
        old = pd.read_csv(prev)
        old = old[old.n_train > 0]
        full = old.groupby(["n_train", "seed"]).model.nunique()
        want = lambda n: 3 if n <= HGB_MAX else 2  # noqa: E731 - gcn, ridge (+ boosting up to HGB_MAX)
        done = {(int(n), int(sd)) for (n, sd), k in full.items() if k >= want(n)}
        rows += [r for r in old.to_dict("records") if (int(r["n_train"]), int(r["seed"])) in done]
    with threadpool_limits(limits=1):  # BLAS and OpenMP (boosting): one core, it is shared
        for s in range(seeds):  # seed-major, the files rewritten after each fit: a stopped run leaves a report
            for n in sizes:
                if (int(n), s) in done:
                    continue
                rng = np.random.default_rng(1000 * s + n)
                idx = rng.choice(len(cs), size=n, replace=False)
                y = est[idx]  # only what a supernet read gives: no truth
                models = {}
                t = time.process_time()
                gcn = CellGCNPredictor(sp, seed=s, hidden=32, epochs=gcn_epochs).fit_cells(idx, y)
                models["gcn"] = (gcn.predict_cells(np.arange(len(cs))), time.process_time() - t)
                t = time.process_time()
                models["ridge-struct"] = (_ridge(X[idx], y)(X), time.process_time() - t)
                if n <= HGB_MAX:
                    from sklearn.ensemble import HistGradientBoostingRegressor

                    t = time.process_time()
                    hgb = HistGradientBoostingRegressor(max_iter=100, random_state=s).fit(X[idx], y)
                    models["hgb-struct"] = (hgb.predict(X), time.process_time() - t)
                for name, (pred, secs) in models.items():
                    rows.append({"model": name, "n_train": n, "seed": s, "tau_all": _tau(pred, truth),
                                 "tau_top5": _tau(pred, truth, top),
                                 "top1_true_acc": float(truth[np.argmax(pred)]), "fit_seconds": round(secs, 2)})
                df = pd.DataFrame(rows)
                atomic_write_bytes(out / "nb201-ws-fitting.csv", df.to_csv(index=False).encode())
                write_report(df, out, truth, seeds, gcn_epochs)
    return out / "nb201-ws-fitting.md"


def write_report(df: pd.DataFrame, out: Path, truth: np.ndarray, seeds: int, gcn_epochs: int) -> Path:
    """OUT/nb201-ws-fitting.md and its plot (which the report names: kept in step with the table)."""
    _plot(df, Path(out) / "nb201-ws-fitting.png")
    return write_markdown(Path(out) / "nb201-ws-fitting.md", _markdown(df, truth, seeds, gcn_epochs))


def _plot(df: pd.DataFrame, path: Path) -> None:
    """Kendall tau against the truth vs N (mean and min-max over seeds), all cells and true top
    5%, one line per model, the raw supernet estimates as a dashed line."""
    plt = pyplot()
    raw = df[df.n_train == 0].iloc[0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, col, title in zip(axes, ("tau_all", "tau_top5"), ("all 15,625 cells", "true top 5%"), strict=True):
        for m, g in df[df.n_train > 0].groupby("model"):
            a = g.groupby("n_train")[col].agg(["mean", "min", "max"])
            ax.errorbar(a.index, a["mean"], yerr=[a["mean"] - a["min"], a["max"] - a["mean"]], marker="o",
                        capsize=3, label=m)
        ax.axhline(raw[col], color="k", ls="--", lw=0.9, label="supernet estimates (raw)")
        ax.set_xscale("log")
        ax.set_xlabel("N supernet-read cells fitted")
        ax.set_ylabel("Kendall tau vs 200-epoch truth")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_figure(fig, path, "NB201: models fitted on supernet estimates, ranked against the truth")


def _markdown(df: pd.DataFrame, truth, seeds, gcn_epochs) -> list[str]:
    raw = df[df.n_train == 0].iloc[0]
    done = df[df.n_train > 0].groupby("n_train").seed.nunique().to_dict()
    g = df[df.n_train > 0].groupby(["n_train", "model"]).agg(
        tau_all=("tau_all", "mean"), tau_all_sd=("tau_all", "std"), tau_top5=("tau_top5", "mean"),
        tau_top5_sd=("tau_top5", "std"), top1=("top1_true_acc", "mean"), secs=("fit_seconds", "median")).reset_index()
    best_other = {}
    for n, part in g[g.model != "gcn"].groupby("n_train"):
        best_other[n] = part.sort_values("tau_all", ascending=False).model.iloc[0]
    L = ["# NB201 weight-sharing: does fitting supernet-read cells beat the supernet's own ranking?", "",
         "Written by `make predictors` (`hwnas predictors ws-fitting`). Estimates: "
         f"`$HWNAS_DATA_DIR/{_SUPERNET[0]}` (a CIFAR-10 one-shot supernet's accuracy of every cell); truth: "
         f"`$HWNAS_DATA_DIR/{_TRUTH[0]}`. Each model is fitted on N cells drawn uniformly with their supernet "
         "estimates only (no truth), then predicts all 15,625 cells. Kendall tau against the truth over all cells "
         f"and among the true top 5% ({int((truth >= np.quantile(truth, 0.95)).sum())} cells); top-1 = true "
         f"accuracy of the cell ranked first (optimum {truth.max():.2f}%). Mean (+- std) over the seeds done "
         f"(of {seeds}: " + ", ".join(f"N={n}: {k}" for n, k in sorted(done.items())) + "); "
         f"the GCN trains {gcn_epochs} full-batch epochs at every N (few, to stay affordable on a shared CPU). "
         f"Gradient boosting only up to N = {HGB_MAX} (cost). Fit time: median CPU seconds.", ""]
    rows = [["supernet estimates (raw)", "-", f"{raw.tau_all:.3f}", f"{raw.tau_top5:.3f}", f"{raw.top1_true_acc:.2f}", "0"]]
    for _, r in g.sort_values(["n_train", "tau_all"], ascending=[True, False]).iterrows():
        tag = " (best other)" if best_other.get(r.n_train) == r.model else ""
        rows.append([f"{r.model}{tag}", r.n_train, f"{r.tau_all:.3f} +- {r.tau_all_sd:.3f}",
                     f"{r.tau_top5:.3f} +- {r.tau_top5_sd:.3f}", f"{r.top1:.2f}", f"{r.secs:.1f}"])
    L += table(["model", "N", "tau, all cells", "tau, true top 5%", "top-1 true acc %", "fit s"], rows, "lrrrrr")
    L += ["", "## What is found", ""]
    for n in sorted(g.n_train.unique()):
        gc = g[(g.n_train == n) & (g.model == "gcn")].iloc[0]
        bo = g[(g.n_train == n) & (g.model == best_other[n])].iloc[0]
        L.append(f"- N = {n}: GCN tau {gc.tau_all:.3f} (all) / {gc.tau_top5:.3f} (top 5%), "
                 f"{best_other[n]} {bo.tau_all:.3f} / {bo.tau_top5:.3f}, against the raw estimates' "
                 f"{raw.tau_all:.3f} / {raw.tau_top5:.3f}: fitting "
                 + ("improves" if max(gc.tau_all, bo.tau_all) > raw.tau_all else "does not improve")
                 + " the ranking over all cells and "
                 + ("improves" if max(gc.tau_top5, bo.tau_top5) > raw.tau_top5 else "does not improve")
                 + " it among the best cells.")
    L += ["", "Per-seed rows: `nb201-ws-fitting.csv` beside this file; plot: `nb201-ws-fitting.png` (mean and "
          "min-max over seeds)."]
    return L

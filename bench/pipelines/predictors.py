"""Predictor comparison by rank correlation (`hwnas predictors evaluate` / `standard`).

For each predictor, train size and seed: train on a random subset (seed's permutation, prefix of
that size, so sizes are nested), test on every remaining row. Rows are appended to
DIR/rank_correlation.csv atomically after each fit, so a killed run resumes where it stopped.
Same seeds -> identical CSV except the timing columns `fit_seconds` and `predict_seconds`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.pipelines.store import locked_output, read_csv_rows, read_json_file
from core import paths
from core.io import atomic_write_bytes
from devices.table import import_arch_table, parse_table_spec, read_table_file
from predictors.base import create_predictor, list_predictors
from predictors.metrics import evaluate_predictions
from predictors.transfer import PriorTables

COLUMNS = ["predictor", "train_size", "seed", "kendall_tau", "spearman", "pearson", "mae", "rmse",
           "precision_at_top5pct", "within_10pct", "n_test", "fit_seconds", "predict_seconds"]
TIMING_COLUMNS = ["fit_seconds", "predict_seconds"]
ACCURACY_PREDICTORS = ["bilinear", "bilinear-struct", "gcn", "gcn-struct", "xgb", "xgb-struct", "rf",
                       "mlp", "ridge", "ridge-struct", "knn"]
COST_PREDICTORS = ACCURACY_PREDICTORS + ["ridge-ops", "ridge-cost", "lut-sum"]
_COST_HINTS = ("latency", "energy", "_ms", "_mj", "mem", "_bytes")


@dataclass
class Target:
    archs: list
    arch_strs: list[str]
    y: np.ndarray
    source: str
    column: str
    cost: bool


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
        table = import_arch_table(path, space, [column])
    arch_strs = table["arch_str"].tolist()
    archs = [space.from_str(s) for s in arch_strs]
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
        t = import_arch_table(path, space, path_cols)
        row = {a: i for i, a in enumerate(t["arch_str"])}
        missing = [a for a in target.arch_strs if a not in row]
        if missing:
            raise ValueError(f"prior table {path} has no row for {len(missing)} arch(s) of the target, e.g. {missing[0][:60]!r}")
        idx = np.asarray([row[a] for a in target.arch_strs])
        for col in path_cols:
            cols.append(f"{Path(path).stem}:{col}")
            values.append(t[col].to_numpy(np.float64)[idx])
    return PriorTables(list(target.arch_strs), cols, np.asarray(values, dtype=np.float64).T)


def split(n_rows: int, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_rows)
    return perm[:train_size], perm[train_size:]


@locked_output()  # one writer per --out (issue 15)
def evaluate(space, table: str, target: str | None, out: str | os.PathLike,
             predictors: list[str] | None = None, train_sizes: tuple[int, ...] = (10, 100, 1000),
             seeds: int = 5, prior_tables: list[str] | None = None, mode: str = "auto",
             fresh: bool = False, progress: bool = True, title: str | None = None) -> pd.DataFrame:
    """Run the comparison into `out`; returns the rows. Validates everything before fitting."""
    from tqdm import tqdm

    from search.spaces import create_space

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
    config = {"space": space.name, "table": t.source, "target": t.column, "cost": t.cost,
              "prior_tables": list(prior_tables or []), "n_rows": len(t.y)}
    csv_path, cfg_path = out / "rank_correlation.csv", out / "config.json"
    rows: list[dict] = []
    if csv_path.exists() and not fresh:
        old_cfg = read_json_file(cfg_path, "predictor comparison config") if cfg_path.exists() else None
        if old_cfg != config:
            raise ValueError(f"{out} holds results of another comparison ({old_cfg}); use another --out or --fresh")
        rows = read_csv_rows(csv_path, ["predictor", "train_size", "seed"], "rank-correlation table").to_dict("records")
    atomic_write_bytes(cfg_path, (json.dumps(config, indent=2) + "\n").encode())
    done = {(r["predictor"], int(r["train_size"]), int(r["seed"])) for r in rows}
    jobs = [(n, s, k) for n in names for s in sizes for k in range(seeds) if (n, s, k) not in done]
    bar = tqdm(jobs, desc=title or out.name, disable=not progress, unit="fit")
    for name, size, seed in bar:
        bar.set_postfix_str(f"{name} n={size} seed={seed}")
        tr, te = split(len(t.y), size, seed)
        model = create_predictor(name, space=space.name, seed=seed)
        t0 = time.perf_counter()
        model.fit([t.archs[i] for i in tr], t.y[tr], prior=prior if model.uses_prior else None)
        t1 = time.perf_counter()
        pred = model.predict([t.archs[i] for i in te])
        t2 = time.perf_counter()
        m = evaluate_predictions(t.y[te], pred, cost=t.cost)
        row = {"predictor": name, "train_size": size, "seed": seed,
               **{k: round(v, 8) for k, v in m.items()}, "n_test": len(te),
               "fit_seconds": round(t1 - t0, 4), "predict_seconds": round(t2 - t1, 4)}
        rows.append(row)
        _write_rows(csv_path, rows, names, sizes)
    df = _write_rows(csv_path, rows, names, sizes)
    df = df[df.predictor.isin(names) & df.train_size.isin(sizes) & (df.seed < seeds)]
    write_summary(df, out, config, title)
    learning_curve(df, out / "learning_curve.png", cost=t.cost, title=title or out.name)
    return df


def _write_rows(path: Path, rows: list[dict], names: list[str], sizes: list[int]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {n: i for i, n in enumerate(names)}
    df = df.assign(_o=df.predictor.map(order).fillna(len(order))).sort_values(
        ["_o", "predictor", "train_size", "seed"], kind="stable").drop(columns="_o").reset_index(drop=True)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())
    return df


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(["predictor", "train_size"], sort=False)
    agg = g.agg(seeds=("seed", "count"), kendall_mean=("kendall_tau", "mean"), kendall_std=("kendall_tau", "std"),
                spearman_mean=("spearman", "mean"), spearman_std=("spearman", "std"),
                p5_mean=("precision_at_top5pct", "mean"), w10_mean=("within_10pct", "mean"),
                mae_mean=("mae", "mean"), fit_s_median=("fit_seconds", "median"))
    return agg.reset_index()


def write_summary(df: pd.DataFrame, out: Path, config: dict, title: str | None = None) -> None:
    agg = aggregate(df)
    cost = config["cost"]
    lines = [f"# {title or out.name}: predictors by rank correlation", "",
             f"- table: `{config['table']}`, target `{config['target']}` ({'cost' if cost else 'accuracy'}), "
             f"space `{config['space']}`, {config['n_rows']} rows",
             "- train on a random subset of each size (nested per seed), test on all remaining rows; "
             "mean +- std over seeds",
             ]
    if config["prior_tables"]:
        lines.append(f"- prior tables (other devices, used by `transfer` only): {', '.join(config['prior_tables'])}")
    lines += ["", "| predictor | train | seeds | Kendall tau | Spearman | prec@top5% | MAE |"
              + (" within 10% |" if cost else "") + " fit s (median) |",
              "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if cost else "") + "---:|"]
    for r in agg.itertuples():
        std = lambda v: "" if pd.isna(v) else f" +- {v:.3f}"  # noqa: E731
        lines.append(f"| {r.predictor} | {r.train_size} | {r.seeds} | {r.kendall_mean:.3f}{std(r.kendall_std)} | "
                     f"{r.spearman_mean:.3f}{std(r.spearman_std)} | {r.p5_mean:.3f} | {r.mae_mean:.4g} |"
                     + (f" {r.w10_mean:.3f} |" if cost else "") + f" {r.fit_s_median:.3f} |")
    lines += ["", "Best predictor per train size (by mean " + ("Spearman" if cost else "Kendall tau") + "):", ""]
    key = "spearman_mean" if cost else "kendall_mean"
    for size, grp in agg.groupby("train_size"):
        b = grp.loc[grp[key].idxmax()]
        lines.append(f"- {size}: `{b.predictor}` Kendall {b.kendall_mean:.3f}, Spearman {b.spearman_mean:.3f}")
    lines += ["", "`fit_seconds` / `predict_seconds` are wall times on a shared 2-core machine, the only "
              "columns that differ between runs with the same seeds.", ""]
    atomic_write_bytes(out / "summary.md", "\n".join(lines).encode())


def learning_curve(df: pd.DataFrame, path: Path, cost: bool, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(df)
    metric = "spearman" if cost else "kendall"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.tab20.colors  # more predictors than the default 10-colour cycle
    for i, (name, g) in enumerate(agg.groupby("predictor", sort=False)):
        ax.errorbar(g.train_size, g[f"{metric}_mean"], yerr=g[f"{metric}_std"].fillna(0), marker="o",
                    capsize=3, label=name, color=colors[(2 * i) % 20 + (2 * i) // 20], ls="--" if "struct" not in name and name != "transfer" else "-")
    ax.set_xscale("log")
    ax.set_xlabel("training architectures")
    ax.set_ylabel("Spearman rho" if cost else "Kendall tau")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---- the standard comparison (`make predictors`) ------------------------------------------
HELP_NB201_DEVICES = ("1080ti_1", "2080ti_32", "titanxp_256", "gold_6240", "silver_4114", "pixel3",
                      "samsung_a50", "essential_ph_1")
HELP_FBNET_DEVICES = ("1080ti_32", "gold_6240", "pixel3")
FEWSHOT_PREDICTORS = ["transfer", "ridge-cost", "ridge-ops", "ridge", "lut-sum"]
# Subsets keep `make predictors` near 20 min on a shared 2-core machine; every predictor runs
# on the 200-epoch table with 5 seeds.
LATENCY_PREDICTORS = ["ridge", "ridge-ops", "ridge-cost", "ridge-struct", "bilinear", "lut-sum", "xgb", "transfer"]
LOWFI_PREDICTORS = ["bilinear-struct", "gcn-struct", "xgb", "xgb-struct", "ridge-struct"]
SAMPLES = Path("results/accuracies/mbv3-fmnist/supernet-samples.parquet")


def _hardware(col: str) -> str:
    """'titanxp_256' -> 'titanxp': a device's batch-size variants share one chip."""
    head, _, tail = col.rpartition("_")
    return head if tail.isdigit() and head else col


def standard(out_root: str | os.PathLike = "results/predictors", data_dir: str | os.PathLike | None = None,
             seeds: int = 5, only: list[str] | None = None, progress: bool = True) -> list[str]:
    """Every experiment of the standard comparison; returns the lines of the top-level summary."""
    data = paths.data_dir(data_dir)
    out_root = Path(out_root)
    acc200 = data / "nb201-acc-200ep/nb201_cifar10_200ep.csv"
    acc12 = data / "nb201-acc-12ep-minibench/nb201_cifar10_12ep.csv"
    help201 = data / "help-latency/help_nasbench201_latency_ms.csv"
    helpfb = data / "help-latency/help_fbnet_latency_ms.csv"
    for f in (acc200, acc12, help201, helpfb):
        if not f.exists():
            raise FileNotFoundError(f"{f}: benchmark table missing; set HWNAS_DATA_DIR to the shared data folder")
    exps: list[tuple[str, dict]] = [
        ("nb201-c10-200ep", dict(space="nb201", table=f"{acc200}:cifar10_test_acc", target=None)),
        ("nb201-c10-12ep", dict(space="nb201", table=f"{acc12}:cifar10-test", target=None,
                                predictors=LOWFI_PREDICTORS, seeds=3)),
    ]
    def others(table: Path, dev: str) -> list[str]:
        """Prior for `dev`: every other column of its table, except the same chip at other batch sizes."""
        cols = [c for c in pd.read_csv(table, nrows=1).columns if c not in ("arch_idx", "arch_str", "op_idx_list")]
        return [f"{table}:{c}" for c in cols if _hardware(c) != _hardware(dev)]

    for family, space, table, devices in (("nb201", "nb201", help201, HELP_NB201_DEVICES),
                                          ("fbnet", "fbnet", helpfb, HELP_FBNET_DEVICES)):
        for dev in devices:
            exps.append((f"help-{family}-{dev}", dict(space=space, table=f"{table}:{dev}", target=None, mode="cost",
                                                      predictors=LATENCY_PREDICTORS, train_sizes=(20, 100, 1000),
                                                      prior_tables=others(table, dev))))
    for dev in HELP_NB201_DEVICES:
        exps.append((f"help-fewshot/{dev}", dict(space="nb201", table=f"{help201}:{dev}", target=None, mode="cost",
                                                 predictors=FEWSHOT_PREDICTORS, train_sizes=(10, 20, 100),
                                                 prior_tables=others(help201, dev))))
    samples_present = SAMPLES.exists()
    if samples_present:
        exps.append(("mbv3-fmnist-supernet", dict(space="mbv3-fmnist", table=f"{SAMPLES}:val_acc", target=None,
                                                  mode="accuracy", train_sizes=(10, 100, 1000))))
    results: dict[str, pd.DataFrame] = {}
    for name, kw in exps:
        if only and not any(name.startswith(o) for o in only):
            continue
        if name.startswith("mbv3"):  # the sample file may hold fewer archs than 1000 + test
            from search.spaces import create_space

            n_rows = len(load_target(create_space("mbv3-fmnist"), kw["table"], None, "accuracy").y)
            kw["train_sizes"] = tuple(s for s in kw["train_sizes"] if s <= n_rows // 2) or (n_rows // 2,)
        kw.setdefault("seeds", seeds)
        results[name] = evaluate(out=out_root / name, progress=progress, title=name, **kw)
    ceilings = _latency_ceilings(help201, [k.split("help-nb201-", 1)[1] for k in results if k.startswith("help-nb201-")])
    lines = _targets(results, samples_present, ceilings)
    if not only:
        atomic_write_bytes(out_root / "summary.md", "\n".join(lines).encode())
    return lines


def _latency_ceilings(help201: Path, devices: list[str]) -> dict[str, tuple[float, float]]:
    """Two in-sample bounds per device: (op-count ceiling, twin retest Spearman).

    Op-count ceiling: Spearman of the latency with its own mean over cells of equal raw and live
    op counts; no predictor that sees only op counts (the `ops` encoding) can beat it.
    Twin retest: Spearman between the two measurements of the 1,500 pairs of cells that run the
    same ops on the same tensors (`NB201Space.swap_twins`); its square root approximates the best
    correlation any predictor can reach against this table's noisy values.
    """
    if not devices:
        return {}
    from scipy.stats import spearmanr

    from predictors.encodings import encode
    from search.spaces import create_space

    sp = create_space("nb201")
    df = pd.read_csv(help201)
    key = pd.Series(["".join(map(str, r)) for r in encode(sp, [sp.from_str(a) for a in df.arch_str], "ops").astype(int)])
    row = {int(i): n for n, i in enumerate(df.arch_idx)}
    twins = np.array([(row[i], row[j]) for i, j in sp.swap_twins()])
    out = {}
    for dev in devices:
        y = pd.Series(df[dev].to_numpy())
        out[dev] = (float(spearmanr(y.groupby(key).transform("mean"), y).statistic),
                    float(spearmanr(y.to_numpy()[twins[:, 0]], y.to_numpy()[twins[:, 1]]).statistic))
    return out


def _mean(df: pd.DataFrame, size: int, metric: str) -> pd.Series:
    return df[df.train_size == size].groupby("predictor", sort=False)[metric].mean()


def _targets(results: dict[str, pd.DataFrame], samples_present: bool,
             ceilings: dict[str, float] | None = None) -> list[str]:
    L = ["# Predictors: standard comparison", "",
         "Written by `make predictors` (`hwnas predictors standard --out results/predictors`). Each folder",
         "holds `rank_correlation.csv` (one row per predictor, train size, seed), `summary.md` and",
         "`learning_curve.png`. `*-struct` predictors use the NB201 encoding that knows dead edges and",
         "isomorphic cells (predictors/encodings.py); plain ones use the one-hot encoding.", "",
         "## Targets (issue 6)", ""]
    r = results.get("nb201-c10-200ep")
    if r is not None:
        for size, goal in ((1000, 0.80), (100, 0.60)):
            m = _mean(r, size, "kendall_tau")
            if len(m):
                best, plain = m.idxmax(), m.get("xgb", float("nan"))
                n_seeds = int(r[(r.train_size == size) & (r.predictor == best)].seed.nunique())
                L.append(f"- NB201 CIFAR-10 200 ep, {size} train archs: best `{best}` Kendall tau {m.max():.3f} "
                         f"(mean of {n_seeds} seeds; target >= {goal:.2f}: {'met' if m.max() >= goal else 'NOT met'}); "
                         f"plain one-hot xgb {plain:.3f}")
    lat = {k: v for k, v in results.items() if k.startswith(("help-nb201-", "help-fbnet-"))}
    if lat:
        L.append("- HELP latency, 100 train archs, best predictor per device (target Spearman >= 0.95 on every device); "
                 "`transfer` also reads the other devices' tables of the same space (prior), the rest see only the arch:")
        worst, worst_np = 1.0, 1.0
        for k, v in lat.items():
            m = _mean(v, 100, "spearman")
            no_prior = m.drop("transfer", errors="ignore")
            worst, worst_np = min(worst, m.max()), min(worst_np, no_prior.max())
            dev = k.split("help-nb201-", 1)[-1]
            ceil = ""
            if ceilings and dev in ceilings:
                op, twin = ceilings[dev]
                ceil = f"; op-count ceiling {op:.3f}; twin retest {twin:.3f}, noise ceiling ~{np.sqrt(max(twin, 0)):.3f}"
            L.append(f"  - {k}: `{m.idxmax()}` {m.max():.3f}; without prior `{no_prior.idxmax()}` {no_prior.max():.3f} "
                     f"(plain one-hot ridge {m.get('ridge', float('nan')):.3f}{ceil})")
        L.append(f"  - lowest over devices: {worst:.3f} ({'met' if worst >= 0.95 else 'NOT met'}); "
                 f"without prior {worst_np:.3f} ({'met' if worst_np >= 0.95 else 'NOT met'})")
        if ceilings:
            L.append("  - op-count ceiling: Spearman of the latency with its own mean over all cells that share "
                     "raw and live op counts (in-sample, whole table): no predictor on op counts alone can beat it.")
            L.append("  - twin retest: Spearman between the 1,500 pairs of cells that run the same ops on the same "
                     "tensors (nodes 1 and 2 swapped behind a `none` edge), each measured once by HELP; the square "
                     "root approximates the best correlation any predictor can reach against the table's values. "
                     "Where it is below 0.95 the target is out of reach on that table.")
    few = {k: v for k, v in results.items() if k.startswith("help-fewshot/")}
    if few:
        per = {k.split('/', 1)[1]: _mean(v, 20, "spearman") for k, v in few.items()}
        tr = np.mean([m.get("transfer", np.nan) for m in per.values()])
        rs = np.mean([m.get("ridge-cost", np.nan) for m in per.values()])
        L.append(f"- Few-shot with other devices' tables as prior, 20 samples of the new device: `transfer` mean "
                 f"Spearman {tr:.3f} over {len(per)} devices (target >= 0.93: {'met' if tr >= 0.93 else 'NOT met'}); "
                 f"without prior (ridge-cost) {rs:.3f}"
                 + (": on average the prior tables add nothing over the cost encoding here" if tr <= rs else "")
                 + ". Prior = every other HELP NB201 device column except the same chip at other batch sizes.")
        L += ["", "| device | " + " | ".join(f"{p} @20" for p in FEWSHOT_PREDICTORS) + " |",
              "|---|" + "---:|" * len(FEWSHOT_PREDICTORS)]
        for dev, m in per.items():
            L.append(f"| {dev} | " + " | ".join(f"{m.get(p, float('nan')):.3f}" for p in FEWSHOT_PREDICTORS) + " |")
    r = results.get("mbv3-fmnist-supernet")
    if r is not None:
        n_rows = int(r.n_test.iloc[0] + r.train_size.iloc[0])
        for size in sorted(r.train_size.unique()):
            m = _mean(r, size, "kendall_tau")
            L.append(f"- mbv3-fmnist supernet samples ({n_rows} archs, `{SAMPLES}`), {size} train archs: best "
                     f"`{m.idxmax()}` Kendall tau {m.max():.3f} (no target in the issue)")
        acc = read_table_file(SAMPLES)["val_acc"].to_numpy(np.float64)
        p = acc.mean() / 100
        L.append(f"  - context: the sampled accuracies differ little (std {acc.std():.2f} pp across archs) while "
                 f"a 1000-image evaluation (the sampler's count, see results/accuracies/mbv3-fmnist/) carries up to "
                 f"{100 * np.sqrt(p * (1 - p) / 1000):.2f} pp binomial noise (less between subnets scored on the "
                 "same images): much of this ranking may be evaluation noise; not separated here")
    L.append("")
    if not samples_present:
        L.append(f"- mbv3-fmnist supernet samples: `{SAMPLES}` was absent when this ran, so that comparison is "
                 "not in this folder; `make predictors` adds it once `hwnas sample` has written the file.")
    L += ["", "Experiments: " + ", ".join(f"`{k}`" for k in results), ""]
    return L

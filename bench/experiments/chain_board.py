"""The chain-track board: every method on one chain space under the latency measured on this
CPU, each pick judged by what it really achieves and costs.

Stages (each resumable; `stages` picks which run, the report reads whatever has landed):
1. `search`: every method x bound x seed (bench/engine/search.py). Bounds are quantiles of
   the calibrated latency (`latency_ms@<device>:calibrated`: the block table's sum corrected by
   validate-lut's whole-network calibration) over sampled archs. Query methods read a shared
   supernet's estimates; one-shot methods train their own supernets. Every method ends with the
   same k final validation reads (`final_reads`; search/methods/base.py): each run records its
   own top-1 pick (k = 0, unread) beside its k-validated pick, and both are judged below.
2. `measure`: each distinct pick timed end to end with validate-lut's protocol (two passes
   interleaved with the reference network, normalised on the table's scale); a pick meets its
   bound when the mean of the two passes does.
3. `train`: each distinct pick trained stand-alone with the board's protocol (the device-bench
   pool's when judged against a pool; bench/engine/standalone.py), every protocol seed;
   accuracy = mean over seeds.
4. `report`: OUT/<space>.csv (one row per method, bound, seed and pick: `k=0`, `k=K`) and
   OUT/<space>.md. Regret is against the best stand-alone accuracy known among feasible archs:
   the reference set (its calibrated latency) and every pick (its measured latency); with a pool
   (`pool`), also against the pool's best arch under each bound (measured latency on both sides;
   left empty and said when the pool is incomplete). Statistics per pick kind: Friedman across
   methods over the (bound, seed) blocks, then every pair by Wilcoxon signed-rank with Holm.

Cost: `search_cpu_s` is the CPU seconds of the search itself (a one-shot method's includes
training its supernet); the shared supernet the query methods read was trained once, and its
cost is shown once beside the board, not charged to every row. Runs share the supernet's
estimates through a store (search/supernet/estimate_store.py); an estimate read from it is
charged the CPU seconds it cost when made, so a row's cost does not depend on run order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine import search as search_pipeline
from hwnas.bench.engine.standalone import StandaloneProtocol
from hwnas.core import paths
from hwnas.core.invocation import command_line
from hwnas.core.io import atomic_write_bytes
from hwnas.search.constraints import make_constraint
from scipy import stats

from ..reports.writer import table, write_markdown

log = logging.getLogger("hwnas")

STAGES = ("search", "measure", "train", "report")


@dataclass
class ChainBoard:
    """What a chain-track board runs; `stages` chooses how far (the report always follows)."""

    space: str = "mbv3-fmnist"
    device: str = "cpu-t1"  # block table id under tables_dir/<space>/
    supernet: str | None = None  # shared checkpoint the query methods read
    methods: tuple[str, ...] | None = None  # default: every method that runs on the space
    quantiles: tuple[float, ...] = (0.25, 0.5)
    seeds: int = 8
    budget: int = 100  # queries of the query-based methods
    # k: the final validation reads every method gets (search.methods.base: each run records its own
    # top-1 pick, k = 0, beside its k-validated pick); None: each method's own rule (boards before it)
    final_reads: int | None = 10
    # a device-bench pool table (arch_str, val_acc, test_acc, latency_ms): picks are also judged
    # against its best arch under each bound, by measured latency, when it is complete
    pool: Path | None = None
    params: dict = field(default_factory=dict)
    data: str = "fashion-mnist"
    tables_dir: Path = paths.TABLES_DIR
    reference: Path | None = None  # the stand-alone reference set (results/accuracies/<space>/standalone.parquet)
    out: Path = paths.LEADERBOARDS_DIR
    stages: tuple[str, ...] = STAGES
    guard: float | None = None  # share kept below each bound while searching (None: from validate-lut)
    rel_ci: float = 0.01  # whole networks timed as validate-lut times them (Makefile LUT_ARGS)
    executor: str = "serial"
    workers: int | None = None
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol)
    progress: bool = True
    # where the query methods' runs share the supernet's estimates (None: every run scores its own)
    estimate_store: Path | None = Path(".cache/supernet-estimates")

    @property
    def runs_dir(self) -> Path:
        return Path(self.out) / f"{self.space}-runs"

    def table(self) -> Path:
        return Path(self.tables_dir) / self.space / f"{self.device}.parquet"

    def guard_band(self) -> float:
        """The share the searches keep below each bound: `guard`, or else the 90th percentile of
        the calibrated table's relative error on validate-lut's held-out networks, so a pick
        predicted just under its bound does not miss it when measured (0 when not validated)."""
        if self.guard is not None:
            return float(self.guard)
        per = self.table().with_name(f"{self.device}-validation-per-network.csv")
        if not per.exists():
            log.warning("%s: no validation of the table; searching with no guard band", per)
            return 0.0
        df = pd.read_csv(per)
        test = df[df["split"] == "test"]
        rel = (test["normalised_calibrated_ms"] - test["normalised_measured_ms"]) / test["normalised_measured_ms"]
        return float(np.quantile(np.abs(rel), 0.9))

    def constraints(self, space) -> dict[str, tuple[float, float]]:
        """Search constraint text -> (quantile, bound): each bound is a quantile of the calibrated
        latency over 4,000 archs; the search runs under bound x (1 - guard band), the pick is
        judged against the bound."""
        source, g = f"{self.device}:calibrated", self.guard_band()
        out = {}
        for q in self.quantiles:
            b = float(f"{search_pipeline.bound_at_quantile(space, 'latency_ms', source, q, self.tables_dir):.4g}")
            out[make_constraint("latency_ms", source, float(f"{b * (1 - g):.4g}")).text] = (q, b)
        return out


def run(board: ChainBoard) -> Path:
    """Run the chosen stages (resumably) and write the board."""
    from hwnas.search.methods import list_methods
    from hwnas.search.spaces import create_space

    unknown = sorted(set(board.stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; expected some of {', '.join(STAGES)}")
    space = create_space(board.space)
    if not board.table().exists():
        raise FileNotFoundError(f"{board.table()}: no block table; run `make profile DEVICE=... SPACE={board.space}` "
                                "and `make validate-lut` first")
    constraints = board.constraints(space)
    methods = list(board.methods or list_methods(supports=board.space))
    if "search" in board.stages:
        if not board.supernet:
            raise ValueError(f"the {board.space} board needs --supernet CKPT (the shared supernet the query "
                             "methods read; `make standalone` trains the reference one)")
        search_pipeline.run(board.space, methods, f"supernet:{board.supernet}", list(constraints), (board.budget,),
                            board.seeds, board.runs_dir, params=board.params, data=board.data,
                            tables_dir=board.tables_dir, progress=board.progress, executor=board.executor,
                            workers=board.workers, estimate_store=board.estimate_store,
                            final_reads=board.final_reads)
    runs = _pick_rows(_runs(board))
    picks = list(dict.fromkeys(runs["arch_str"])) if not runs.empty else []
    if "measure" in board.stages and picks:
        measure_picks(board, space, picks)
    if "train" in board.stages and picks:
        from hwnas.bench.engine.standalone import train_reference

        train_reference(space, board.table(), board.runs_dir / "picks-standalone.parquet", protocol=board.protocol,
                        archs=[space.from_str(s) for s in picks], executor="process" if board.executor == "serial"
                        else board.executor, workers=board.workers or 1, progress=board.progress,
                        selection=f"the board's {len(picks)} distinct picks (every pick of every run in runs.csv)")
    return write_board(board, constraints)


def _runs(board: ChainBoard) -> pd.DataFrame:
    p = board.runs_dir / "runs.csv"
    return pd.read_csv(p) if p.exists() else pd.DataFrame(columns=["method", "constraint", "seed", "arch_str"])


def measure_picks(board: ChainBoard, space, picks: list[str]) -> pd.DataFrame:
    """Time each pick end to end (validate-lut's protocol, two passes; resumable rows)."""
    from hwnas.bench.engine.profile import arch_units
    from hwnas.bench.engine.validate_lut import (
        ValidateConfig,
        measure_networks,
        reference_calibration,
    )
    from hwnas.devices.registry import create_device
    from hwnas.devices.table import read_sidecar
    from hwnas.devices.timing import TimingConfig

    tmeta = read_sidecar(board.table())
    if "device" not in tmeta:
        raise ValueError(f"{board.table()}: its sidecar names no device spec; re-profile it with `hwnas profile`")
    device = create_device(tmeta["device"])
    vc = ValidateConfig(space=board.space, device=tmeta["device"], timing=TimingConfig(rel_ci=board.rel_ci),
                        resume=True, progress=board.progress)
    try:
        return measure_networks(vc, device, space, arch_units(space, [space.from_str(s) for s in picks]),
                                reference_calibration(tmeta), board.runs_dir / "picks-latency.parquet")
    finally:
        device.close()


def measured_latency(board: ChainBoard) -> dict[str, float]:
    """Arch string -> mean of the two end-to-end passes (normalised ms); only archs with both."""
    p = board.runs_dir / "picks-latency.parquet"
    if not p.exists():
        return {}
    df = pd.read_parquet(p)
    col = "latency_norm_ms" if df.get("latency_norm_ms") is not None and df["latency_norm_ms"].notna().all() \
        else "latency_ms"
    g = df.groupby("arch_str")[col].agg(["mean", "count"])
    return g.loc[g["count"] >= 2, "mean"].to_dict()


def _standalone(path: Path | None) -> pd.DataFrame:
    """Per arch (standalone_report.per_arch) of a stand-alone file; empty when there is none."""
    from hwnas.bench.engine.standalone import COLUMNS
    from hwnas.bench.reports.standalone_report import per_arch

    exists = path is not None and Path(path).exists()
    return per_arch(pd.read_parquet(path) if exists else pd.DataFrame(columns=COLUMNS))


def pick_label(k) -> str:
    """The board's name of a pick: `k=0` (the method's own top-1, unread), `k=K` (its best of its top
    K read once each), `own rule` (a run made before the uniform rule: the method's own reads)."""
    return "own rule" if k is None or (isinstance(k, float) and np.isnan(k)) else f"k={int(k)}"


def _pick_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and pick: the returned pick (`arch_str`, k-validated) and, for runs made
    under the uniform rule (`final_reads`), the method's own top-1 (`model_arch_str`, k = 0),
    with its own search estimate and predicted cost."""
    if runs.empty:
        return runs.assign(pick=pd.Series(dtype=str))
    k = runs["final_reads"] if "final_reads" in runs else pd.Series(np.nan, index=runs.index)
    out = [runs.assign(pick=[pick_label(v) for v in k])]
    if "model_arch_str" in runs:
        top = runs[k.notna() & runs["model_arch_str"].notna()]
        if len(top):
            out.append(top.assign(pick=pick_label(0), arch_str=top["model_arch_str"],
                                  accuracy=top.get("model_accuracy", np.nan), cost=top.get("model_cost", np.nan)))
    return pd.concat(out, ignore_index=True)


def pool_best(board: ChainBoard, constraints: dict[str, tuple[float, float]]) -> tuple[dict, str]:
    """({constraint: (best val %, arch)} of the pool under each bound by its measured latency, a
    line saying what the board judged against). Empty with the reason when no pool is given, when
    it is incomplete (an arch not trained or not timed: never judged on part of it), or when its
    training protocol is not the board's (the picks' accuracies would not be comparable)."""
    if board.pool is None:
        return {}, ""
    p = Path(board.pool)
    if not p.exists():
        raise FileNotFoundError(f"--pool {p}: no such table; `make device-bench` writes it "
                                "(results/device-bench/<space>/<device>.parquet)")
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    missing = [c for c in ("arch_str", "val_acc", "latency_ms") if c not in df.columns]
    if missing:
        raise ValueError(f"--pool {p}: no column {', '.join(missing)}; expected a device-bench table "
                         "(arch_str, val_acc, test_acc, latency_ms)")
    name, n = paths.portable(p), len(df)
    trained, timed = int(df["val_acc"].notna().sum()), int(df["latency_ms"].notna().sum())
    if trained < n or timed < n:
        return {}, (f"Pool `{name}` is incomplete ({trained} of {n} archs trained, {timed} of {n} timed end to "
                    "end): regret against the pool is left empty, never taken from part of it.")
    meta = p.with_name(p.name.split(".")[0] + ".meta.json")
    proto = _json(meta).get("protocol") if meta.exists() else None
    mine = {k: v for k, v in board.protocol.key().items() if k != "seeds"}
    if proto is None or {k: v for k, v in proto.items() if k != "seeds"} != mine:
        return {}, (f"Pool `{name}` was trained with {proto or 'an unrecorded protocol'}, the picks with "
                    f"{mine}: regret against the pool is left empty (train the picks with the pool's protocol).")
    best = {}
    for c, (_, bound) in constraints.items():
        ok = df[df["latency_ms"] <= bound]
        if len(ok):
            r = ok.loc[ok["val_acc"].idxmax()]
            best[c] = (float(r["val_acc"]), str(r["arch_str"]))
    return best, (f"Pool `{name}` ({n} archs, every one trained and timed end to end): regret against its best "
                  "arch under each bound by measured latency, seed-0 val accuracy on both sides (the pool's "
                  "`val_acc` is seed 0).")


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def board_rows(board: ChainBoard, constraints: dict[str, tuple[float, float]]) -> tuple[pd.DataFrame, dict]:
    """One row per run and pick (`pick`: k=0 / k=K / own rule) with what the pick measured and
    achieved, and the best known feasible stand-alone accuracy of each bound."""
    runs = _pick_rows(_runs(board))
    runs = runs[runs["constraint"].isin(constraints)]  # runs of other bounds or guard bands stay in the folder
    if runs.empty:
        return runs, {}
    need = len(board.protocol.seeds)  # an accuracy is the mean over every protocol seed
    lat = measured_latency(board)
    picks = _standalone(board.runs_dir / "picks-standalone.parquet")
    picks = picks[picks.seeds >= need]
    ref = _standalone(board.reference)
    ref = ref[ref.seeds >= need]
    acc, test = dict(zip(picks.arch_str, picks.val_acc, strict=True)), dict(zip(picks.arch_str, picks.test_acc, strict=True))
    df = runs.copy()
    df["search_bound"] = df["bound"].astype(float)
    df["quantile"] = df["constraint"].map(lambda c: constraints[c][0] if c in constraints else np.nan)
    df["bound"] = df["constraint"].map(lambda c: constraints[c][1] if c in constraints else np.nan)
    df["predicted_latency_ms"] = df["cost"]
    df["measured_latency_ms"] = df["arch_str"].map(lat)
    # nullable bool: <NA> where the pick is not measured yet
    df["meets_bound_measured"] = (df["measured_latency_ms"] <= df["bound"]).astype("boolean").where(
        df["measured_latency_ms"].notna())
    df["standalone_val_acc"] = df["arch_str"].map(acc)
    df["standalone_test_acc"] = df["arch_str"].map(test)
    best = {}
    for c, b in df.groupby("constraint")["bound"].first().items():
        known = [(v, s, "reference set (calibrated latency)") for s, v, lt in
                 zip(ref.arch_str, ref.val_acc, ref.latency_ms, strict=True) if lt <= b]
        known += [(acc[s], s, "a pick (measured latency)") for s in set(df.arch_str) if s in acc
                  and s in lat and lat[s] <= b]
        best[c] = max(known) if known else None
    df["best_known_val_acc"] = df["constraint"].map(lambda c: best[c][0] if best.get(c) else np.nan)
    # a pick over its bound when measured has no regret (its row shows the miss instead)
    df["regret_pp"] = (df["best_known_val_acc"] - df["standalone_val_acc"]).where(
        df["meets_bound_measured"].fillna(False).astype(bool))
    pool, _ = pool_best(board, constraints)
    raw = board.runs_dir / "picks-standalone.parquet"
    seed0 = {}
    if raw.exists():
        r = pd.read_parquet(raw)
        r = r[r["seed"] == 0]
        seed0 = dict(zip(r["arch_str"], r["val_acc"], strict=True))
    df["pool_best_val_acc"] = df["constraint"].map(lambda c: pool[c][0] if c in pool else np.nan)
    df["standalone_val_acc_seed0"] = df["arch_str"].map(seed0)
    df["pool_regret_pp"] = (df["pool_best_val_acc"] - df["standalone_val_acc_seed0"]).where(
        df["meets_bound_measured"].fillna(False).astype(bool))
    return df, best


def write_board(board: ChainBoard, constraints: dict[str, tuple[float, float]]) -> Path:
    out = Path(board.out)
    df, best = board_rows(board, constraints)
    cols = ["method", "seed", "constraint", "quantile", "bound", "search_bound", "pick", "arch_str", "accuracy",
            "predicted_latency_ms", "measured_latency_ms", "meets_bound_measured", "standalone_val_acc",
            "standalone_test_acc", "regret_pp", "standalone_val_acc_seed0", "pool_best_val_acc", "pool_regret_pp",
            "final_rank", "search_cpu_s", "supernet_cpu_s", "supernet_train_acc", "supernet_val_acc", "queries",
            "wall_seconds"]
    for c in cols:
        if c not in df.columns:
            df[c] = np.nan
    df = df[cols].rename(columns={"accuracy": "search_estimate"}).sort_values(["quantile", "pick", "method", "seed"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{board.space}.csv", df.to_csv(index=False).encode())
    md = _markdown(board, df, best) + _statistics(df) + _pool_lines(board, constraints, df)
    return write_markdown(out / f"{board.space}.md", md)


def _ci(x: pd.Series) -> str:
    x = x.dropna()
    if len(x) < 2:
        return "-"
    h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"[{x.mean() - h:.2f}, {x.mean() + h:.2f}]"


def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)


def _supernet_cost(board: ChainBoard) -> str:
    """The shared supernet's training cost, read from its checkpoint and kept beside the runs
    (`supernet-cost.json`), so a report rewritten where the checkpoint is absent still states it."""
    from hwnas.bench.engine.store import read_json_file, source_digest

    kept = board.runs_dir / "supernet-cost.json"
    read = _provenance(board).get("accuracy_sha256")
    if board.supernet and Path(board.supernet).exists() and source_digest(f"supernet:{board.supernet}") == read:
        from hwnas.search.supernet import load_checkpoint

        ck = load_checkpoint(board.supernet)
        hist = ck.get("history") or []
        cpu = sum(h.get("cpu_seconds", np.nan) for h in hist)
        facts = {"supernet": paths.portable(Path(board.supernet)), "sha256": read, "epochs": int(ck["epoch"]),
                 "cpu_s": round(float(cpu), 1) if np.isfinite(cpu) else None,
                 "wall_s": round(float(sum(h.get("seconds", 0.0) for h in hist)), 1),
                 "source": "the checkpoint's training history"}
        atomic_write_bytes(kept, (json.dumps(facts, indent=2) + "\n").encode())
    else:
        facts = read_json_file(kept, "supernet cost file", "delete it; the next report with the checkpoint "
                               "present writes it again") if kept.exists() else {}
        if not facts or facts.get("sha256") != read:
            return ("the checkpoint the searches read is not on this machine; the shared supernet's training "
                    "cost is not shown")
    what = (f"{facts['cpu_s']:.0f} CPU s" if facts.get("cpu_s") is not None
            else f"{facts['wall_s']:.0f} s wall (its CPU seconds were not recorded)")
    return (f"the shared supernet `{facts['supernet']}` ({facts['epochs']} epochs) cost {what} "
            "to train, once for every query-method row")


def _provenance(board: ChainBoard) -> dict:
    """The facts the searches were made from (bench.engine.store.check_provenance wrote them)."""
    from hwnas.bench.engine.store import read_json_file

    p = board.runs_dir / "provenance.json"
    return read_json_file(p, "provenance file").get("provenance", {}) if p.exists() else {}


_TRAINING_BUDGET = ("epochs", "n_train", "n_images", "train_per_epoch", "batch_size")


def _budgets(board: ChainBoard, methods) -> str:
    """What each method was allowed: queries, and a one-shot method's supernet training."""
    from hwnas.search.methods import create_method, method_meta

    out = []
    reads = board.final_reads
    for m in sorted(methods):
        p = create_method(m, **board.params.get(m, {})).get_params()
        train = ", ".join(f"{k} {p[k]}" for k in _TRAINING_BUDGET if p.get(k) is not None)
        one_shot = method_meta(m).get("kind") == "one-shot"
        if reads is None:
            out.append(f"`{m}` {board.budget} queries" + (f" (to validate its top candidates; supernet training: "
                                                            f"{train})" if one_shot else ""))
        elif one_shot:
            out.append(f"`{m}` {reads} final reads (supernet training: {train})")
        else:
            out.append(f"`{m}` {board.budget} queries + {reads} final reads")
    return "; ".join(out)


def _rule(board: ChainBoard) -> str:
    k = board.final_reads
    if k is None:
        return ("Each method ends by its own rule (one-shot methods read up to the budget of their top candidates "
                "on the shared supernet).")
    return (f"Every method, query and one-shot, ends with the same k = {k} final validation reads of the shared "
            "supernet's estimates: it ranks its candidates by its own score (a one-shot method's own score; a query "
            "method's fitted model where it has one, else its reads), and the board shows its own top-1 pick "
            f"(`k=0`, never read for it) beside the best read of its top {k} (`k={k}`); an arch already read is not "
            "read again. Both picks are timed and trained.")


def _seeds(board: ChainBoard) -> str:
    seeds = list(board.protocol.seeds)
    if len(seeds) > 1:
        return f"seeds {seeds}; accuracy = mean over seeds"
    return f"seed {seeds[0]}" + (" only, as every pool row is trained" if board.pool is not None else "")


def _markdown(board: ChainBoard, df: pd.DataFrame, best: dict) -> list[str]:
    n_runs, n_picks = len(df), df.arch_str.nunique()
    measured, trained = df.measured_latency_ms.notna(), df.standalone_val_acc.notna()
    L = [f"# Leaderboard: {board.space} (chain track)", "",
         f"Written by `{command_line(f'hwnas leaderboard --track {board.space}')}` (`make leaderboard-chain`). Methods search under "
         f"`latency_ms@{board.device}:calibrated` (the block table's sum corrected by validate-lut's whole-network "
         f"calibration) at the {', '.join(f'{q:.0%}' for q in board.quantiles)} quantiles of that latency; query "
         f"methods read the shared supernet's estimates ({board.budget} queries), one-shot methods train their own "
         f"supernets on {board.data}; {board.seeds} seeds. Searches run {board.guard_band():.1%} below each bound "
         f"(guard band: {'given' if board.guard is not None else '90th percentile of the calibrated table error on validate-lut held-out networks'}); "
         "picks are judged against the bound itself.", "", _rule(board), "",
         f"Each pick is timed end to end as validate-lut times networks (two passes interleaved with the reference "
         f"network, {board.rel_ci:.0%} CI) and trained stand-alone ({board.protocol.describe()}, {_seeds(board)}, "
         "val split).",
         "Regret: the best stand-alone val accuracy known among feasible archs ("
         + ("reference set by calibrated latency, " if board.reference else "no reference set: ")
         + "picks by measured latency) minus the pick's, for picks that meet their bound when "
         f"re-measured (a miss has no regret; misses are listed). Cost: `search_cpu_s` is the search's own CPU "
         f"seconds (one-shot: supernet training included; a query method's includes the CPU each supernet estimate "
         f"it read cost when made, also when another run had made it); {_supernet_cost(board)}.", "",
         f"Budgets: {_budgets(board, df.method.unique())}.", "",
         f"Progress: {n_runs} runs, {n_picks} distinct picks; {int(measured.sum())}/{n_runs} rows re-measured, "
         f"{int(trained.sum())}/{n_runs} rows with a stand-alone accuracy. Empty cells are not measured yet "
         "(`-`), never estimated.", ""]
    miss = df[df.meets_bound_measured.eq(False).fillna(False).astype(bool)]
    L += [f"Bound misses when re-measured: {len(miss)} of {int(measured.sum())} measured rows"
          + (": " + ", ".join(f"{r.method} seed {r.seed}, {r.pick} ({r.measured_latency_ms:.3f} > {r.bound:.3f} ms)"
                               for r in miss.itertuples()) if len(miss) else "") + ".", ""]
    L += _same_at_every_bound(df) + _final_ranks(df)
    for c, gc in df.groupby("constraint", sort=False):
        q, bound = gc["quantile"].iloc[0], gc["bound"].iloc[0]
        b = best.get(c)
        L += [f"## `latency_ms<={bound:.4g}@{board.device}:calibrated` ({q:.0%} quantile; searched as `{c}`)", "",
              f"Best known feasible: {_f(b[0]) + '% (' + b[2] + ')' if b else '- (no feasible arch trained yet)'}.", ""]
        for pick, g in gc.groupby("pick", sort=True):
            L += [f"### {_pick_title(pick)} ({pick})", ""] + _method_table(g) + [""]
    return L


def _final_ranks(df: pd.DataFrame) -> list[str]:
    """How much the k final reads overrode each method: per method, in how many runs its own top-1
    won the reads, and the median (max) place of the winner in its own ranking."""
    v = df[df["pick"].str.match(r"k=[1-9]") & df["final_rank"].notna()]
    if v.empty:
        return []
    parts = [f"{m} {int((g.final_rank == 1).sum())}/{len(g)} (median {g.final_rank.median():g}, max "
             f"{int(g.final_rank.max())})" for m, g in v.groupby("method")]
    return [f"Final reads: runs whose own top-1 won its k reads, and the winner's place in the method's own "
            f"ranking: {', '.join(parts)}.", ""]


def _same_at_every_bound(df: pd.DataFrame) -> list[str]:
    """Whether the bound reaches each method: per method and pick, the seeds run at every bound
    and how many of them returned the same arch at all of them."""
    if df["constraint"].nunique() < 2:
        return []
    parts = []
    for (m, pick), g in df.groupby(["method", "pick"]):
        per = g.groupby("seed").agg(bounds=("constraint", "nunique"), archs=("arch_str", "nunique"))
        full = per[per.bounds == df["constraint"].nunique()]
        if len(full):
            parts.append(f"{m} {pick} {int((full.archs == 1).sum())}/{len(full)}")
    return [f"Same arch at every bound (seeds run at all of them): {', '.join(parts)}.", ""] if parts else []


def _pick_title(pick: str) -> str:
    if pick == "k=0":
        return "Each method's own top-1 pick, no validation read"
    if pick.startswith("k="):
        return f"Each method's best read of its own top {pick[2:]}"
    return "The pick each method returned by its own rule (runs made before the uniform final-validation rule)"


def _method_table(g: pd.DataFrame) -> list[str]:
    """One line per method: stand-alone accuracy, regret, latency, misses and cost of its picks."""
    rows = []
    for m, gm in g.groupby("method"):
        meets = gm.meets_bound_measured.dropna().astype(bool)
        rows.append((gm.regret_pp.mean() if gm.regret_pp.notna().any() else np.inf, m, [
            m, str(len(gm)), _f(gm.standalone_val_acc.mean()), _ci(gm.standalone_val_acc),
            _f(gm.regret_pp.mean()), _f(gm.measured_latency_ms.median(), "{:.3f}"),
            f"{int(meets.sum())}/{len(meets)}" if len(meets) else "-", _f(gm.search_cpu_s.median(), "{:.0f}"),
            f"{_f(gm.supernet_train_acc.mean(), '{:.1f}')} / {_f(gm.supernet_val_acc.mean(), '{:.1f}')}"]))
    return table(["method", "runs", "stand-alone val % (mean)", "95% CI", "regret pp (mean)",
                  "measured ms (median)", "meets bound", "search CPU s (median)", "supernet train / val %"],
                 [r for _, _, r in sorted(rows, key=lambda t: (t[0], t[1]))], "lrrlrrrrl")


def _statistics(df: pd.DataFrame) -> list[str]:
    """Per pick kind: the Friedman test across methods over the (bound, seed) blocks, then every
    pair by Wilcoxon signed-rank with Holm (bench/reports/board_stats.py), on the stand-alone val
    accuracy of picks that meet their bound when measured (a miss, or a pick not yet trained or
    measured, leaves its block out of the Friedman test and its pairs)."""
    from ..reports.board_stats import ALPHA, friedman_blocks, pairwise_blocks

    L = ["## Statistics", "",
         "On the stand-alone val accuracy of picks that meet their bound when measured; a block is one bound and "
         "one seed (every method saw the same problem). Friedman across methods over the blocks every method "
         f"completed, then every pair of methods over the blocks both completed: Wilcoxon signed-rank, Holm over "
         f"the pairs, alpha {ALPHA}; difference = first minus second method, pp, 95% bootstrap CI.", ""]
    if df.empty:
        return L + ["No runs yet.", ""]
    ok = df[df["meets_bound_measured"].fillna(False).astype(bool)]
    for pick in sorted(df["pick"].unique()):
        part = ok[ok["pick"] == pick]
        f = friedman_blocks(part, "standalone_val_acc") if len(part) else None
        pairs = pairwise_blocks(part, "standalone_val_acc") if len(part) else pd.DataFrame()
        n_blocks = df[df["pick"] == pick].groupby(["quantile", "seed"]).ngroups
        if f is None or np.isnan(f["p"]):
            why = ("no pick measured and trained yet" if f is None else
                   f"{f['blocks']} complete blocks of {n_blocks}, {len(f['methods'])} methods: the test needs 3 "
                   "methods and 2 complete blocks" + (" with some spread" if f["blocks"] >= 2 else ""))
            L += [f"### {pick}", "", f"Friedman: not computed ({why}).", ""]
        else:
            L += [f"### {pick}", "", f"Friedman across {len(f['methods'])} methods over {f['blocks']} complete blocks "
                  f"of {n_blocks}: chi2 {f['statistic']:.2f}, p {f['p']:.3g}.", ""]
        if len(pairs):
            L += table(["method", "other", "pairs", "difference pp [95% CI]", "p", "p Holm", "verdict"],
                       [[r.method, r.other, r.pairs, f"{r.mean_diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
                         _f(r.p, "{:.3g}"), _f(r.p_holm, "{:.3g}"), r.verdict] for r in pairs.itertuples()],
                       "llrlrrl") + [""]
    return L


def _pool_lines(board: ChainBoard, constraints: dict, df: pd.DataFrame) -> list[str]:
    """The pool judgement: what the board judged against, and per bound and pick the mean regret
    against the pool's best arch (empty and labelled when the pool is incomplete)."""
    if board.pool is None:
        return []
    best, line = pool_best(board, constraints)
    L = ["## Against the device-bench pool", "", line, ""]
    if not best:
        return L
    rows = []
    for (c, pick, m), g in df.groupby(["constraint", "pick", "method"]):
        b = best.get(c)
        rows.append([f"{constraints[c][0]:.0%}", pick, m, f"{b[0]:.2f} ({b[1]})" if b else "-",
                     _f(g["pool_regret_pp"].mean()), f"{int(g['pool_regret_pp'].notna().sum())}/{len(g)}"])
    judged = df["pool_regret_pp"].dropna()
    note = (f"A negative regret is a pick outside the pool that trains better than every pool arch under its "
            f"bound: {int((judged < 0).sum())} of {len(judged)} judged picks.")
    return L + table(["bound", "pick", "method", "pool best val % (arch)", "regret pp (mean)", "runs judged"], rows,
                     "lllrrr") + ["", note, ""]

"""`hwnas device-bench`: an NB201-style table of a chain space on one device.

A pool of archs spread evenly over the device's calibrated latency range is each timed end to end
(validate-lut's protocol) and trained stand-alone (`protocol.POOL_PROTOCOL`), so any search
method can be benchmarked on the pool in seconds with exact regret (`hwnas search --pool`).

Stages, each resumable as rows land (every file is written atomically; a rerun does only what
is missing; a row is never in a file twice):

1. `select` -> `<dev>-pool.parquet`: N archs (default 300), one nearest each of N evenly spaced
   predicted latencies (the committed block table with its whole-network calibration, seeded),
   the order they are trained in (bit-reversed latency rank: every prefix of the order spans the
   range) and which archs get the second seed (every third by latency).
2. `time` -> `<dev>-networks.parquet`: every pool arch timed end to end twice, passes apart,
   against the reference network (bench/engine/validate_lut.py's `measure_networks`). Needs
   a quiet machine: a loaded one gives figures that say nothing of the device.
3. `train` -> `<dev>-runs.parquet`: one row per (arch, seed), on the process executor or Ray
   (a killed Ray worker's arch runs again on a fresh actor; a killed process pool stops the
   stage and the rerun trains what is missing).
4. `reproduce` -> `<dev>-reproduce.parquet`: 5 planned rows drawn at random, once trained, trained
   again by `hwnas train --arch A --seed S` in a fresh process: equal, or by how much not.
5. `supernet` -> `<dev>-supernet.parquet`: a supernet checkpoint's estimate of every pool arch;
   each checkpoint is a try, kept beside the earlier ones.
6. `report` -> `<dev>.parquet` (+ CSV, sidecar), `<dev>.md` and plots: one row per arch, what is
   not yet measured left empty and counted; every supernet try's Kendall tau beside latency's.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine.protocol import POOL_PROTOCOL, StandaloneProtocol
from hwnas.core import lock
from hwnas.core.log import bars_off
from hwnas.core.paths import TABLES_DIR, portable
from hwnas.devices.table import TableError, now_iso, read_sidecar, read_table_file, write_table

log = logging.getLogger(__name__)

STAGES = ("select", "time", "train", "reproduce", "supernet", "report")
OUT_DIR = Path("results/device-bench")
RUN_KEY = ["arch_str", "seed"]
#: the fewest archs a Kendall tau is reported over (fewer: left out of the facts)
MIN_TAU = 5


@dataclass
class DeviceBenchConfig:
    space: str = "mbv3-fmnist"
    device: str = "cpu:threads=1"
    n: int = 300
    #: seeds the pool's selection (which archs), not the training
    select_seed: int = 0
    #: candidates the pool is chosen from (random archs; plus random monotone paths)
    candidates: int = 20_000
    protocol: StandaloneProtocol = POOL_PROTOCOL
    #: every arch is trained with `protocol.seeds[0]`; every `second_every`-th by latency rank
    #: (ranks 1, 1 + k, ...) also with `protocol.seeds[1]`: a third of the pool by default
    second_every: int = 3
    out_dir: Path = OUT_DIR
    tables_dir: Path = TABLES_DIR
    executor: str = "process"
    workers: int | None = 1
    limit: int | None = None
    progress: bool = True
    #: validate-lut's whole-network timing protocol (`make validate-lut`: 1% CI)
    rel_ci: float = 0.01
    repeats: int = 2
    #: the whole timing config (tests shorten it); None: validate-lut's defaults at `rel_ci`
    timing: object = None
    #: times a process pool whose worker died is started again before the stage gives up
    max_restarts: int = 3
    #: a `hwnas supernet train` checkpoint whose ranking of the pool the `supernet` stage measures
    supernet: Path | None = None
    calib_images: int = 512
    #: the `reproduce` stage retrains this many rows of the plan (once trained), drawn with `reproduce_seed`
    reproduce_n: int = 5
    reproduce_seed: int = 0
    device_id: str = field(default="", repr=False)

    def paths(self) -> dict[str, Path]:
        d = Path(self.out_dir) / self.space
        dev = self.device_id
        return {"pool": d / f"{dev}-pool.parquet", "networks": d / f"{dev}-networks.parquet",
                "runs": d / f"{dev}-runs.parquet", "supernet": d / f"{dev}-supernet.parquet",
                "reproduce": d / f"{dev}-reproduce.parquet",
                "table": d / f"{dev}.parquet", "report": d / f"{dev}.md", "dir": d}


def resolve_device_id(spec: str) -> str:
    """The file-name id of a device spec (`cpu:threads=1` -> `cpu-t1`), without opening it."""
    from hwnas.devices.registry import create_device

    dev = create_device(spec)
    try:
        return dev.device_id
    finally:
        dev.close()


def bit_reversed_order(n: int) -> list[int]:
    """0..n-1 in bit-reversed order: every prefix is spread over the whole range (0, n/2, n/4,
    3n/4, ...), so a partly trained pool already spans the latency range."""
    if n <= 0:
        return []
    m = max(1, (n - 1).bit_length())
    return [r for r in (int(f"{k:0{m}b}"[::-1], 2) for k in range(2 ** m)) if r < n]


# ---- 1. select ---------------------------------------------------------------------------------
def select(cfg: DeviceBenchConfig) -> pd.DataFrame:
    """The pool: written once; a rerun with the same settings reads it, other settings refuse."""
    from hwnas.bench.engine.standalone import LatencyModel, select_reference
    from hwnas.search.spaces import create_space

    p = cfg.paths()
    facts = _select_facts(cfg)
    if p["pool"].exists():
        meta = read_sidecar(p["pool"])
        if _settings(meta.get("selection")) != _settings(facts):
            raise ValueError(f"{p['pool']}: chosen with {meta.get('selection')}, not {facts}; use the same settings, "
                             "another --out-dir, or move the pool away (its rows would no longer match)")
        return read_table_file(p["pool"])
    space = create_space(cfg.space)
    table = Path(cfg.tables_dir) / cfg.space / f"{cfg.device_id}.parquet"
    if not table.exists():
        raise FileNotFoundError(f"{table}: no block table for {cfg.device_id}; run `hwnas profile --device "
                                f"{cfg.device} --space {cfg.space}` and `hwnas validate-lut` first")
    latency = LatencyModel(space, table)
    t0 = time.perf_counter()
    archs = select_reference(space, latency, n=cfg.n, seed=cfg.select_seed, pool=cfg.candidates)
    pred, tsum = latency.latency_ms(archs), latency.table_ms(archs)
    order = np.empty(len(archs), dtype=np.int64)
    order[bit_reversed_order(len(archs))] = np.arange(len(archs))
    df = pd.DataFrame({"arch_str": [space.to_str(a) for a in archs], "latency_rank": np.arange(len(archs)),
                       "train_order": order, "latency_pred_ms": pred, "latency_table_ms": tsum,
                       "second_seed": (np.arange(len(archs)) % cfg.second_every) == 1})
    from hwnas.search.supernet.evaluate import count_params_macs

    pm = [count_params_macs(space, a) for a in archs]
    df["params"], df["macs"] = [int(x[0]) for x in pm], [int(x[1]) for x in pm]
    with lock.output_lock(p["pool"], "--out-dir", is_dir=False):
        write_table(df, p["pool"], meta={"kind": "device-bench-pool", "space": cfg.space, "device": cfg.device,
                                         "device_id": cfg.device_id, "selection": facts,
                                         "latency_source": latency.source, "latency_table": portable(table),
                                         "seconds": round(time.perf_counter() - t0, 1), "written_at": now_iso()})
    log.info("device-bench: pool of %d archs, predicted %.3f..%.3f ms -> %s", len(df), pred.min(), pred.max(), p["pool"])
    return df


def _select_facts(cfg: DeviceBenchConfig) -> dict:
    return {"n": cfg.n, "seed": cfg.select_seed, "candidates": cfg.candidates, "second_every": cfg.second_every,
            "method": f"one arch nearest each of {cfg.n} evenly spaced predicted latencies over {cfg.candidates:,} "
                      "random archs and random monotone paths up from the smallest (bench.engine.standalone."
                      "select_reference); trained in bit-reversed latency-rank order; the second seed on "
                      f"latency ranks 1, {1 + cfg.second_every}, ..."}


def _settings(selection) -> dict | None:
    """The selection's settings; its `method` prose (which names code that may move) is not one."""
    return {k: v for k, v in selection.items() if k != "method"} if isinstance(selection, dict) else selection


def _read_pool(cfg: DeviceBenchConfig) -> pd.DataFrame:
    p = cfg.paths()["pool"]
    if not p.exists():
        raise FileNotFoundError(f"{p}: no pool yet; run the select stage first (--stages select)")
    return read_table_file(p)


# ---- 2. time -----------------------------------------------------------------------------------
def time_pool(cfg: DeviceBenchConfig) -> pd.DataFrame:
    """Every pool arch timed end to end with validate-lut's protocol (two passes, reference-
    normalised with the block table's own calibration); resumable (RowStore parts)."""
    from hwnas.bench.engine.profile import arch_units
    from hwnas.bench.engine.validate_lut import (
        ValidateConfig,
        measure_networks,
        reference_calibration,
    )
    from hwnas.devices.registry import create_device
    from hwnas.devices.timing import TimingConfig
    from hwnas.search.spaces import create_space

    pool = _read_pool(cfg)
    space = create_space(cfg.space)
    table = Path(cfg.tables_dir) / cfg.space / f"{cfg.device_id}.parquet"
    cal = reference_calibration(read_sidecar(table)) if table.exists() else {}
    if not cal.get("ref_latency_ms"):
        raise TableError(f"{table}: no reference calibration to normalise the networks with; profile the device first")
    archs = [space.from_str(s) for s in pool.sort_values("train_order")["arch_str"]]
    vc = ValidateConfig(space=cfg.space, device=cfg.device, samples=len(archs), seed=cfg.select_seed,
                        out_dir=Path(cfg.tables_dir), timing=cfg.timing or TimingConfig(rel_ci=cfg.rel_ci), resume=True,
                        repeats=cfg.repeats, progress=cfg.progress)
    device = create_device(cfg.device)
    try:
        # summaries only: the raw run times of 600 network timings were 8.6 MB of a committed table
        return measure_networks(vc, device, space, arch_units(space, archs), cal, cfg.paths()["networks"],
                                keep_raw=False)
    finally:
        device.close()


# ---- 3. train ----------------------------------------------------------------------------------
def planned_runs(pool: pd.DataFrame, protocol: StandaloneProtocol) -> list[tuple[str, int]]:
    """(arch, seed) in training order: each arch's first seed, and its second right after it
    when it has one, so seed-vs-seed pairs land from the start."""
    first, second = protocol.seeds[0], protocol.seeds[1] if len(protocol.seeds) > 1 else None
    out = []
    for r in pool.sort_values("train_order").itertuples():
        out.append((r.arch_str, int(first)))
        if second is not None and bool(r.second_seed):
            out.append((r.arch_str, int(second)))
    return out


def environment() -> dict:
    """What a row's accuracy depends on besides the protocol and seed: library versions, the
    processor, torch's threads and math back ends."""
    import numpy
    import torch
    from hwnas.devices.base import processor_name
    from hwnas.devices.table import project_version

    return {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "hwnas": project_version(), "processor": processor_name(), "machine": platform.machine(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_math_libraries": [ln.strip() for ln in torch.__config__.parallel_info().splitlines()
                                     if ln and not ln.startswith(("\t", "ATen/Parallel", "Environment", "std::"))]}


def train_pool(cfg: DeviceBenchConfig, task=None) -> pd.DataFrame:
    """Train every planned (arch, seed) not yet in the runs file; a row is written (atomically,
    whole file) as soon as its run returns, under the file's lock (one writer). A process-pool
    worker that dies (killed, out of memory) takes only its run with it: the pool is started again
    and that run trained again (at most `max_restarts` times); Ray replaces a dead actor itself.
    `task` replaces the training function (tests)."""
    from hwnas.bench.engine.standalone import _init, _train
    from hwnas.search.supernet.executor import create_executor
    from tqdm.auto import tqdm

    pool = _read_pool(cfg)
    path = cfg.paths()["runs"]
    proto = cfg.protocol
    env = environment()
    with lock.output_lock(path, "--out-dir", is_dir=False):
        rows, meta = _read_runs(path)
        if meta and meta.get("protocol") != proto.key():
            raise ValueError(f"{path}: trained with protocol {meta.get('protocol')}, not {proto.key()}; use the same "
                             "protocol, another --out-dir, or move the file away")
        if meta and meta.get("threads") != proto.threads:
            raise ValueError(f"{path}: trained with {meta.get('threads')} torch thread(s), not {proto.threads}; "
                             "rows would not be reproducible together")
        for k in ("torch", "numpy"):
            if meta and meta.get("environment", {}).get(k) not in (None, env[k]):
                log.warning("%s: earlier rows were trained with %s %s, this run has %s: rows may not repeat exactly "
                            "across the two", path, k, meta["environment"][k], env[k])
        plan = planned_runs(pool, proto)
        done = {(r["arch_str"], int(r["seed"])) for r in rows}
        todo = [t for t in plan if t not in done][:cfg.limit]
        meta = {"kind": "device-bench-runs", "space": cfg.space, "device": cfg.device, "device_id": cfg.device_id,
                "protocol": proto.key(), "protocol_text": proto.describe(), "threads": proto.threads,
                "environment": env, "planned_runs": len(plan)}
        if not todo:
            return _write_runs(rows, path, meta)
        log.info("device-bench train: %d runs to do (%d of %d done), %s executor, %s worker(s)", len(todo), len(done),
                 len(plan), cfg.executor, cfg.workers)
        with tqdm(total=len(plan), initial=len(done), desc="device-bench train", disable=bars_off() or not cfg.progress,
                  mininterval=1.0, unit="run") as bar:
            for attempt in range(cfg.max_restarts + 1):
                left = [t for t in todo if t not in done]
                if not left:
                    break
                ex = create_executor(cfg.executor, cfg.workers)
                try:
                    ex.start(_init, (cfg.space, {**asdict(proto), "seeds": list(proto.seeds)}))  # workers: 1 thread
                    for r in ex.map(task or _train, left):
                        if (r["arch_str"], int(r["seed"])) in done:  # never twice (a retried task's second answer)
                            continue
                        done.add((r["arch_str"], int(r["seed"])))
                        rows.append({**r, "torch_threads": proto.threads, "finished_at": now_iso(),
                                     "load_avg_1min": round(os.getloadavg()[0], 2)})
                        _write_runs(rows, path, meta)
                        bar.update(1)
                except BrokenProcessPool:
                    if attempt == cfg.max_restarts:
                        raise
                    log.warning("device-bench train: a worker died (killed or out of memory); its run is trained "
                                "again on a fresh pool (restart %d of %d)", attempt + 1, cfg.max_restarts)
                finally:
                    ex.close()
        return _write_runs(rows, path, meta)


def _read_runs(path: Path) -> tuple[list[dict], dict]:
    if not path.exists():
        return [], {}
    df = read_table_file(path)
    return df.to_dict("records"), read_sidecar(path)


def _write_runs(rows: list[dict], path: Path, meta: dict) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.drop_duplicates(RUN_KEY, keep="first").reset_index(drop=True)
        df["seed"] = df["seed"].astype("int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = float(df["train_cpu_s"].sum()) if "train_cpu_s" in df else 0.0
    write_table(df, path, meta={**meta, "rows": len(df), "train_cpu_hours": round(cpu / 3600, 3),
                                "written_at": now_iso()})
    return df


# ---- 4. report ---------------------------------------------------------------------------------
def assemble(cfg: DeviceBenchConfig) -> tuple[pd.DataFrame, dict]:
    """One row per pool arch: what was measured, and NaN for what was not (counted in the facts)."""
    from scipy import stats

    pool = _read_pool(cfg)
    p = cfg.paths()
    s0, s1 = cfg.protocol.seeds[0], (cfg.protocol.seeds[1] if len(cfg.protocol.seeds) > 1 else None)
    df = pool.sort_values("latency_rank").reset_index(drop=True)[
        ["arch_str", "latency_rank", "latency_pred_ms", "latency_table_ms", "params", "macs", "second_seed"]]
    runs = read_table_file(p["runs"]) if p["runs"].exists() else pd.DataFrame(columns=RUN_KEY + ["val_acc", "test_acc"])
    for seed, suffix in ((s0, ""), (s1, "_seed2")):
        if seed is None:
            continue
        r = runs[runs["seed"] == seed].set_index("arch_str")
        df[f"val_acc{suffix}"] = df["arch_str"].map(r["val_acc"]).astype(float)
        df[f"test_acc{suffix}"] = df["arch_str"].map(r["test_acc"]).astype(float)
    df["train_cpu_s"] = df["arch_str"].map(runs.groupby("arch_str")["train_cpu_s"].sum()) if len(runs) else np.nan
    from hwnas.bench.engine.store import RowStore

    nets = RowStore(p["networks"], key=("block_key", "repeat")).load()  # parts of an unfinished timing too
    df["latency_ms"] = np.nan
    df["latency_retest_pct"] = np.nan
    df["latency_raw_ms"] = np.nan
    facts: dict = {}
    if not nets.empty and "latency_norm_ms" in nets:
        nets = nets.assign(arch_str=nets["block_key"].str.removeprefix("network:"))
        w = nets.pivot_table(index="arch_str", columns="repeat", values="latency_norm_ms", aggfunc="first")
        raw = nets.pivot_table(index="arch_str", columns="repeat", values="latency_ms", aggfunc="first")
        both = w.dropna()
        if both.shape[1] >= 2:
            m = both.mean(axis=1)
            df["latency_ms"] = df["arch_str"].map(m)
            df["latency_raw_ms"] = df["arch_str"].map(raw.loc[both.index].mean(axis=1))
            df["latency_retest_pct"] = df["arch_str"].map((both.iloc[:, 1] - both.iloc[:, 0]) / both.iloc[:, 0] * 100)
            facts["latency_retest_abs_median_pct"] = float(df["latency_retest_pct"].abs().median())
    n = len(df)
    facts.update(archs=n, trained=int(df["val_acc"].notna().sum()),
                 second_seed_planned=int(df["second_seed"].sum()),
                 second_seed_trained=int(df["val_acc_seed2"].notna().sum()) if s1 is not None else 0,
                 timed=int(df["latency_ms"].notna().sum()),
                 train_cpu_hours=round(float(runs["train_cpu_s"].sum()) / 3600, 3) if len(runs) else 0.0,
                 train_cpu_s_per_run_mean=float(runs["train_cpu_s"].mean()) if len(runs) else float("nan"))
    if s1 is not None:
        both = df.dropna(subset=["val_acc", "val_acc_seed2"])
        if len(both) >= 2:
            d = both["val_acc"] - both["val_acc_seed2"]
            facts["seed_std_pp"] = float(np.sqrt(np.mean(d ** 2) / 2))  # std of one run, from paired differences
            facts["seed_pairs"] = len(both)
            if len(both) >= MIN_TAU:  # Kendall tau of 2-4 pairs is +-1 or near it: says nothing
                facts["tau_seed_vs_seed"] = float(stats.kendalltau(both["val_acc"], both["val_acc_seed2"]).statistic)
                facts.update(_noise_ceiling(both, _median_latency(df)))
    tr = df.dropna(subset=["val_acc"])
    if len(tr) >= 2:
        facts["spread_std_pp"] = float(tr["val_acc"].std(ddof=1))
        facts["val_acc_range_pp"] = float(tr["val_acc"].max() - tr["val_acc"].min())
        if "seed_std_pp" in facts and facts["spread_std_pp"] > 0:
            facts["seed_std_over_spread"] = facts["seed_std_pp"] / facts["spread_std_pp"]
        if len(tr) >= MIN_TAU:
            facts["tau_predicted_latency_vs_val_acc"] = float(
                stats.kendalltau(tr["latency_pred_ms"], tr["val_acc"]).statistic)
            facts.update(_ranking_baselines(tr))
    if p["supernet"].exists():
        sn, sn_meta = _read_supernet(p["supernet"])
        latest = sn[sn["checkpoint_sha256"] == sn_meta.get("latest")]
        df["supernet_val_acc"] = df["arch_str"].map(dict(zip(latest["arch_str"], latest["supernet_val_acc"],
                                                             strict=True)))
        facts.update(_supernet_ranking(df, (sn_meta.get("checkpoints") or {}).get(sn_meta.get("latest"), {})))
    facts.update(_reproduce_facts(p["reproduce"]))
    timed = df.dropna(subset=["latency_ms"])
    if len(timed) >= MIN_TAU:
        facts["tau_predicted_vs_measured_latency"] = float(
            stats.kendalltau(timed["latency_pred_ms"], timed["latency_ms"]).statistic)
        facts["latency_pred_abs_median_err_pct"] = float(
            ((timed["latency_pred_ms"] - timed["latency_ms"]).abs() / timed["latency_ms"]).median() * 100)
    return df, facts


def _median_latency(df: pd.DataFrame) -> float:
    """The bound every `_under_q50` figure uses: the median measured latency of the trained archs."""
    return float(df.dropna(subset=["val_acc", "latency_ms"])["latency_ms"].median())


def _supernet_ranking(df: pd.DataFrame, meta: dict) -> dict:
    """Kendall tau of the supernet's estimates against stand-alone val_acc (trained archs), overall
    and under the median measured latency, as `_ranking_baselines` measures latency and MACs."""
    from scipy import stats

    out = {"supernet_checkpoint": meta.get("checkpoint"), "supernet_epochs": meta.get("epochs")}
    t = df.dropna(subset=["val_acc", "supernet_val_acc"])
    if len(t) >= MIN_TAU:
        out["tau_supernet_vs_val_acc"] = float(stats.kendalltau(t["supernet_val_acc"], t["val_acc"]).statistic)
        under = t[t["latency_ms"] <= _median_latency(df)]
        if len(under) >= MIN_TAU:
            out["tau_supernet_vs_val_acc_under_q50"] = float(
                stats.kendalltau(under["supernet_val_acc"], under["val_acc"]).statistic)
    return out


def _noise_ceiling(pairs: pd.DataFrame, q50: float) -> dict:
    """The Kendall tau against one seed's val_acc that a perfect predictor (of the arch's mean
    accuracy over seeds) would expect. For normal scores tau = 2/pi * arcsin(r): the seed-vs-seed
    tau gives the seed-vs-seed correlation r (rank-based, so a few failed archs do not inflate it),
    corr(mean, one seed) is sqrt(r), and the ceiling 2/pi * arcsin(sqrt(r)). Overall and among the
    pairs under `q50` (the median measured latency of the trained archs): no ranking of the pool,
    supernet or oracle, beats latency alone by more than this ceiling minus latency's tau."""
    from scipy import stats

    def ceiling(p: pd.DataFrame) -> float | None:
        r = float(np.sin(np.pi / 2 * stats.kendalltau(p["val_acc"], p["val_acc_seed2"]).statistic))
        return float(2 / np.pi * np.arcsin(np.sqrt(r))) if r > 0 else None

    out = {"tau_ceiling_one_seed": ceiling(pairs)}
    under = pairs[pairs["latency_ms"] <= q50]
    if len(under) >= MIN_TAU:
        out["tau_ceiling_one_seed_under_q50"] = ceiling(under)
    return {k: v for k, v in out.items() if v is not None}


def _ranking_baselines(tr: pd.DataFrame) -> dict:
    """What a supernet's ranking of the pool must beat: Kendall tau of measured latency alone and
    of MACs alone against stand-alone val_acc, over the trained archs and within the feasible set
    of a bound at the 50% quantile of measured latency (trained and timed archs only)."""
    from scipy import stats

    out = {"tau_macs_vs_val_acc": float(stats.kendalltau(tr["macs"], tr["val_acc"]).statistic)}
    t = tr.dropna(subset=["latency_ms"])
    if len(t) >= MIN_TAU:
        out["tau_measured_latency_vs_val_acc"] = float(stats.kendalltau(t["latency_ms"], t["val_acc"]).statistic)
        under = t[t["latency_ms"] <= _median_latency(t)]
        if len(under) >= MIN_TAU:
            out["tau_measured_latency_vs_val_acc_under_q50"] = float(
                stats.kendalltau(under["latency_ms"], under["val_acc"]).statistic)
            out["tau_macs_vs_val_acc_under_q50"] = float(stats.kendalltau(under["macs"], under["val_acc"]).statistic)
    return out


def report(cfg: DeviceBenchConfig, command: str = "make device-bench") -> dict:
    """Write the table (Parquet + CSV + sidecar), the Markdown report and the plots."""
    from hwnas.bench.reports.device_bench_report import write_report

    df, facts = assemble(cfg)
    p = cfg.paths()
    pool_meta, runs_meta = read_sidecar(p["pool"]), read_sidecar(p["runs"]) if p["runs"].exists() else {}
    nets_meta = read_sidecar(p["networks"]) if p["networks"].exists() else {}
    complete = facts["trained"] == facts["archs"] and facts["timed"] == facts["archs"] and \
        facts.get("second_seed_trained", 0) == facts["second_seed_planned"]
    meta = {"kind": "device-bench", "space": cfg.space, "device": cfg.device, "device_id": cfg.device_id,
            "complete": complete, "protocol": cfg.protocol.key(), "protocol_text": cfg.protocol.describe(),
            "threads": cfg.protocol.threads,
            "seeds": {"val_acc/test_acc": cfg.protocol.seeds[0],
                      "val_acc_seed2/test_acc_seed2": cfg.protocol.seeds[1] if len(cfg.protocol.seeds) > 1 else None},
            "selection": pool_meta.get("selection"), "latency_pred_source": pool_meta.get("latency_source"),
            "latency_table": pool_meta.get("latency_table"),
            "train_environment": runs_meta.get("environment"),
            "timing": {"protocol": f"validate-lut: whole network, {cfg.repeats} passes minutes apart, reference-"
                                   f"normalised, {cfg.rel_ci:.0%} CI of the reference ratio",
                       "device_facts": {k: nets_meta.get(k) for k in ("device", "processor", "runtime",
                                                                       "runtime_version", "threads", "machine")}
                       if nets_meta else None},
            "noise": facts,
            "columns": {"val_acc": f"top-1 % on the whole val split, seed {cfg.protocol.seeds[0]}; empty: not trained yet",
                        "test_acc": "top-1 % on the whole test split, same run as val_acc",
                        "val_acc_seed2": "the same arch trained with the second seed (a third of the pool); empty: "
                                         "not planned (second_seed false) or not trained yet",
                        "latency_ms": "measured end to end, reference-normalised, mean of the passes; empty: not timed yet",
                        "supernet_val_acc": "the supernet stage's estimate (its checkpoint: noise.supernet_checkpoint); "
                                            "present only once that stage ran",
                        "latency_raw_ms": "raw median, mean of the passes", "latency_retest_pct": "pass 2 vs pass 1",
                        "latency_pred_ms": "predicted by the calibrated block table (what the pool was chosen by)",
                        "latency_table_ms": "sum of the block table", "train_cpu_s": "CPU s of this arch's runs"}}
    tries = supernet_tries(df, p["supernet"]) if p["supernet"].exists() else pd.DataFrame()
    reproduced = read_table_file(p["reproduce"]) if p["reproduce"].exists() else pd.DataFrame()
    meta["supernet_tries"] = tries.drop(columns=["checkpoint_sha256"], errors="ignore").to_dict("records")
    write_table(df, p["table"], meta=meta)
    write_report(df, facts, meta, p, command, tries=tries, reproduced=reproduced)
    return {"table": p["table"], "report": p["report"], **facts}


# ---- snapshots of a run elsewhere -----------------------------------------------------------------
def copy_from(cfg: DeviceBenchConfig, src_dir: str | os.PathLike) -> dict[str, int]:
    """Copy the pool, runs and timing tables of a run writing into `src_dir` (e.g. a training job
    outside the repository) into `cfg.out_dir`, each read once and written whole (Parquet, CSV and
    sidecar from the same read, so a copy taken while the job writes is consistent). Rows
    only ever land, so a copy holds at least the rows of the one before it."""
    from hwnas.bench.engine.store import RowStore

    src = replace(cfg, out_dir=Path(src_dir)).paths()
    dst = cfg.paths()
    copied = {}
    for name, key in (("pool", ["arch_str"]), ("runs", RUN_KEY), ("networks", ["block_key", "repeat"])):
        store = RowStore(src[name], key=key)
        if not store.exists():
            continue
        df = store.load()
        if dst[name].exists() and len(read_table_file(dst[name])) > len(df):
            raise ValueError(f"{dst[name]} holds more rows than {src[name]}; not overwriting it with fewer")
        dst[name].parent.mkdir(parents=True, exist_ok=True)
        write_table(df, dst[name], meta=read_sidecar(src[name]))
        copied[name] = len(df)
    if not copied:
        raise FileNotFoundError(f"{src['dir']}: no device-bench tables of {cfg.device_id} to copy")
    return copied


# ---- stage: rows retrained with `hwnas train` ----------------------------------------------------
def train_command(cfg: DeviceBenchConfig, arch: str, seed: int) -> list[str]:
    """The `hwnas train` arguments that rerun row (arch, seed): arch and seed only under the pool
    protocol (its defaults), and a flag for each setting another protocol changes."""
    argv = ["train", "--space", cfg.space, "--arch", arch, "--seed", str(seed)]
    for flag, field_name in (("--data", "data"), ("--split-seed", "split_seed"), ("--epochs", "epochs"),
                             ("--train-per-epoch", "train_per_epoch"), ("--threads", "threads")):
        if getattr(cfg.protocol, field_name) != getattr(POOL_PROTOCOL, field_name):
            argv += [flag, str(getattr(cfg.protocol, field_name))]
    if (cfg.protocol.batch_size, cfg.protocol.lr) != (POOL_PROTOCOL.batch_size, POOL_PROTOCOL.lr):
        raise ValueError("`hwnas train` has no flags for batch size or learning rate; the reproduce stage needs "
                         "a protocol that differs from the pool protocol in data, split seed, epochs, images "
                         "per epoch or threads only")
    return argv


def run_hwnas(argv: list[str], out: Path) -> dict:
    """`hwnas ARGV --out OUT` in a fresh Python process (nothing of this one carries over); its JSON."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "hwnas.bench.cli", "-q", *argv, "--out", str(out)], check=True)
    return json.loads(out.read_text())


def reproduce_rows(cfg: DeviceBenchConfig, runner=run_hwnas) -> pd.DataFrame:
    """`reproduce_n` rows of the pool's plan drawn at random (`reproduce_seed`) and, once
    trained, trained again by `hwnas train` with arch and seed only (`train_command`), each in a
    fresh process: the table's val and test accuracy beside the retrained ones, exact or by how
    much. A rerun retrains only the drawn rows not yet done (a drawn row not trained yet waits)."""
    import tempfile

    p = cfg.paths()
    path = p["reproduce"]
    runs, _ = _read_runs(p["runs"])
    plan = sorted(planned_runs(_read_pool(cfg), cfg.protocol))
    idx = np.random.default_rng(cfg.reproduce_seed).choice(len(plan), min(cfg.reproduce_n, len(plan)), replace=False)
    draw = [plan[i] for i in sorted(idx)]
    table = pd.DataFrame(runs, columns=[*RUN_KEY, "val_acc", "test_acc"] if not runs else None)
    with lock.output_lock(path, "--out-dir", is_dir=False):
        done = read_table_file(path).to_dict("records") if path.exists() else []
        meta = {"kind": "device-bench-reproduce", "draw": [list(d) for d in draw], "draw_seed": cfg.reproduce_seed,
                "drawn_from": "the pool's planned (arch_str, seed) runs, sorted",
                "environment": environment(),
                "columns": {"val_acc_table": "the runs table's val_acc", "val_acc": "retrained by `command`",
                            "val_diff_pp": "retrained minus table", "exact": "val and test accuracy both equal"}}
        have = {(r["arch_str"], int(r["seed"])) for r in done}
        known = table.set_index(RUN_KEY)
        waiting = [d for d in draw if d not in have and d not in known.index]
        if waiting:
            log.info("reproduce stage: %d of %d drawn rows are not trained yet; rerun the stage once they are",
                     len(waiting), len(draw))
        for arch, seed in draw:
            if (arch, seed) in have or (arch, seed) in waiting:
                continue
            argv = train_command(cfg, arch, seed)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                got = runner(argv, Path(tmp) / "train.json")
            row = known.loc[(arch, seed)]
            rec = {"arch_str": arch, "seed": seed, "val_acc_table": float(row["val_acc"]),
                   "test_acc_table": float(row["test_acc"]), "val_acc": float(got["val_acc"]),
                   "test_acc": float(got["test_acc"])}
            rec.update(val_diff_pp=rec["val_acc"] - rec["val_acc_table"],
                       test_diff_pp=rec["test_acc"] - rec["test_acc_table"],
                       exact=rec["val_acc"] == rec["val_acc_table"] and rec["test_acc"] == rec["test_acc_table"],
                       wall_s=round(time.perf_counter() - t0, 1), command="hwnas " + shlex.join(argv),
                       finished_at=now_iso())
            done.append(rec)
            write_table(pd.DataFrame(done), path, meta=meta)
            log.info("reproduce stage: %s seed %d: val %.2f%% (table %.2f%%)", arch, seed, rec["val_acc"],
                     rec["val_acc_table"])
        return pd.DataFrame(done)


def _reproduce_facts(path: Path) -> dict:
    if not path.exists():
        return {}
    r = read_table_file(path)
    if r.empty:
        return {}
    return {"reproduced_rows": len(r), "reproduced_exact": int(r["exact"].sum()),
            "reproduced_max_abs_val_diff_pp": float(r["val_diff_pp"].abs().max()),
            "reproduced_max_abs_test_diff_pp": float(r["test_diff_pp"].abs().max())}


# ---- stage: the supernet's ranking of the pool -------------------------------------------------
#: the supernet stage's rows: one estimate per (checkpoint, pool arch); every checkpoint tried stays
SUPERNET_KEY = ["checkpoint_sha256", "arch_str"]


def _read_supernet(path: Path) -> tuple[pd.DataFrame, dict]:
    """The supernet stage's rows and sidecar; a file written before every try was kept (one
    checkpoint, no `checkpoint_sha256` column) is read as that one try."""
    if not path.exists():
        return pd.DataFrame(columns=[*SUPERNET_KEY, "supernet_val_acc"]), {}
    df, meta = read_table_file(path), read_sidecar(path)
    if "checkpoint_sha256" not in df:
        digest = meta.get("checkpoint_sha256")
        df = df.assign(checkpoint_sha256=digest)
        try_facts = {**{k: meta.get(k) for k in ("checkpoint", "epochs", "train_config", "calib_images")},
                     **_training_facts({"train_config": meta.get("train_config")})}
        meta = {**{k: v for k, v in meta.items() if k not in (*try_facts, "checkpoint_sha256")},
                "checkpoints": {digest: try_facts}, "latest": digest}
    return df[[*SUPERNET_KEY, "supernet_val_acc"]], meta


def _training_facts(ck: dict) -> dict:
    """What one supernet try cost and reached, from its checkpoint's history."""
    hist = ck.get("history") or []
    tc = ck.get("train_config") or {}
    last = hist[-1] if hist else {}
    return {"train_cpu_s": round(sum(h.get("cpu_seconds", 0.0) for h in hist), 1) if hist else None,
            "train_wall_s": round(sum(h.get("seconds", 0.0) for h in hist), 1) if hist else None,
            "images_per_epoch": tc.get("train_per_epoch"), "sampler": tc.get("sampler"),
            "distill": tc.get("distill"), "val_acc_largest": last.get("val_acc_largest"),
            "val_acc_smallest": last.get("val_acc_smallest")}


def rank_with_supernet(cfg: DeviceBenchConfig, chunk: int = 20) -> pd.DataFrame:
    """The supernet's estimate of every pool arch (BN recalibrated, the whole val split of the
    pool protocol's data and split seed): the report sets its Kendall tau against stand-alone
    val_acc beside those of latency alone and MACs alone. Rows land `chunk` archs at a time; a
    rerun with the same checkpoint (by digest) does only the rest; another checkpoint is another
    try, kept beside the earlier ones (the report lists every try) and the table's latest."""
    from hwnas.core.io import file_sha256
    from hwnas.search.spaces import create_space
    from hwnas.search.supernet import SubnetEvaluator, load_checkpoint

    if cfg.supernet is None:
        raise ValueError("the supernet stage needs --supernet CKPT (a `hwnas supernet train` checkpoint)")
    ck_path = Path(cfg.supernet)
    if not ck_path.exists():
        raise FileNotFoundError(f"supernet checkpoint {ck_path} does not exist; train one with "
                                "`make supernet` or `hwnas supernet train`")
    p = cfg.paths()
    pool = _read_pool(cfg)
    digest = file_sha256(ck_path)
    rows, meta = _read_supernet(p["supernet"])
    done = set(rows.loc[rows["checkpoint_sha256"] == digest, "arch_str"])
    todo = [a for a in pool["arch_str"] if a not in done]
    ck = load_checkpoint(ck_path)
    tries = dict(meta.get("checkpoints") or {})
    tries[digest] = {"checkpoint": portable(ck_path), "epochs": ck.get("epoch"), "train_config": ck.get("train_config"),
                     "calib_images": cfg.calib_images, **_training_facts(ck)}
    meta = {"kind": "device-bench-supernet", "data": cfg.protocol.data, "split_seed": cfg.protocol.split_seed,
            "checkpoints": tries, "latest": digest,
            "columns": {"checkpoint_sha256": "the try (checkpoints[digest] in this sidecar)",
                        "supernet_val_acc": "top-1 % of the subnet on the whole val split, BN recalibrated"}}
    write_table(rows, p["supernet"], meta=meta)
    space = create_space(cfg.space)
    with SubnetEvaluator(space, str(ck_path), data=cfg.protocol.data, calib_images=cfg.calib_images,
                         val_images=None, workers=1, executor="serial", seed=cfg.protocol.split_seed) as ev:
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            est = ev([space.from_str(a) for a in part])
            new = pd.DataFrame({"checkpoint_sha256": digest, "arch_str": part, "supernet_val_acc": est})
            rows = pd.concat([rows, new], ignore_index=True)
            write_table(rows, p["supernet"], meta=meta)
            log.info("supernet stage: %d of %d pool archs estimated", len(done) + i + len(part), len(pool))
    return rows[rows["checkpoint_sha256"] == digest]


def supernet_tries(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One row per supernet tried on the pool: how it was trained and what it cost, and its
    Kendall tau against stand-alone val_acc overall and under the median measured latency
    (`_supernet_ranking` on the trained archs of `df`); cheapest training first."""
    rows, meta = _read_supernet(path)
    out = []
    for digest, facts in (meta.get("checkpoints") or {}).items():
        est = rows[rows["checkpoint_sha256"] == digest].set_index("arch_str")["supernet_val_acc"]
        ranked = _supernet_ranking(df.assign(supernet_val_acc=df["arch_str"].map(est)), facts)
        out.append({"checkpoint": facts.get("checkpoint"), "epochs": facts.get("epochs"),
                    **{k: facts.get(k) for k in ("images_per_epoch", "sampler", "distill", "train_cpu_s",
                                                 "val_acc_largest", "val_acc_smallest")},
                    "estimated": int(len(est)),
                    "tau_overall": ranked.get("tau_supernet_vs_val_acc"),
                    "tau_under_q50": ranked.get("tau_supernet_vs_val_acc_under_q50"),
                    "latest": digest == meta.get("latest"), "checkpoint_sha256": digest})
    tries = pd.DataFrame(out)
    return tries.sort_values("train_cpu_s", kind="stable", ignore_index=True) if out else tries


# ---- all stages --------------------------------------------------------------------------------
def run(cfg: DeviceBenchConfig, stages=STAGES, command: str = "make device-bench",
        copy_from_dir: str | os.PathLike | None = None) -> dict:
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage(s) {', '.join(bad)}; stages: {', '.join(STAGES)}")
    if not cfg.device_id:
        cfg = replace(cfg, device_id=resolve_device_id(cfg.device))
    out: dict = {}
    if copy_from_dir is not None:
        out["copied"] = copy_from(cfg, copy_from_dir)
    if "select" in stages:
        out["pool"] = len(select(cfg))
    if "time" in stages:
        out["timed_rows"] = len(time_pool(cfg))
    if "train" in stages:
        out["runs"] = len(train_pool(cfg))
    if "reproduce" in stages:
        out["reproduced"] = len(reproduce_rows(cfg))
    if "supernet" in stages:
        out["supernet_estimates"] = len(rank_with_supernet(cfg))
    if "report" in stages:
        out.update(report(cfg, command))
    return out

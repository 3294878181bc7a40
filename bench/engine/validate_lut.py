"""`hwnas validate-lut`: whole networks measured end to end vs the block table's sum.

Steps: sample N networks (seeded); measure each twice, in two passes minutes apart (test-retest:
the noise floor any table is judged against), interleaved with the reference network and
normalised with the *table's* calibration, so both sides share one scale; compare the mean of
the two passes with (a) the plain table sum plus fixed parts, (b) the calibrated `lut-sum` predictor
fitted on a train split and evaluated on the held-out test split. Normalised latency is the
headline; raw medians are reported beside it. Writes <device-id>-validation.csv (metrics, with the
run's facts in its sidecar) and -validation-per-network.csv; the Markdown report and the plot are
the report's (bench/reports/lut_validation.py), written by the command that runs this.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine.memory_pass import fill_measured_memory, missing_memory
from hwnas.bench.engine.profile import measure_unit, network_units, table_path
from hwnas.bench.engine.store import LIST_COLUMNS, RowStore
from hwnas.core.io import atomic_write_bytes, file_sha256
from hwnas.core.log import bars_off
from hwnas.core.paths import TABLES_DIR
from hwnas.devices.export import DEFAULT_CACHE_DIR, OnnxCache
from hwnas.devices.lut import calibration_path
from hwnas.devices.table import TableError, now_iso, read_sidecar, read_table_file, write_sidecar
from hwnas.devices.timing import TimingConfig
from scipy import stats
from tqdm.auto import tqdm

LATENCIES = {"normalised": "latency_norm_ms", "raw": "latency_ms"}


@dataclass
class ValidateConfig:
    space: str
    device: str
    samples: int = 60
    seed: int = 0
    test_frac: float = 0.5
    out_dir: Path = TABLES_DIR
    timing: TimingConfig = field(default_factory=TimingConfig)
    batch: int = 1
    resume: bool = False
    reference: bool = True
    repeats: int = 2
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    progress: bool = True


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAPE (%), share within +-10% and +-5%, Kendall tau and Spearman rho."""
    rel = (pred - y) / y
    tau = stats.kendalltau(y, pred).statistic if len(y) > 2 else np.nan
    rho = stats.spearmanr(y, pred).statistic if len(y) > 2 else np.nan
    return {"mape_pct": float(np.mean(np.abs(rel)) * 100), "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
            "within_5pct": float(np.mean(np.abs(rel) <= 0.05)), "bias_pct": float(np.median(rel) * 100),
            "kendall_tau": float(tau), "spearman": float(rho), "n": int(len(y))}


def reference_calibration(table_meta: dict) -> dict:
    """The reference-network calibration a block table was profiled with: whole networks timed
    against it share the table's normalised scale."""
    return {k: table_meta[k] for k in table_meta if k.startswith("ref") or k == "reference"}


def measure_networks(vc: ValidateConfig, device, space, units, cal: dict, path: Path,
                     keep_raw: bool = True) -> pd.DataFrame:
    """Time `units` in `vc.repeats` passes into the resumable table `path`. `keep_raw=False` leaves
    out each row's raw run times and per-round ratios (`store.LIST_COLUMNS`), keeping the
    summaries: for tables of hundreds of networks committed under results/."""
    store = RowStore(path, key=("block_key", "repeat"), chunk=4)
    store.check_writable()
    if store.exists() and not vc.resume:
        raise FileExistsError(f"{path} already exists; pass --resume to reuse its measurements or delete it")
    done = store.done_keys()
    from hwnas.devices.reference import reference_module

    ref = reference_module() if vc.reference else None
    cache = OnnxCache(vc.cache_dir)
    todo = [(r, u) for r in range(vc.repeats) for u in units if (u.key, str(r)) not in done]
    bar = tqdm(total=len(todo), desc=f"validate {space.name}@{device.device_id}", unit="net",
               disable=bars_off() or not vc.progress, dynamic_ncols=True)
    try:
        for r, u in todo:  # pass 0 over every network, then pass 1: minutes apart
            row = measure_unit(device, u, vc.timing, vc.batch, cache, ref, cal.get("ref_latency_ms"))
            row["repeat"] = r
            if not keep_raw:
                for c in LIST_COLUMNS:
                    row.pop(c, None)
            store.append(row)
            bar.update(1)
    finally:
        bar.close()
        store.flush()
    return store.finalize(meta={**device.info(), "kind": "validation-networks", "space": space.name,
                                "batch": vc.batch, "seed": vc.seed, "samples": vc.samples, **cal})


def validate(vc: ValidateConfig) -> dict:
    from hwnas.devices.lut import BlockTable
    from hwnas.devices.registry import create_device
    from hwnas.predictors.base import create_predictor
    from hwnas.search.spaces import create_space

    space = create_space(vc.space)
    device = create_device(vc.device)
    tpath = table_path(vc.out_dir, space.name, device.device_id)
    if not tpath.exists():
        raise FileNotFoundError(f"{tpath}: no block table for {device.device_id}; run "
                                f"`hwnas profile --device {vc.device} --space {space.name}` first")
    tmeta = read_sidecar(tpath)
    cal = reference_calibration(tmeta)
    if vc.reference and not cal.get("ref_latency_ms"):
        raise TableError(f"{tpath}: the table has no reference calibration (profiled with --no-reference?); "
                         "validate with --no-reference or re-profile")
    tables = {}
    for name, col in LATENCIES.items():
        if name == "normalised" and not vc.reference:
            continue
        tables[name] = BlockTable.from_file(tpath, col)
    units = network_units(space, vc.samples, vc.seed)
    archs = {u.key: space.from_str(u.arch_str) for u in units}
    for t in tables.values():  # a table missing blocks fails now, not after minutes of measuring
        for a in archs.values():
            t.network_sum(space, a)
    npath = table_path(vc.out_dir, space.name, device.device_id, "-validation-networks")
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    nets = measure_networks(vc, device, space, units, cal, npath)
    device.close()
    if getattr(device, "provider", None) == "cpu" and missing_memory(nets).any():
        # networks measured before memory was: fill it in without timing anything again
        fill_measured_memory(npath, space, threads=device.threads, batch=vc.batch, cache_dir=vc.cache_dir,
                             progress=vc.progress)
        nets = read_table_file(npath)
    wall = time.perf_counter() - t0

    rng = np.random.default_rng(vc.seed + 1)
    keys = [u.key for u in units]
    order = rng.permutation(len(keys))
    n_test = max(2, int(round(vc.test_frac * len(keys))))
    test = {keys[i] for i in order[:n_test]}
    per_net = pd.DataFrame({"block_key": keys, "arch_str": [u.arch_str for u in units],
                            "split": ["test" if k in test else "train" for k in keys]})
    rows = []
    for name in tables:  # the table itself is read again by `lut-sum`, whose saved state keeps it
        col = LATENCIES[name]
        wide = nets.pivot_table(index="block_key", columns="repeat", values=col, aggfunc="first")
        r0, r1 = wide[0].reindex(keys).to_numpy(), wide[1].reindex(keys).to_numpy()
        y = (r0 + r1) / 2
        a = [archs[k] for k in keys]
        lut = create_predictor("lut-sum", space=space, lut=str(tpath), column=col)
        tr = np.array([k not in test for k in keys])
        lut.fit([x for x, t in zip(a, tr, strict=True) if t], y[tr])
        plain = lut.table_sum(a)
        cal_pred = lut.predict(a)
        per_net[f"{name}_run0_ms"], per_net[f"{name}_run1_ms"] = r0, r1
        per_net[f"{name}_measured_ms"], per_net[f"{name}_table_sum_ms"] = y, plain
        per_net[f"{name}_calibrated_ms"] = cal_pred
        for pred_name, pred, mask in (("table sum", plain, np.ones_like(tr)), ("table sum", plain, ~tr),
                                      ("calibrated", cal_pred, ~tr), ("calibrated", cal_pred, tr)):
            split = "all" if mask.all() else ("test" if (mask == ~tr).all() else "train")
            rows.append({"latency": name, "predictor": pred_name, "split": split, **metrics(y[mask], pred[mask])})
        rows.append({"latency": name, "predictor": "test-retest (run 1 vs run 0)", "split": "all", **metrics(r0, r1)})
        doc = {**lut.calibration_doc(), "table_sha256": file_sha256(tpath)}  # read_calibration checks it
        atomic_write_bytes(calibration_path(tpath, col), json.dumps(doc, indent=2).encode())
    rep = pd.DataFrame(rows)
    mem = memory_comparison(nets, keys)
    if mem is not None:
        per_net = per_net.merge(mem["per_network"], on="block_key", how="left")
    base = tpath.with_name(f"{device.device_id}-validation")
    atomic_write_bytes(base.with_suffix(".csv"), rep.to_csv(index=False).encode())
    atomic_write_bytes(base.with_name(base.name + "-per-network.csv"), per_net.to_csv(index=False).encode())
    info = {"device": vc.device, "device_id": device.device_id, "space": space.name, "samples": vc.samples,
            "seed": vc.seed, "test": n_test, "train": len(keys) - n_test, "wall_s": round(wall, 1),
            "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "table": str(tpath), "processor": tmeta.get("processor"), "threads": tmeta.get("threads"),
            "written_at": now_iso(), "ref_latency_ms": cal.get("ref_latency_ms")}
    info.update(_measured_before(base, nets))
    write_sidecar(base.with_suffix(".csv"), info)
    head = rep[(rep.latency == next(iter(tables))) & (rep.split != "train")]
    summary = "\n".join(f"{r.latency:>10} {r.predictor:<30} {r.split:<5} MAPE {r.mape_pct:5.1f}%  "
                        f"within10 {r.within_10pct:5.0%}  within5 {r.within_5pct:5.0%}  tau {r.kendall_tau:.3f}"
                        for r in head.itertuples())
    return {"base": base, "csv": str(base.with_suffix(".csv")), "report": rep, "per_network": per_net, "info": info,
            "memory": mem, "summary": summary}


def memory_comparison(nets: pd.DataFrame, keys: list[str]) -> dict | None:
    """Measured peak memory of each network beside the analytic activation estimate; None when
    no network has a measured figure. Memory does not depend on the pass, so each network's
    first measured row stands for it (repeats that disagree are counted)."""
    if "peak_mem_bytes" not in nets.columns or missing_memory(nets).all():
        return None
    d = nets.assign(peak_mem_bytes=pd.to_numeric(nets["peak_mem_bytes"], errors="coerce"))
    d = d[d["block_key"].isin(keys) & d["peak_mem_bytes"].notna()]
    disagree = int((d.groupby("block_key")["peak_mem_bytes"].nunique() > 1).sum())
    first = d.sort_values("repeat" if "repeat" in d.columns else "block_key").groupby("block_key", sort=False).first()
    per = pd.DataFrame({"block_key": first.index, "param_bytes": first["param_bytes"].to_numpy(),
                        "activation_bytes": first["activation_bytes"].to_numpy(),
                        "peak_mem_bytes": first["peak_mem_bytes"].to_numpy(),
                        "peak_mem_source": first["peak_mem_source"].to_numpy()})
    ok = per["activation_bytes"].notna()
    y = per.loc[ok, "peak_mem_bytes"].to_numpy(float)
    a = per.loc[ok, "activation_bytes"].to_numpy(float)
    ratio = y / a
    return {"per_network": per, "metrics": {**metrics(y, a), "ratio_median": float(np.median(ratio)),
                                            "ratio_min": float(ratio.min()), "ratio_max": float(ratio.max())},
            "sources": sorted(per["peak_mem_source"].astype(str).unique()), "repeats_disagree": disagree}


def _measured_before(base: Path, nets: pd.DataFrame) -> dict:
    """A resumed run that measured nothing new reports when and under what load the networks
    were measured (the earlier report's figures), not the seconds it took to re-read them."""
    sidecar = base.with_suffix(".csv")
    if not sidecar.exists() or "measured_at" not in nets.columns:
        return {}
    prev = read_sidecar(sidecar)
    if not prev.get("written_at") or str(nets["measured_at"].max()) > prev["written_at"]:
        return {}
    return {k: prev[k] for k in ("wall_s", "load_avg_start", "load_avg_end", "written_at") if k in prev}

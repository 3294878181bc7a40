"""`hwnas profile`: measure every distinct block of a space (or N sampled whole networks) on one
or more devices and write one resumable table per device.

Per device: a calibration phase times the reference network alone (its median scales every
ratio); then each block is exported to ONNX once (cache by key) and timed interleaved with the
reference; rows are appended in atomic chunks (bench/engine/store.py), unstable rows are
re-measured once, and the table, CSV mirror and sidecar are written at the end. A resumed run
reuses the first run's calibration, so its normalised figures stay on one scale.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from hwnas.bench.engine.store import RowStore
from hwnas.core.log import bars_off
from hwnas.core.paths import TABLES_DIR
from hwnas.devices.base import Device
from hwnas.devices.export import DEFAULT_CACHE_DIR, OnnxCache
from hwnas.devices.table import now_iso, read_sidecar
from hwnas.devices.timing import TimingConfig
from tqdm.auto import tqdm

DEFAULT_OUT = TABLES_DIR


@dataclass
class ProfileConfig:
    space: str
    devices: Sequence[str]
    out_dir: Path = DEFAULT_OUT
    timing: TimingConfig = field(default_factory=TimingConfig)
    resume: bool = False
    force: bool = False
    limit: int | None = None
    sample: int | None = None  # measure N sampled whole networks instead of every block
    seed: int = 0
    batch: int = 1
    chunk: int = 8
    remeasure: int = 1  # extra attempts for rows that missed the CI target
    reference: bool = True
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    progress: bool = True


@dataclass
class Unit:
    """One thing to time: a block, a fixed part or a whole network."""

    kind: str  # block | fixed | network
    key: str
    input_shape: tuple[int, ...]  # without batch
    build: object  # () -> torch module
    arch_str: str | None = None
    stage: int | None = None


def table_path(out_dir: Path, space: str, device_id: str, suffix: str = "") -> Path:
    return Path(out_dir) / space / f"{device_id}{suffix}.parquet"


def block_units(space) -> list[Unit]:
    units = [Unit("fixed", b.key, tuple(b.input_shape), (lambda b=b: space.build_block(b)))
             for b in space.fixed_blocks()]
    units += [Unit("block", b.key, tuple(b.input_shape), (lambda b=b: space.build_block(b)))
              for b in space.all_blocks()]
    return units


def network_units(space, n: int, seed: int) -> list[Unit]:
    return arch_units(space, space.sample_many(n, np.random.default_rng(seed)))


def arch_units(space, archs) -> list[Unit]:
    """Whole networks to time end to end, keyed `network:<arch string>`."""
    return [Unit("network", f"network:{space.to_str(a)}", tuple(space.input_shape),
                 (lambda a=a: space.build(a)), arch_str=space.to_str(a)) for a in archs]


def calibrate(device: Device, cfg: TimingConfig, batch: int) -> dict:
    """Time the reference network alone, with a longer cap than a block gets."""
    from hwnas.devices.reference import (
        REFERENCE_NAME,
        reference_digest,
        reference_input,
        reference_module,
    )

    ccfg = replace(cfg, min_runs=max(cfg.min_runs, 200), max_runs=max(cfg.max_runs, 200))
    m = device.calibrate(reference_module(), reference_input(batch), ccfg)
    return {"reference": REFERENCE_NAME, "reference_sha256": reference_digest(batch),
            "ref_latency_ms": m.latency_ms, "ref_calibration_n": m.n, "ref_calibration_cov": m.latency_cov,
            "ref_calibrated_at": now_iso()}


def measure_unit(device: Device, u: Unit, cfg: TimingConfig, batch: int, cache: OnnxCache,
                 ref_module, ref_latency_ms: float | None) -> dict:
    m = device.measure_module(u.build(), (batch, *u.input_shape), cfg, ref_module=ref_module,
                              ref_latency_ms=ref_latency_ms, cache=cache, key=u.key)
    row = {"kind": u.kind, "block_key": u.key, "arch_str": u.arch_str,
           "input_shape": "x".join(map(str, u.input_shape)), **m.row(keep_samples=True),
           "measured_at": now_iso()}
    return row


def _better(a: dict, b: dict) -> dict:
    """Of two attempts, keep the stable one, else the tighter confidence interval."""
    if a["stable"] != b["stable"]:
        return a if a["stable"] else b
    return a if a["latency_ci_rel"] <= b["latency_ci_rel"] else b


def profile_device(spec: str, pc: ProfileConfig, position: int = 0) -> dict:
    """Profile one device; returns a summary dict (rows measured, seconds, table path)."""
    from hwnas.devices.registry import create_device
    from hwnas.search.spaces import create_space

    space = create_space(pc.space)
    device = create_device(spec)
    if not device.measures:
        raise ValueError(f"device {spec!r} is read-only (a table measured by others); nothing to profile")
    suffix = "-networks" if pc.sample else ""
    path = table_path(pc.out_dir, space.name, device.device_id, suffix)
    store = RowStore(path, key=("block_key",), chunk=pc.chunk)
    store.check_writable()
    if store.exists() and not (pc.resume or pc.force):
        raise FileExistsError(f"{path} already exists (or a killed run left parts); pass --resume to continue it "
                              "or --force to measure it again")
    units = network_units(space, pc.sample, pc.seed) if pc.sample else block_units(space)
    meta_prev = read_sidecar(path) if pc.resume else {}
    done = {k[0] for k in store.done_keys()} if pc.resume else set()  # corrupt table -> TableError here
    if pc.force and store.exists():  # start afresh, but keep what was measured as a backup
        old = store.load()
        if not old.empty:
            from hwnas.devices.table import write_table

            write_table(old, path.with_name(f"{path.stem}.replaced-{time.strftime('%Y%m%dT%H%M%S')}.parquet"),
                        csv_mirror=False)
        for p in store._parts():
            p.unlink()
        path.unlink(missing_ok=True)
        done = set()
    todo = [u for u in units if u.key not in done]
    if pc.limit is not None:
        todo = todo[: pc.limit]

    from hwnas.devices.reference import reference_digest, reference_module

    ref_module = reference_module() if pc.reference else None
    cal = {}
    if pc.reference:
        same_ref = meta_prev.get("reference_sha256") == reference_digest(pc.batch) and meta_prev.get("batch") == pc.batch
        if pc.resume and same_ref and meta_prev.get("ref_latency_ms"):
            cal = {k: meta_prev[k] for k in meta_prev if k.startswith("ref") or k == "reference"}
        elif todo:
            cal = calibrate(device, pc.timing, pc.batch)
    meta = {**device.info(), "kind": "profile", "space": space.name, "batch": pc.batch,
            "timing": pc.timing.to_dict(), "units": "sampled networks" if pc.sample else "blocks",
            "sample": pc.sample, "seed": pc.seed if pc.sample else None, **cal,
            "latency_columns": {"latency_ms": "raw median of the target's runs",
                                "latency_norm_ms": "ref_ratio x ref_latency_ms (drift compensated; default)"},
            "memory_columns": {"param_bytes": "initializer bytes (exact)",
                               "activation_bytes": "analytic peak of live activations (onnx shape inference)",
                               "peak_mem_bytes": "measured by the runtime (peak_mem_source; ort-cpu-arena-peak: onnxruntime's "
                                                 "CPU arena high-water mark, working memory without in-place weights)"},
            "load_avg_start": list(os.getloadavg()), "status": "in progress", "total_units": len(units)}
    if todo:
        from hwnas.devices.table import write_sidecar
        write_sidecar(path, {**meta_prev, **meta, "rows": len(done)})
    cache = OnnxCache(pc.cache_dir)
    ref_ms = cal.get("ref_latency_ms")
    t0, measured, busy, unstable = time.perf_counter(), 0, 0.0, 0
    bar = tqdm(total=len(todo), desc=f"{space.name}@{device.device_id}", unit="blk", position=position,
               disable=bars_off() or not pc.progress, dynamic_ncols=True, leave=True)
    try:
        for u in todo:
            row = measure_unit(device, u, pc.timing, pc.batch, cache, ref_module, ref_ms)
            attempts = 1
            while not row["stable"] and attempts <= pc.remeasure:
                row = _better(row, measure_unit(device, u, pc.timing, pc.batch, cache, ref_module, ref_ms))
                attempts += 1
            row["attempts"] = attempts
            unstable += not row["stable"]
            busy += row.get("busy_s") or 0.0
            store.append(row)
            measured += 1
            bar.update(1)
            bar.set_postfix(ms=f"{row['latency_norm_ms'] or row['latency_ms']:.3f}", unstable=unstable)
    finally:
        bar.close()
        store.flush()
        device.close()
    wall = time.perf_counter() - t0
    df = store.load()
    have = set(df["block_key"]) if not df.empty else set()
    complete = {u.key for u in units} <= have
    stale = sorted(have - {u.key for u in units})  # rows of an older space definition: kept, reported
    meta.update(status="complete" if complete else "partial", load_avg_end=list(os.getloadavg()),
                stale_rows=len(stale))
    store.finalize(meta={**meta_prev, **meta}, sort_by=None)
    return {"device": spec, "device_id": device.device_id, "path": str(path), "measured": measured,
            "rows": int(len(have & {u.key for u in units})), "total": len(units), "unstable": unstable,
            "stale": len(stale), "wall_s": wall,
            "busy_s": busy, "complete": complete}


def check_devices(specs: Sequence[str]) -> list[str]:
    """The device id of each spec, before anything is measured: an unknown or unavailable device
    fails here, and two specs of one device (one table, measured twice at once) are refused."""
    from hwnas.devices.registry import create_device

    ids: dict[str, str] = {}
    for s in specs:
        d = create_device(s)
        did = d.device_id
        d.close()
        if did in ids:
            raise ValueError(f"--device names {did} twice ({ids[did]!r} and {s!r}); one table is measured by "
                             "one run at a time: give each device once")
        ids[did] = s
    return list(ids)


def profile(pc: ProfileConfig) -> list[dict]:
    """Profile every device in `pc.devices` in parallel threads (one table each)."""
    specs = list(pc.devices)
    check_devices(specs)
    if len(specs) == 1:
        return [profile_device(specs[0], pc)]
    with ThreadPoolExecutor(max_workers=len(specs)) as ex:
        futs = [ex.submit(profile_device, s, pc, i) for i, s in enumerate(specs)]
        out, errors = [], []
        for f in futs:
            try:
                out.append(f.result())
            except Exception as exc:  # keep the others' rows; report every failure
                errors.append(exc)
    if errors:
        raise errors[0]
    return out


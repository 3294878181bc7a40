"""The memory-only pass: fill the measured `peak_mem_bytes` of a table's rows without timing.

Tables profiled before memory was measured on the CPU have the column empty. Memory does not
depend on the machine's load (the onnxruntime CPU arena's peak is the same every run:
devices/ort_profile.py), latency does; so the memory of every row can be measured on a busy
machine, leaving its latency columns exactly as they were timed. Each row's model is exported
(through the same ONNX cache the profile used) and run twice in a profiled session.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from hwnas.bench.engine.profile import arch_units, block_units
from hwnas.bench.engine.store import LIST_COLUMNS
from hwnas.core.io import atomic_write_bytes
from hwnas.core.log import bars_off
from hwnas.devices.export import DEFAULT_CACHE_DIR, OnnxCache
from hwnas.devices.table import TableError, now_iso, read_sidecar, read_table_file, write_sidecar
from tqdm.auto import tqdm


def missing_memory(df: pd.DataFrame) -> pd.Series:
    """Rows whose measured peak memory is empty."""
    if "peak_mem_bytes" not in df.columns:
        return pd.Series(True, index=df.index)
    return pd.to_numeric(df["peak_mem_bytes"], errors="coerce").isna()


def _write(df: pd.DataFrame, path: Path) -> None:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    csv = df.drop(columns=[c for c in df.columns if c in LIST_COLUMNS or c.endswith("_list")])
    atomic_write_bytes(path.with_suffix(".csv"), csv.to_csv(index=False).encode())


def fill_measured_memory(path: str | Path, space, threads: int | None = None, batch: int | None = None,
                         cache_dir: str | Path = DEFAULT_CACHE_DIR, progress: bool = True,
                         save_every: int = 16) -> dict:
    """Measure the CPU peak memory of every row of the table at `path` that lacks it (onnxruntime
    CPU provider, the table's threads and batch from its sidecar); write the table back with the
    latency columns untouched. Resumable: rows filled by an interrupted pass are kept."""
    from hwnas.devices.ort import measure_peak_memory

    path = Path(path)
    df = read_table_file(path)
    meta = read_sidecar(path)
    if "block_key" not in df.columns or "kind" not in df.columns:
        raise TableError(f"{path}: not a `hwnas profile` or validate-lut table (no block_key/kind columns)")
    if meta.get("providers") and meta["providers"][0] != "CPUExecutionProvider":
        raise TableError(f"{path}: measured on {meta['providers'][0]}; the memory pass measures the onnxruntime "
                         "CPU provider's memory only")
    threads = threads or meta.get("threads") or 1
    batch = batch or meta.get("batch") or 1
    units = {u.key: u for u in block_units(space)}
    todo = df.index[missing_memory(df)].tolist()
    if "peak_mem_bytes" not in df.columns:
        df["peak_mem_bytes"] = None
    df["peak_mem_bytes"] = pd.array(pd.to_numeric(df["peak_mem_bytes"], errors="coerce"), dtype="Int64")
    if "peak_mem_source" not in df.columns:
        df["peak_mem_source"] = "none"
    cache = OnnxCache(cache_dir)
    t0, done = time.perf_counter(), 0
    for i in tqdm(todo, desc=f"memory {path.stem}", unit="row", disable=bars_off() or not progress, dynamic_ncols=True):
        key, kind = str(df.at[i, "block_key"]), str(df.at[i, "kind"])
        if kind == "network":
            u = arch_units(space, [space.from_str(str(df.at[i, "arch_str"]))])[0]
        elif key in units:
            u = units[key]
        else:
            continue  # a row of an older space definition: left as it is
        shape = (int(batch), *u.input_shape)
        from hwnas.devices.export import to_onnx

        onnx_bytes = to_onnx(u.build(), shape, cache=cache, key=u.key)
        peak, source = measure_peak_memory(onnx_bytes, {"x": shape}, int(threads))
        df.at[i, "peak_mem_bytes"] = peak
        df.at[i, "peak_mem_source"] = source
        done += 1
        if done % save_every == 0:
            _write(df, path)
    left = int(missing_memory(df).sum())
    if done:
        _write(df, path)
        write_sidecar(path, {**meta, "memory_pass": {
            "what": "peak_mem_bytes measured without timing (bench/engine/memory_pass.py); latency columns untouched",
            "rows": done, "threads": int(threads), "at": now_iso()}})
    return {"path": str(path), "filled": done, "missing": left, "wall_s": time.perf_counter() - t0}

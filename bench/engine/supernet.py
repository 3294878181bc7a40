"""Supernet stages of the main job: train a supernet, then sample and score many subnets.

`sample_subnets` is resumable: rows are written (atomically) after every chunk of subnets, and a
rerun with the same options skips the archs already in the output file.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core.log import bars_off
from hwnas.core.paths import portable
from hwnas.devices.table import read_sidecar, write_table


def sample_archs(space, n: int, seed: int, archs_file: str | None = None) -> list:
    """N distinct random archs (seeded), or the archs listed in a file (text lines, CSV or
    Parquet with `arch_str`)."""
    if archs_file:
        p = Path(archs_file)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such arch list; give a text file (one arch string per line) or a table with arch_str")
        if p.suffix.lower() in (".csv", ".parquet", ".pq"):
            from hwnas.devices.table import read_table_file

            df = read_table_file(p)
            if "arch_str" not in df.columns:
                raise ValueError(f"{p}: no arch_str column; found {', '.join(map(str, df.columns[:8]))}")
            lines = [str(s) for s in df["arch_str"]]
        else:
            lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        archs = []
        for i, s in enumerate(lines):
            try:
                archs.append(space.from_str(s))
            except ValueError as exc:
                raise ValueError(f"{p} line {i + 1}: {exc}") from None
        return archs[:n] if n else archs
    return space.sample_many(n, np.random.default_rng(seed), unique=True)


def sample_subnets(space, checkpoint: str, out: str, n: int = 200, seed: int = 0,
                   data: str = "fashion-mnist", archs_file: str | None = None,
                   calib_images: int = 512, val_images: int | None = None, workers: int | None = None,
                   executor: str = "process", chunk: int = 4, progress: bool = True) -> pd.DataFrame:
    from hwnas.search.supernet import SubnetEvaluator, load_checkpoint
    from tqdm.auto import tqdm

    ck = load_checkpoint(checkpoint)
    if ck["space"] != space.name:
        raise ValueError(f"{checkpoint}: checkpoint is of space {ck['space']!r}, not {space.name!r}; pass --space {ck['space']}")
    archs = sample_archs(space, n, seed, archs_file)
    strs = [space.to_str(a) for a in archs]
    out_p = Path(out)
    meta = {
        "kind": "supernet-samples", "space": space.name, "checkpoint": portable(Path(checkpoint).resolve()),
        "checkpoint_epochs": ck["epoch"], "checkpoint_train_config": ck.get("train_config"),
        "data": data, "split": "val", "seed": seed, "calib_images": calib_images,
        "val_images": val_images, "arch_source": archs_file or f"uniform random, seed {seed}",
        "columns": {
            "val_acc": "top-1 accuracy in % on the validation split (never the test split), BN recalibrated per subnet",
            "params": "parameters of the stand-alone subnet",
            "macs": "multiply-accumulates of one 1-image forward (conv + linear layers)",
            "flops": "same number as macs (FLOPs here means MACs, as in OFA/MobileNet papers)",
        },
        "host": platform.node(), "processor": platform.processor() or platform.machine(),
    }
    done = pd.DataFrame()
    if out_p.exists():
        old = pd.read_parquet(out_p)
        old_meta = read_sidecar(out_p)
        same = all(old_meta.get(k) == meta[k] for k in ("space", "seed", "calib_images", "val_images", "data"))
        if same and "arch_str" in old.columns:
            done = old[old["arch_str"].isin(strs)]
    todo = [s for s in strs if s not in set(done.get("arch_str", []))]
    if not todo and len(done) == len(strs):  # nothing to do: keep the finished file as it is
        return _write(done.to_dict("records"), strs, None, None)
    rows = done.to_dict("records")
    t0 = time.perf_counter()
    ev = SubnetEvaluator(space, checkpoint, data=data, calib_images=calib_images,
                         val_images=val_images, workers=workers, executor=executor, seed=seed)
    try:
        with tqdm(total=len(strs), initial=len(strs) - len(todo), desc="subnets", disable=bars_off() or not progress,
                  mininterval=1.0) as bar:
            for chunk_strs, res in ev.iter_chunks(todo, with_cost=True, chunk=chunk):
                for s, (acc, params, macs) in zip(chunk_strs, res, strict=True):
                    rows.append({"arch_str": s, "val_acc": acc, "params": params, "macs": macs,
                                 "flops": macs, "seed": seed})
                bar.update(len(chunk_strs))
                _write(rows, strs, out_p, {**meta, "complete": False})
        seconds = time.perf_counter() - t0
        meta.update(workers=ev._ex.workers if ev._ex else 0, executor=executor,
                    val_images_used=getattr(ev, "n_val_", None))
    finally:
        ev.close()
    df = _write(rows, strs, out_p, {**meta, "complete": True, "seconds_this_run": round(seconds, 1)})
    return df


def _write(rows, order, out_p, meta) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["arch_str", "val_acc", "params", "macs", "flops", "seed"])
    pos = {s: i for i, s in enumerate(order)}
    df = df.sort_values("arch_str", key=lambda c: c.map(pos)).reset_index(drop=True)
    df = df.astype({"val_acc": "float64", "params": "int64", "macs": "int64", "flops": "int64", "seed": "int64"})
    if out_p is not None:
        write_table(df, out_p, meta={**meta, "rows": len(df)})
    return df


def summary(df: pd.DataFrame) -> dict:
    acc = df["val_acc"].to_numpy()
    return {"n": len(acc), "best_val_acc": float(acc.max()), "mean_val_acc": float(acc.mean()),
            "std_val_acc": float(acc.std(ddof=1)) if len(acc) > 1 else float("nan"),
            "min_val_acc": float(acc.min()), "best_arch": df["arch_str"].iloc[int(acc.argmax())]}


def run_facts(out: str | Path, checkpoint: str | Path) -> dict:
    """Timing provenance for the summary: training from the checkpoint, sampling from the sidecar."""
    import os

    from hwnas.search.supernet import load_checkpoint

    hist = load_checkpoint(checkpoint).get("history", [])
    meta = read_sidecar(out)
    facts = {
        "train_epochs": len(hist),
        "train_images": int(sum(h["images"] for h in hist)),
        "train_seconds_in_epochs": round(float(sum(h["seconds"] for h in hist)), 1),
        "sample_seconds": meta.get("seconds_this_run"),
        "calib_images_per_subnet": meta.get("calib_images"),
        "val_images_per_subnet": meta.get("val_images_used"),
        "sample_workers": meta.get("workers"),
    }
    if hist:
        facts.update({k: v for k, v in hist[-1].items() if k.startswith("val_acc")})
    try:
        facts["load_avg_1min_at_summary"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return facts

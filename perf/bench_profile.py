"""Harness overhead of `hwnas profile` (`make bench`): wall time of profiling blocks divided by
the time the device spent in inference, and blocks per minute.

Two inference denominators, both summed from the timed run calls: target only (the block
itself) and target + reference (the interleaved reference runs are part of the protocol, not
overhead of the harness). Measured on the first N_BLOCKS blocks of mbv3-fmnist with the default
protocol (cpu:threads=1, rel_ci 2%, warm-up 0.2 s), once with a cold ONNX export cache and once
warm. The two runs time the same blocks, so they also give the protocol's test-retest
repeatability (relative difference of each block's normalised latency between them): a change that
lowers the overhead must leave it as it was. Figures go to results/bench/profile.md.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.engine.profile import ProfileConfig, profile_device

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "results" / "bench" / "profile.md"
SPACE, DEVICE, N_BLOCKS = "mbv3-fmnist", "cpu:threads=1", 20
_rows: list[dict] = []
_latencies: dict[str, pd.Series] = {}  # run -> block key -> latency_norm_ms


def _run(tmp: Path, cache: Path) -> dict:
    pc = ProfileConfig(space=SPACE, devices=[DEVICE], out_dir=tmp, limit=N_BLOCKS, cache_dir=cache, progress=False)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    summary = profile_device(DEVICE, pc)
    wall = time.perf_counter() - t0  # calibration, export, sessions, timing, writes: everything
    df = pd.read_parquet(summary["path"])
    _latencies[str(tmp)] = df.set_index("block_key")["latency_norm_ms"].fillna(df.set_index("block_key")["latency_ms"])
    target_s = float(sum(sum(s) for s in df.samples_ms)) / 1e3
    busy_s = float(df.busy_s.sum())
    return {"blocks": len(df), "wall_s": wall, "target_s": target_s, "busy_s": busy_s,
            "overhead_vs_target": wall / target_s, "overhead_vs_all_inference": wall / busy_s,
            "blocks_per_min": len(df) / wall * 60, "load_avg_1m": f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
            "unstable": int((~df.stable).sum())}


def _write() -> None:
    lines = ["# Profiling harness overhead", "",
             f"`{SPACE}`, first {N_BLOCKS} blocks (2 fixed + 18 blocks), device `{DEVICE}`, default protocol "
             "(warm-up 0.2 s / 10 runs, rounds of 10 interleaved with the reference, stop at 2% CI of the ratio "
             "or 10 s). Host " f"{platform.machine()}, processor {_proc()}. Regenerate: `make bench`.",
             "overhead = wall time of the whole profile call / time inside inference calls; `vs target` counts only "
             "the block's own runs, `vs all inference` also counts the interleaved reference runs.",
             "The machine is shared (load average given): figures vary with the other jobs.", "",
             "| export cache | blocks | wall s | target s | all inference s | overhead vs target | overhead vs all inference | blocks/min | load 1m | unstable |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows:
        lines.append(f"| {r['cache']} | {r['blocks']} | {r['wall_s']:.1f} | {r['target_s']:.2f} | {r['busy_s']:.2f} | "
                     f"{r['overhead_vs_target']:.1f}x | {r['overhead_vs_all_inference']:.2f}x | {r['blocks_per_min']:.0f} | "
                     f"{r['load_avg_1m']} | {r['unstable']} |")
    rep = repeatability()
    if rep is not None:
        lines += ["", f"Test-retest repeatability (the same {rep['blocks']} blocks timed by both runs): median relative "
                  f"difference of latency_norm_ms {rep['median_rel_diff']:.1%}, 90th percentile {rep['p90_rel_diff']:.1%}, "
                  f"{rep['within_5pct']:.0%} of blocks within +-5%."]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


def repeatability() -> dict | None:
    """Agreement of the two runs' normalised latencies, block by block."""
    if len(_latencies) < 2:
        return None
    a, b = list(_latencies.values())[:2]
    both = a.index.intersection(b.index)
    d = ((a[both] - b[both]).abs() / ((a[both] + b[both]) / 2)).to_numpy()
    return {"blocks": len(both), "median_rel_diff": float(np.median(d)), "p90_rel_diff": float(np.percentile(d, 90)),
            "within_5pct": float((d <= 0.05).mean())}


def _proc() -> str:
    from hwnas.devices.base import processor_name

    return processor_name()


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_profile_overhead(benchmark, tmp_path_factory, cache):
    shared = tmp_path_factory.getbasetemp() / "onnx-cache"
    out = tmp_path_factory.mktemp(f"tables-{cache}")
    if cache == "cold" and shared.exists():
        import shutil

        shutil.rmtree(shared)
    row = benchmark.pedantic(_run, args=(out, shared), rounds=1, iterations=1)
    row["cache"] = cache
    _rows.append(row)
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "cache"})
    _write()
    assert row["blocks"] == N_BLOCKS and row["overhead_vs_all_inference"] >= 1.0

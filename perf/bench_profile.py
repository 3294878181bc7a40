"""Harness overhead of `hwnas profile` (`make bench`): wall time of profiling blocks divided by
the time the device spent in inference, and blocks per minute.

Two inference denominators, both summed from the timed run calls: target only (the block
itself) and target + reference (the interleaved reference runs are part of the protocol, not
overhead of the harness). Measured on the first N_BLOCKS blocks of mbv3-fmnist with the default
protocol (cpu:threads=1, rel_ci 2%, warm-up 0.2 s), once with a cold ONNX export cache and once
warm. The two runs time the same blocks, so they also give the protocol's test-retest
repeatability (relative difference of each block's normalised latency between them): a change that
lowers the overhead must leave it as it was. The protocol's warm-up runs (0.2 s per block and
reference at least) are timed apart, so the harness's own cost (wall - warm-up - timed inference)
shows. Figures go to results/bench/profile.md and profile.csv, one set of rows per code version
(the commit of the hwnas that was imported): to add an older version's rows, run this file from
that checkout's folder, which then provides `hwnas` (`cd OLD && python3 -m pytest -q -p
no:cacheprovider --benchmark-enable NEW/perf/bench_profile.py`); the report compares the versions
it holds, measured on the same machine (the load average is given for each).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from hwnas.bench.engine.profile import ProfileConfig, profile_device
except ImportError:  # a checkout from before the bench split (its before/after rows: see above)
    from hwnas.bench.pipelines.profile import ProfileConfig, profile_device

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "results" / "bench" / "profile.md"
ROWS = REPORT.with_suffix(".csv")
SPACE, DEVICE, N_BLOCKS = "mbv3-fmnist", "cpu:threads=1", 20
_rows: list[dict] = []
_latencies: dict[str, pd.DataFrame] = {}  # run -> block key -> ref_ratio, latency_norm_ms


def _code_version() -> str:
    """The commit of the hwnas checkout that is being measured (`+` when its code has local
    changes; results and benchmarks do not count)."""
    import hwnas

    root = Path(hwnas.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!results", ":!perf"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+" if dirty else "")


def _run(tmp: Path, cache: Path) -> dict:
    from hwnas.devices import timing

    pc = ProfileConfig(space=SPACE, devices=[DEVICE], out_dir=tmp, limit=N_BLOCKS, cache_dir=cache, progress=False)
    warm = [0.0]
    plain_warm_up = timing.warm_up

    def timed_warm_up(fn, cfg):
        t = time.perf_counter()
        try:
            return plain_warm_up(fn, cfg)
        finally:
            warm[0] += time.perf_counter() - t

    timing.warm_up = timed_warm_up  # `measure` looks the name up in its module at each call
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        summary = profile_device(DEVICE, pc)
    finally:
        timing.warm_up = plain_warm_up
    wall = time.perf_counter() - t0  # calibration, export, sessions, warm-up, timing, writes: everything
    df = pd.read_parquet(summary["path"])
    _latencies[str(tmp)] = df.set_index("block_key")[["ref_ratio", "latency_norm_ms"]]
    target_s = float(sum(sum(s) for s in df.samples_ms)) / 1e3
    busy_s = float(df.busy_s.sum())
    return {"blocks": len(df), "wall_s": wall, "target_s": target_s, "busy_s": busy_s, "warmup_s": warm[0],
            "overhead_vs_target": wall / target_s, "overhead_vs_all_inference": wall / busy_s,
            "harness_share": (wall - warm[0] - busy_s) / wall,
            "blocks_per_min": len(df) / wall * 60, "load_avg_1m": f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
            "unstable": int((~df.stable).sum())}


def _write() -> None:
    """Merge this run's rows into profile.csv (replacing earlier rows of the same code version)
    and render every version it holds."""
    rows = pd.DataFrame(_rows).assign(code=_code_version())
    rep = repeatability()
    for k, v in (rep or {}).items():
        rows[f"retest_{k}"] = v
    if ROWS.exists():
        old = pd.read_csv(ROWS)
        rows = pd.concat([old[old.code != rows.code.iloc[0]], rows], ignore_index=True)
    ROWS.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(ROWS, index=False, float_format="%.6g")
    lines = ["# Profiling harness overhead", "",
             f"`{SPACE}`, first {N_BLOCKS} blocks (2 fixed + 18 blocks), device `{DEVICE}`, default protocol "
             "(warm-up 0.2 s / 10 runs, rounds of 10 interleaved with the reference, stop at 2% CI of the ratio "
             "or 10 s). Host " f"{platform.machine()}, processor {_proc()}. Regenerate: `make bench` (one code "
             "version's rows; an older checkout adds its own: perf/bench_profile.py says how).",
             "overhead = wall time of the whole profile call / time inside timed inference calls; `vs target` counts "
             "only the block's own runs, `vs all inference` also the interleaved reference runs. Warm-up: the "
             "protocol's untimed runs before each block and the reference. Harness share: what is left of the wall "
             "time after warm-up and timed inference (export, sessions, calibration, statistics, writes).",
             "Rows of different code versions compare only when measured in one sitting (load average given).", "",
             "| code | export cache | blocks | wall s | target s | all inference s | warm-up s | overhead vs target "
             "| overhead vs all inference | harness share | blocks/min | load 1m | unstable |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for _, r in rows.iterrows():
        warm = "" if pd.isna(r.get("warmup_s")) else f"{r['warmup_s']:.2f}"
        share = "" if pd.isna(r.get("harness_share")) else f"{r['harness_share']:.0%}"
        lines.append(f"| {r['code']} | {r['cache']} | {r['blocks']} | {r['wall_s']:.1f} | {r['target_s']:.2f} | "
                     f"{r['busy_s']:.2f} | {warm} | {r['overhead_vs_target']:.1f}x | "
                     f"{r['overhead_vs_all_inference']:.2f}x | {share} | {r['blocks_per_min']:.0f} | "
                     f"{r['load_avg_1m']} | {r['unstable']} |")
    lines.append("")
    for code, g in rows.groupby("code", sort=False):
        if "retest_blocks" in g and g.retest_blocks.notna().any():
            r = g.iloc[-1]
            what = [(tag, name) for tag, name in (("ratio", "the ratio to the interleaved reference"),
                                                  ("norm", "latency_norm_ms (ratio x each run's calibration)"))
                    if f"retest_{tag}_median_rel_diff" in r and pd.notna(r[f"retest_{tag}_median_rel_diff"])]
            lines.append(f"Test-retest repeatability of `{code}` (the same {int(r['retest_blocks'])} blocks timed by "
                         "both runs), median / 90th percentile of the relative difference, share within +-5%: "
                         + "; ".join(f"{name} {r[f'retest_{t}_median_rel_diff']:.1%} / {r[f'retest_{t}_p90_rel_diff']:.1%}, "
                                     f"{r[f'retest_{t}_within_5pct']:.0%}" for t, name in what) + ".")
    try:
        from hwnas.bench.reports.writer import write_markdown
    except ImportError:  # an older checkout adding its rows: the current code rewrites the report after
        REPORT.write_text("\n".join(lines) + "\n")
        return
    write_markdown(REPORT, lines, command="make bench")


def repeatability() -> dict | None:
    """Agreement of the two runs, block by block: of the ratio to the interleaved reference (what
    the protocol measures, drift cancelled) and of latency_norm_ms (that ratio times each run's own
    calibration of the reference alone, which moves with the machine's speed between runs: here
    the reference alone measured 0.31-0.49 ms within one minute)."""
    if len(_latencies) < 2:
        return None
    a, b = list(_latencies.values())[:2]
    both = a.index.intersection(b.index)
    out = {"blocks": len(both)}
    for col, tag in (("ref_ratio", "ratio"), ("latency_norm_ms", "norm")):
        d = ((a.loc[both, col] - b.loc[both, col]).abs() / ((a.loc[both, col] + b.loc[both, col]) / 2)).to_numpy()
        out.update({f"{tag}_median_rel_diff": float(np.median(d)), f"{tag}_p90_rel_diff": float(np.percentile(d, 90)),
                    f"{tag}_within_5pct": float((d <= 0.05).mean())})
    return out


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

"""`hwnas profile` end to end through the real CLI (subprocesses), on mbv3-fmnist blocks, with
a loose timing config so each block takes a fraction of a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

FAST = ["--max-s", "0.05", "--rel-ci", "0.5", "--warmup-s", "0", "--min-runs", "10", "--round-runs", "2"]


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def hwnas(*args):
    """In-process through click's runner (the CLI's error handling included): no interpreter start."""
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    r = CliRunner().invoke(cli, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Result(r.exit_code, r.stdout, r.stderr)


def prof(tmp_path, *extra, device="cpu:threads=1", space="mbv3-fmnist"):
    return hwnas("profile", "--device", device, "--space", space, "--out-dir", str(tmp_path / "t"),
                 "--cache-dir", str(tmp_path / "cache"), *FAST, *extra)


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    err = [line for line in r.stderr.strip().splitlines() if line.startswith("hwnas")]
    assert len(err) == 1 and err[0].startswith("hwnas: error:") and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_limit_then_resume_measures_nothing_twice(tmp_path):
    r = prof(tmp_path, "--limit", "3")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "t" / "mbv3-fmnist" / "cpu-t1.parquet"
    first = pd.read_parquet(path)
    assert len(first) == 3 and "partial" in r.stdout
    assert {"block_key", "kind", "latency_ms", "latency_norm_ms", "ref_ratio", "samples_ms", "param_bytes",
            "activation_bytes", "energy_source", "peak_mem_source", "stable", "latency_p99_ms"} <= set(first.columns)
    assert all(len(s) == n for s, n in zip(first.samples_ms, first.n, strict=True))  # raw samples kept
    assert path.with_suffix(".csv").exists() and (path.parent / "cpu-t1.meta.json").exists()
    r = prof(tmp_path, "--resume", "--limit", "2")
    assert r.returncode == 0, r.stderr
    second = pd.read_parquet(path)
    assert len(second) == 5 and second.block_key.is_unique
    kept = second.set_index("block_key").loc[first.block_key, "measured_at"]
    assert kept.tolist() == first.measured_at.tolist()  # the first rows were not re-measured
    # one calibration for the whole table, so normalised figures share a scale
    assert second.ref_latency_ms.nunique() == 1
    r = prof(tmp_path, "--limit", "1")
    one_line_error(r, "--resume")


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    cmd = [sys.executable, "-m", "hwnas.bench.cli", "profile", "--device", "cpu:threads=1", "--space", "mbv3-fmnist",
           "--out-dir", str(tmp_path / "t"), "--cache-dir", str(tmp_path / "cache"), "--chunk", "2", *FAST]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "t" / "mbv3-fmnist" / ".cpu-t1.parts"
    t0 = time.time()
    while time.time() - t0 < 90 and len(list(parts.glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    before = pd.concat([pd.read_parquet(f) for f in parts.glob("part-*.parquet")])
    assert len(before) >= 4
    r = prof(tmp_path, "--resume", "--limit", "3", "--chunk", "2")
    assert r.returncode == 0, r.stderr
    after = pd.read_parquet(tmp_path / "t" / "mbv3-fmnist" / "cpu-t1.parquet")
    assert after.block_key.is_unique and len(after) == before.block_key.nunique() + 3
    assert set(before.block_key) <= set(after.block_key)
    assert not parts.exists() or not list(parts.glob("part-*.parquet"))


def test_corrupt_table_is_one_line_and_left_alone(tmp_path):
    path = tmp_path / "t" / "mbv3-fmnist" / "cpu-t1.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 this is not parquet")
    r = prof(tmp_path, "--resume", "--limit", "1")
    one_line_error(r, "corrupt")
    assert path.read_bytes() == b"PAR1 this is not parquet"


@pytest.mark.parametrize("device, needle", [("gpu", "unknown device 'gpu'"), ("cuda", "CUDAExecutionProvider"),
                                            ("cpu:threads=two", "threads")])
def test_bad_device_is_one_line(tmp_path, device, needle):
    one_line_error(prof(tmp_path, "--limit", "1", device=device), needle)
    assert not (tmp_path / "t").exists()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = hwnas("profile", "--device", "cpu:threads=1", "--space", "mbv3-fmnist", "--out-dir", str(blocker / "sub"),
              "--limit", "1", *FAST)
    one_line_error(r, "cannot write", "--out-dir")


def test_nb201_cells_are_the_blocks_and_limit_works(tmp_path):
    r = prof(tmp_path, "--limit", "6", space="nb201")
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(tmp_path / "t" / "nb201" / "cpu-t1.parquet")
    assert df.kind.tolist() == ["fixed"] * 4 + ["block"] * 2
    assert df.block_key.iloc[4].startswith("cell0:C16:32x32")
    assert "partial (6/46879" in r.stdout


def test_sampled_networks_and_parallel_devices(tmp_path):
    r = prof(tmp_path, "--sample", "2", "--seed", "3", device="cpu:threads=1,torch-cpu:threads=1")
    assert r.returncode == 0, r.stderr
    for dev in ("cpu-t1", "torch-cpu-t1"):
        df = pd.read_parquet(tmp_path / "t" / "mbv3-fmnist" / f"{dev}-networks.parquet")
        assert (df.kind == "network").all() and df.arch_str.notna().all() and len(df) == 2


@pytest.mark.slow
def test_full_profile_then_validate_lut(tmp_path):
    r = prof(tmp_path)
    assert r.returncode == 0 and "complete" in r.stdout, r.stderr
    r = hwnas("validate-lut", "--device", "cpu:threads=1", "--space", "mbv3-fmnist", "--samples", "8",
              "--out-dir", str(tmp_path / "t"), *FAST)
    assert r.returncode == 0, r.stderr
    base = tmp_path / "t" / "mbv3-fmnist" / "cpu-t1-validation"
    rep = pd.read_csv(base.with_suffix(".csv"))
    assert {"table sum", "calibrated", "test-retest (run 1 vs run 0)"} <= set(rep.predictor)
    assert base.with_suffix(".md").exists() and base.with_suffix(".png").stat().st_size > 1000
    from hwnas.search.constraints import resolve
    from hwnas.search.spaces import create_space

    sp = create_space("mbv3-fmnist")  # the calibration names its table and serves constraints
    (cal,) = resolve(sp, ["latency_ms<=1@cpu-t1:calibrated"], tmp_path / "t")
    assert "calibrated" in cal.cost.description and cal.values([sp.smallest()])[0] > 0


def test_validate_lut_without_table_is_one_line(tmp_path):
    r = hwnas("validate-lut", "--device", "cpu:threads=1", "--space", "mbv3-fmnist", "--samples", "6",
              "--out-dir", str(tmp_path / "none"))
    one_line_error(r, "no block table", "hwnas profile")
    assert not Path(tmp_path / "none").exists() or not list(Path(tmp_path / "none").rglob("*.parquet"))


def test_validate_lut_with_incomplete_table_fails_before_measuring(tmp_path):
    from hwnas.devices.table import write_sidecar

    d = tmp_path / "t" / "mbv3-fmnist"
    d.mkdir(parents=True)
    pd.DataFrame({"kind": ["fixed"], "block_key": ["stem"], "latency_ms": [0.1], "latency_norm_ms": [0.1]}).to_parquet(
        d / "cpu-t1.parquet")
    write_sidecar(d / "cpu-t1.parquet", {"ref_latency_ms": 0.5})
    r = hwnas("validate-lut", "--device", "cpu:threads=1", "--space", "mbv3-fmnist", "--samples", "6",
              "--out-dir", str(tmp_path / "t"))
    one_line_error(r, "no row for")
    assert not (d / "cpu-t1-validation-networks.parquet").exists()

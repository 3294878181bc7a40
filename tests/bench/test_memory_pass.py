"""Measured CPU memory in profile tables, the memory-only pass over tables measured before it, and
validate-lut's comparison of measured and analytic memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.engine.memory_pass import fill_measured_memory
from hwnas.bench.engine.profile import ProfileConfig, profile_device
from hwnas.bench.engine.validate_lut import memory_comparison
from hwnas.devices.table import TableError, read_sidecar
from hwnas.devices.timing import TimingConfig
from hwnas.search.spaces import create_space

FAST = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_s=0.05, rel_ci=0.5, round_runs=2)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mem")
    pc = ProfileConfig(space="mbv3-fmnist", devices=["cpu:threads=1"], out_dir=tmp / "t", timing=FAST, limit=3,
                       cache_dir=tmp / "cache", progress=False, reference=False)
    r = profile_device("cpu:threads=1", pc)
    return tmp, r["path"]


def test_profile_fills_measured_peak_memory(table):
    _, path = table
    df = pd.read_parquet(path)
    assert len(df) == 3 and (df.peak_mem_source == "ort-cpu-arena-peak").all()
    assert (pd.to_numeric(df.peak_mem_bytes) > 0).all()


def test_memory_only_pass_refills_the_same_figures_without_retiming(table, tmp_path):
    tmp, path = table
    df = pd.read_parquet(path)
    wiped = df.assign(peak_mem_bytes=None, peak_mem_source="none")
    target = tmp_path / "cpu-t1.parquet"
    wiped.to_parquet(target, index=False)
    (tmp_path / "cpu-t1.meta.json").write_text((tmp / "t" / "mbv3-fmnist" / "cpu-t1.meta.json").read_text())
    r = fill_measured_memory(target, create_space("mbv3-fmnist"), cache_dir=tmp / "cache", progress=False)
    assert r["filled"] == 3 and r["missing"] == 0
    back = pd.read_parquet(target)
    assert back.peak_mem_bytes.astype("int64").tolist() == df.peak_mem_bytes.astype("int64").tolist()
    for col in ("latency_ms", "latency_norm_ms", "n", "samples_ms", "measured_at"):
        assert back[col].astype(str).tolist() == df[col].astype(str).tolist()
    assert read_sidecar(target)["memory_pass"]["rows"] == 3
    assert fill_measured_memory(target, create_space("mbv3-fmnist"), progress=False)["filled"] == 0  # resumable


def test_memory_pass_refuses_a_gpu_table(tmp_path):
    p = tmp_path / "cuda.parquet"
    pd.DataFrame({"block_key": ["a"], "kind": ["block"]}).to_parquet(p)
    (tmp_path / "cuda.meta.json").write_text('{"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}')
    with pytest.raises(TableError, match="CPU provider's memory only"):
        fill_measured_memory(p, create_space("mbv3-fmnist"), progress=False)


def test_validation_compares_measured_and_analytic_memory():
    keys = ["n1", "n2", "n3", "n4"]
    nets = pd.DataFrame({"block_key": keys * 2, "repeat": [0] * 4 + [1] * 4,
                         "param_bytes": [10] * 8, "activation_bytes": [100, 200, 300, 400] * 2,
                         "peak_mem_bytes": [110, 180, 330, 400, 110, 180, 330, 401],
                         "peak_mem_source": ["ort-cpu-arena-peak"] * 8})
    mem = memory_comparison(nets, keys)
    assert mem["repeats_disagree"] == 1 and mem["metrics"]["n"] == 4
    assert mem["metrics"]["ratio_median"] == pytest.approx(np.median([1.1, 0.9, 1.1, 1.0]))
    assert mem["per_network"].set_index("block_key").loc["n4", "peak_mem_bytes"] == 400  # pass 0 stands
    assert memory_comparison(nets.assign(peak_mem_bytes=None), keys) is None


def test_profile_memory_only_through_the_cli(table, tmp_path):
    import shutil

    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    tmp, path = table
    out = tmp_path / "t" / "mbv3-fmnist"
    out.mkdir(parents=True)
    pd.read_parquet(path).assign(peak_mem_bytes=None).to_parquet(out / "cpu-t1.parquet", index=False)
    shutil.copy(tmp / "t" / "mbv3-fmnist" / "cpu-t1.meta.json", out / "cpu-t1.meta.json")
    r = CliRunner().invoke(cli, ["profile", "--device", "cpu:threads=1", "--space", "mbv3-fmnist", "--memory-only",
                                 "--out-dir", str(tmp_path / "t"), "--cache-dir", str(tmp / "cache")])
    assert r.exit_code == 0 and "measured the memory of 3 row(s)" in r.output, r.output
    assert (pd.read_parquet(out / "cpu-t1.parquet").peak_mem_bytes > 0).all()
    r = CliRunner().invoke(cli, ["profile", "--device", "cpu:threads=2", "--space", "mbv3-fmnist", "--memory-only",
                                 "--out-dir", str(tmp_path / "t")])
    assert r.exit_code != 0 and "no table to fill" in (r.output + str(r.exception))

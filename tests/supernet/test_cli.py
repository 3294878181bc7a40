from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from hwnas.bench.engine.supernet import sample_subnets, summary
from hwnas.devices.table import read_sidecar
from hwnas.search.data import load_dataset
from hwnas.search.spaces import create_space
from hwnas.search.supernet import TrainConfig, train_supernet


def hwnas(*args):
    return subprocess.run([sys.executable, "-m", "hwnas.bench.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "sn.ckpt"
    sp = create_space("mbv3-fmnist")
    train_supernet(sp, load_dataset("digits", shape=sp.input_shape),
                   TrainConfig(epochs=1, batch_size=32, train_per_epoch=128, monitor_val=0, threads=1),
                   out=p, progress=False)
    return p


def test_sample_writes_the_table_and_resumes(tmp_path, ckpt):
    sp = create_space("mbv3-fmnist")
    out = tmp_path / "s.parquet"
    df = sample_subnets(sp, str(ckpt), str(out), n=5, data="digits", calib_images=64,
                        executor="serial", chunk=2, progress=False)
    assert {"arch_str", "val_acc", "params", "flops", "macs", "seed"} <= set(df.columns)
    assert len(df) == 5 and df["arch_str"].is_unique and (df["macs"] == df["flops"]).all()
    assert out.with_suffix(".csv").exists()
    meta = read_sidecar(out)
    assert meta["complete"] and meta["split"] == "val" and "multiply-accumulates" in meta["columns"]["macs"]
    # a rerun with more archs keeps the rows already measured and adds the rest
    marked = pd.read_parquet(out).assign(val_acc=-1.0)
    marked.to_parquet(out)
    df2 = sample_subnets(sp, str(ckpt), str(out), n=7, data="digits", calib_images=64,
                         executor="serial", progress=False)
    assert len(df2) == 7 and (df2["val_acc"] == -1.0).sum() == 5
    assert summary(df)["n"] == 5


def test_sample_space_mismatch_and_bad_arch_list(tmp_path, ckpt):
    with pytest.raises(ValueError, match="checkpoint is of space 'mbv3-fmnist', not 'nb201'"):
        sample_subnets(create_space("nb201"), str(ckpt), str(tmp_path / "x.parquet"), n=2)
    bad = tmp_path / "archs.txt"
    bad.write_text("k3e3-k3e3|k3e3-k3e3|k3e3-k3e3\nk9e9|k3e3|k3e3\n")
    with pytest.raises(ValueError, match="archs.txt line 2"):
        sample_subnets(create_space("mbv3-fmnist"), str(ckpt), str(tmp_path / "x.parquet"),
                       n=0, archs_file=str(bad))


def test_cli_errors_are_one_line(tmp_path):
    r = hwnas("sample", "--space", "mbv3-fmnist", "--supernet", str(tmp_path / "none.ckpt"),
              "--out", str(tmp_path / "o.parquet"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "hwnas supernet train" in r.stderr
    r = hwnas("supernet", "train", "--space", "mbv3-fmnist", "--data", f"fashion-mnist:{tmp_path}",
              "--out", str(tmp_path / "a.ckpt"))
    assert r.returncode == 2 and "apt-get install dataset-fashion-mnist" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.slow
def test_standalone_train_command(tmp_path):
    out = tmp_path / "r.json"
    r = hwnas("train", "--space", "mbv3-fmnist", "--arch", "k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "--data",
              "digits", "--epochs", "1", "--train-per-epoch", "128", "--threads", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "val_acc" in r.stdout and out.exists()


def test_predictors_vs_standalone_truth_wait_for_a_complete_set(tmp_path):
    from hwnas.devices.table import write_table

    ref = tmp_path / "standalone.parquet"
    write_table(pd.DataFrame({"arch_str": ["k3e1|k3e1|k3e1"], "seed": [0], "val_acc": [85.0]}), ref,
                meta={"complete": False})
    r = hwnas("standalone", "predictors", "--space", "mbv3-fmnist", "--out", str(ref), "--samples", str(ref),
              "--report-dir", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    assert "not complete" in r.stdout and not (tmp_path / "rep").exists()

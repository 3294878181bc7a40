from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hwnas.search.data import load_dataset
from hwnas.search.spaces import create_space
from hwnas.search.supernet import (
    SubnetEvaluator,
    TrainConfig,
    count_params_macs,
    recalibrate_bn,
    train_supernet,
)
from hwnas.search.supernet.executor import create_executor, list_executors
from torch import nn


def test_recalibration_gives_the_exact_statistics_of_the_calibration_set():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3))
    x = torch.randn(40, 1, 4, 4) * 3 + 1
    recalibrate_bn(model, model, x, batch_size=10, channels_last=False)
    feats = model[0](x).detach()
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not model.training


def test_macs_of_a_known_network():
    sp = create_space("mbv3-fmnist")
    arch = sp.from_str("k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    params, macs = count_params_macs(sp, arch)
    net = sp.build(arch)
    assert params == sum(p.numel() for p in net.parameters())
    stem = 16 * 1 * 9 * 14 * 14  # first layer by hand: 3x3 conv, 1 -> 16 channels, 14x14 out
    assert macs > stem
    _, macs_big = count_params_macs(sp, sp.from_str("k7e6-k7e6-k7e6|k7e6-k7e6-k7e6|k7e6-k7e6-k7e6"))
    assert macs_big > 2 * macs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ev") / "sn.ckpt"
    sp = create_space("mbv3-fmnist")
    data = load_dataset("digits", shape=sp.input_shape)
    train_supernet(sp, data, TrainConfig(epochs=2, batch_size=32, train_per_epoch=320, monitor_val=0,
                                         threads=1, warmup_steps=2), out=ck, progress=False)
    return sp, data, ck


@pytest.mark.slow
def test_serial_and_process_executors_agree(trained):
    sp, data, ck = trained
    archs = sp.sample_many(4, np.random.default_rng(0))
    with SubnetEvaluator(sp, ck, data=data, calib_images=64, executor="serial") as ev:
        a = ev(archs)
        assert np.array_equal(a, ev(archs))  # recalibration makes each score independent of order
    with SubnetEvaluator(sp, ck, data=data, calib_images=64, workers=2, executor="process") as ev:
        b = ev(archs[::-1])[::-1]
    assert a.shape == (4,) and ((a >= 0) & (a <= 100)).all()
    np.testing.assert_allclose(a, b)
    assert a.std() > 0  # different subnets, different accuracies


def test_unknown_executor_and_missing_checkpoint(tmp_path):
    assert {"serial", "process"} <= set(list_executors())
    with pytest.raises(LookupError, match="unknown executor 'dask'"):
        create_executor("dask")
    with pytest.raises(FileNotFoundError, match="hwnas supernet train"):
        SubnetEvaluator("mbv3-fmnist", tmp_path / "none.ckpt")


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without Ray
    with pytest.raises(RuntimeError, match=r"pip install 'hwnas\[dist\]'"):
        create_executor("ray", 1).start(print, ())


def test_a_store_shares_estimates_between_evaluators_and_charges_their_cost(trained, tmp_path, monkeypatch):
    from hwnas.search.supernet import evaluate

    sp, data, ck = trained
    archs = sp.sample_many(3, np.random.default_rng(1))
    with SubnetEvaluator(sp, ck, data=data, calib_images=64, executor="serial") as plain:
        want = plain(archs)
    with SubnetEvaluator(sp, ck, data=data, calib_images=64, executor="serial", store=tmp_path) as first:
        np.testing.assert_array_equal(first(archs[:2]), want[:2])
        assert first.remote_cpu_s_ == 0.0  # a serial evaluator's work is its own process's CPU
    assert len(first.store_) == 2

    made = first.store_.get([sp.to_str(a) for a in archs[:2]])
    real_eval = evaluate._worker_eval
    scored = []
    monkeypatch.setattr(evaluate, "_worker_eval", lambda task: (scored.extend(task[0]), real_eval(task))[1])
    with SubnetEvaluator(sp, ck, data=data, calib_images=64, executor="serial", store=tmp_path) as second:
        np.testing.assert_array_equal(second(archs), want)
        assert scored == [sp.to_str(archs[2])]  # only the arch the store lacked was scored
        assert second.remote_cpu_s_ == pytest.approx(sum(c for _, c in made.values()))
        assert all(c > 0 for _, c in made.values())
    with SubnetEvaluator(sp, ck, data=data, calib_images=32, executor="serial", store=tmp_path) as other:
        assert other.store_.key != second.store_.key and len(other.store_) == 0  # other settings, other estimates


def test_searches_that_share_a_store_pick_alike_and_are_charged_alike(trained, tmp_path):
    import sqlite3
    from contextlib import closing

    from hwnas.bench.engine import search as search_pipeline

    sp, _, ck = trained
    rows = [search_pipeline.run(sp.name, ["random"], f"supernet:{ck}", ["latency_ms<=0.9@cpu-t1"], (4,), 1,
                                tmp_path / out, data="digits", progress=False, estimate_store=tmp_path / "store")
            for out in ("first", "second")]
    first, second = (r.iloc[0] for r in rows)
    assert (first.arch_str, first.accuracy) == (second.arch_str, second.accuracy)
    (store,) = (tmp_path / "store").glob("*.sqlite")
    with closing(sqlite3.connect(store)) as con:  # every entry the two runs made or read
        n, cost = con.execute("SELECT COUNT(*), SUM(cpu_s) FROM estimate").fetchone()
    assert n == 4 and cost > 0  # the second search scored nothing itself ...
    assert second.search_cpu_s >= cost  # ... and was still charged what its four estimates cost


@pytest.mark.slow  # a CLI search over a process pool of torch workers (~90 s loaded)
def test_a_process_pool_search_on_a_supernet_exits(trained, tmp_path):
    """Each search worker scores subnets itself (a serial evaluator): a pool of evaluation
    workers inside a pool worker is never shut down, and a spawned worker joins its children
    before they are told to quit, so `hwnas search --executor process` on a supernet hung at exit
    with every run written (the chain board's search stage did)."""
    import subprocess
    import sys

    sp, _, ck = trained
    cmd = [sys.executable, "-m", "hwnas.bench.cli", "search", "--space", sp.name, "--method", "random",
           "--accuracy", f"supernet:{ck}", "--constraint", "latency_ms<=0.9@cpu-t1", "--budget", "3",
           "--seeds", "2", "--data", "digits", "--executor", "process", "--workers", "2", "--out", str(tmp_path / "o")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(pd.read_csv(tmp_path / "o" / "runs.csv")) == 2

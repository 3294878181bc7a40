from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from search.data import load_dataset
from search.spaces import create_space
from search.supernet import (
    SubnetEvaluator,
    TrainConfig,
    count_params_macs,
    recalibrate_bn,
    train_supernet,
)
from search.supernet.executor import create_executor, list_executors


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

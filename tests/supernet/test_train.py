from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hwnas.search.data import load_dataset
from hwnas.search.spaces import create_space
from hwnas.search.supernet import TrainConfig, load_checkpoint, train_supernet

REPO = Path(__file__).resolve().parents[2]
FAST = dict(batch_size=32, train_per_epoch=96, monitor_val=0, threads=1, warmup_steps=2)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", shape=(1, 28, 28))


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_and_resume_matches(tmp_path, digits):
    sp = create_space("mbv3-fmnist")
    full = train_supernet(sp, digits, TrainConfig(epochs=2, seed=1, **FAST), out=tmp_path / "a.ckpt", progress=False)
    again = train_supernet(sp, digits, TrainConfig(epochs=2, seed=1, **FAST), progress=False)
    assert _same_weights(full.model.state_dict(), again.model.state_dict())
    # 1 epoch, then resume to 2: identical to the uninterrupted run
    train_supernet(sp, digits, TrainConfig(epochs=1, seed=1, **FAST), out=tmp_path / "b.ckpt", progress=False)
    assert load_checkpoint(tmp_path / "b.ckpt")["epoch"] == 1
    resumed = train_supernet(sp, digits, TrainConfig(epochs=2, seed=1, **FAST), out=tmp_path / "b.ckpt",
                             resume=True, progress=False)
    assert len(resumed.history_) == 2
    assert _same_weights(full.model.state_dict(), resumed.model.state_dict())
    other = train_supernet(sp, digits, TrainConfig(epochs=1, seed=2, **FAST), progress=False)
    assert not _same_weights(full.model.state_dict(), other.model.state_dict())


def test_resume_with_other_options_is_refused(tmp_path, digits):
    sp = create_space("mbv3-fmnist")
    train_supernet(sp, digits, TrainConfig(epochs=1, seed=0, **FAST), out=tmp_path / "c.ckpt", progress=False)
    with pytest.raises(ValueError, match="cannot resume, it was trained with lr=0.1"):
        train_supernet(sp, digits, TrainConfig(epochs=2, seed=0, **{**FAST, "lr": 0.05}),
                       out=tmp_path / "c.ckpt", resume=True, progress=False)


def test_sandwich_rule_and_nb201_train(digits):
    sp = create_space("mbv3-fmnist")
    tr = train_supernet(sp, digits, TrainConfig(epochs=1, sampler="sandwich", sandwich_random=1, **FAST),
                        progress=False)
    assert tr.history_[0]["images"] == 96
    assert tr.history_[0]["cpu_seconds"] > 0  # what a board charges for training it
    nb = create_space("nb201", C=4, N=1)
    d3 = load_dataset("digits", shape=(3, 32, 32))
    tr = train_supernet(nb, d3, TrainConfig(epochs=1, **{**FAST, "monitor_val": 60}), progress=False)
    assert 0 <= tr.history_[0]["val_acc_largest"] <= 100


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "hwnas.bench.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # three CLI processes training a supernet (~100 s loaded); in-process resume: the test above
def test_resume_after_kill_9_gives_the_uninterrupted_weights(tmp_path):
    args = ["supernet", "train", "--space", "mbv3-fmnist", "--data", "digits", "--epochs", "3",
            "--batch-size", "32", "--train-per-epoch", "64", "--threads", "1", "--monitor-val", "0",
            "--seed", "5"]
    ref = _cli(*args, "--out", str(tmp_path / "ref.ckpt"))
    ck = tmp_path / "killed.ckpt"
    p = _cli(*args, "--out", str(ck))
    deadline = time.time() + 120
    while time.time() < deadline and not ck.exists():
        time.sleep(0.05)
    assert ck.exists(), "no checkpoint appeared"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert load_checkpoint(ck)["epoch"] < 3  # killed mid-run
    r = _cli(*args, "--out", str(ck), "--resume")
    assert r.wait(timeout=300) == 0, r.stderr.read()
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    a, b = load_checkpoint(ck), load_checkpoint(tmp_path / "ref.ckpt")
    assert a["epoch"] == b["epoch"] == 3
    assert _same_weights(a["model"], b["model"])

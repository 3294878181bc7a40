"""Issue 15: a checkpoint never runs code, and every damaged one is refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hwnas.search.spaces import create_space
from hwnas.search.supernet.checkpoint import (
    FORMAT,
    load_checkpoint,
    load_supernet,
    remove_stale_temps,
    save_checkpoint,
)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.ckpt"
    torch.save({"format": FORMAT, "space": "mbv3-fmnist", "epoch": Evil(marker), "model": {}}, p)
    return p, marker


def test_evil_checkpoint_runs_no_code_and_is_one_line(tmp_path):
    p, marker = evil_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="refused") as ei:
        load_checkpoint(p)
    assert not marker.exists()
    assert "\n" not in str(ei.value) and str(p) in str(ei.value)


def test_evil_checkpoint_through_the_cli_prints_one_line(tmp_path):
    p, marker = evil_checkpoint(tmp_path)
    r = subprocess.run([sys.executable, "-m", "hwnas.bench.cli", "sample", "--space", "mbv3-fmnist",
                        "--supernet", str(p), "--n", "2", "--data", "digits",
                        "--out", str(tmp_path / "s.parquet")], capture_output=True, text=True)
    assert r.returncode == 2 and not marker.exists()
    assert len(r.stderr.strip().splitlines()) == 1 and "refused" in r.stderr and str(p) in r.stderr


def test_round_trip_of_a_real_checkpoint_under_weights_only(tmp_path):
    sp = create_space("mbv3-fmnist")
    from hwnas.search.supernet.base import create_supernet

    net = create_supernet(sp)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    p = save_checkpoint(tmp_path / "ok.ckpt", {"space": sp.name, "epoch": 1, "model": net.state_dict(),
                                              "optimizer": opt.state_dict(), "history": [{"x": 1.0}],
                                              "train_config": {"seed": 0, "sampler": "uniform"}})
    net2, state = load_supernet(p, "mbv3-fmnist")
    assert state["epoch"] == 1 and state["history"] == [{"x": 1.0}]


def test_truncated_missing_keys_and_misfit_weights_are_one_line(tmp_path):
    sp = create_space("mbv3-fmnist")
    from hwnas.search.supernet.base import create_supernet

    good = save_checkpoint(tmp_path / "g.ckpt", {"space": sp.name, "epoch": 1,
                                                "model": create_supernet(sp).state_dict()})
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable checkpoint") as ei:
        load_checkpoint(cut)
    assert "\n" not in str(ei.value)
    noepoch = save_checkpoint(tmp_path / "ne.ckpt", {"space": sp.name, "model": {}})
    with pytest.raises(ValueError, match=r"damaged hwnas checkpoint \(no epoch\)"):
        load_checkpoint(noepoch)
    misfit = save_checkpoint(tmp_path / "mf.ckpt", {"space": sp.name, "epoch": 1,
                                                   "model": {"stem.weight": torch.zeros(3)}})
    with pytest.raises(ValueError, match="weights do not fit") as ei:
        load_supernet(misfit, "mbv3-fmnist")
    assert "\n" not in str(ei.value)


def test_truncated_checkpoint_as_accuracy_source_is_one_line(tmp_path):
    """Was: two tracebacks and BrokenProcessPool from the process pool's workers."""
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    from hwnas.search.supernet import SubnetEvaluator

    with pytest.raises(ValueError, match="cut.ckpt: not a readable checkpoint"):
        SubnetEvaluator("mbv3-fmnist", cut, data="digits")


def test_a_crashed_write_leaves_no_hidden_temp_file_behind(tmp_path):
    p = tmp_path / "sn.ckpt"
    (tmp_path / ".sn.ckpt.abcd1234").write_bytes(b"half")  # what kill -9 mid-write leaves
    (tmp_path / ".sn.ckpt.lock").write_text("")
    save_checkpoint(p, {"space": "mbv3-fmnist", "epoch": 0, "model": {}})
    assert sorted(f.name for f in tmp_path.iterdir()) == [".sn.ckpt.lock", "sn.ckpt"]
    assert remove_stale_temps(p) == []

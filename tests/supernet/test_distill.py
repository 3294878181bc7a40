"""In-place distillation (BigNAS) in sandwich supernet training."""

from __future__ import annotations

import pytest
import torch
from hwnas.search.data import load_dataset
from hwnas.search.spaces import create_space
from hwnas.search.supernet import TrainConfig, train_supernet

FAST = dict(batch_size=32, train_per_epoch=64, monitor_val=0, threads=1, warmup_steps=1, epochs=1)


def test_distill_needs_the_sandwich_sampler():
    with pytest.raises(ValueError, match="sandwich"):
        TrainConfig(distill=True, sampler="uniform").validate()


def test_distillation_changes_the_small_paths_updates_and_is_deterministic():
    sp = create_space("mbv3-fmnist")
    data = load_dataset("digits", shape=(1, 28, 28))
    runs = [train_supernet(sp, data, TrainConfig(sampler="sandwich", distill=d, seed=3, **FAST), progress=False)
            for d in (True, True, False)]
    w = [r.model.state_dict() for r in runs]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])  # same seed, same weights
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])  # the soft targets reached the weights

"""Configuration dataclasses of the search layer, in a module that imports no torch: the `hwnas`
command reads its option defaults from them (bench/commands/options.py) without paying for
torch at start-up. The code that uses them (search/supernet/train.py) imports them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLERS = ("uniform", "sandwich", "fixed")


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_steps: int = 50
    #: uniform: one uniformly sampled subnet per batch; sandwich: largest + smallest +
    #: `sandwich_random` random ones per batch, gradients accumulated (BigNAS); fixed: one arch
    sampler: str = "uniform"
    sandwich_random: int = 2
    #: in-place distillation (BigNAS/OFA): with the sandwich sampler, every path but the largest
    #: learns the largest path's soft predictions of the same batch instead of the labels
    distill: bool = False
    #: images drawn per epoch from the training split (None = all): short budgets on big sets
    train_per_epoch: int | None = None
    seed: int = 0
    threads: int = 2
    channels_last: bool = True
    #: per-epoch check: largest and smallest subnet, BN recalibrated, on this many val images
    monitor_val: int = 1000
    #: gradient-norm clip of each update (the gradients of all the step's paths summed)
    clip_norm: float = 5.0

    def validate(self) -> TrainConfig:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; expected one of {', '.join(SAMPLERS)}")
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.distill and self.sampler != "sandwich":
            raise ValueError("--distill needs --sampler sandwich (the largest path is the teacher)")
        return self

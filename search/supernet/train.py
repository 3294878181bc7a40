"""Training loop shared by supernets (a sampled path per step) and stand-alone subnets.

Determinism on CPU: each epoch draws its shuffle, its paths and torch's dropout randomness from
(seed, epoch) alone and the learning rate is a function of the global step, so a run resumed from
the checkpoint of epoch e reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hwnas.core.log import bars_off
from hwnas.search.config import SAMPLERS, TrainConfig  # noqa: F401  (SAMPLERS: part of this module's API)
from hwnas.search.data import Dataset, batches
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

# options that change the trained weights: a resumed run must match them
_RESUME_KEYS = ("batch_size", "lr", "momentum", "weight_decay", "label_smoothing", "warmup_steps",
                "sampler", "sandwich_random", "distill", "train_per_epoch", "seed", "clip_norm")
_DEFAULTS = {"clip_norm": 5.0}


@dataclass
class Trainer:
    """Trains `model(x, arch)`; `archs_fn(rng)` gives the paths of one step.

    `fit` returns self; `history_` holds one dict per finished epoch.
    """

    model: nn.Module
    config: TrainConfig
    archs_fn: object = None
    checkpoint: str | None = None
    meta: dict = field(default_factory=dict)
    progress: bool = True

    def _lr(self, step: int, total: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        t = (step - c.warmup_steps) / max(1, total - c.warmup_steps)
        return 0.5 * c.lr * (1 + math.cos(math.pi * min(1.0, t)))

    def _optimizer(self):
        c = self.config
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 or "transform_" in n else decay).append(p)
        return torch.optim.SGD([{"params": decay, "weight_decay": c.weight_decay},
                                {"params": no_decay, "weight_decay": 0.0}],
                               lr=c.lr, momentum=c.momentum, nesterov=True)

    def fit(self, data: Dataset, resume: bool = False, monitor=None) -> Trainer:
        from tqdm.auto import tqdm

        c = self.config.validate()
        torch.set_num_threads(c.threads)
        if c.channels_last:
            self.model.to(memory_format=torch.channels_last)
        opt = self._optimizer()
        self.history_: list[dict] = []
        start = 0
        if resume and self.checkpoint and Path(self.checkpoint).exists():
            state = load_checkpoint(self.checkpoint)
            old = state.get("train_config", {})
            # keys added later (clip_norm) read as their default in older checkpoints
            diff = [k for k in _RESUME_KEYS if old.get(k, _DEFAULTS.get(k)) != getattr(c, k)]
            if diff:
                k = diff[0]
                raise ValueError(
                    f"{self.checkpoint}: cannot resume, it was trained with {k}={old.get(k)!r} "
                    f"but this run has {k}={getattr(c, k)!r}; use the same options or another --out"
                )
            self.model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start = int(state["epoch"])
            self.history_ = list(state.get("history", []))
        n_train = len(data.train) if c.train_per_epoch is None else min(c.train_per_epoch, len(data.train))
        steps_per_epoch = max(1, n_train // c.batch_size)
        total = steps_per_epoch * c.epochs
        self.model.train()
        for epoch in range(start, c.epochs):
            rng = np.random.default_rng([c.seed, epoch])
            torch.manual_seed(c.seed * 1_000_003 + epoch)
            t0, c0 = time.perf_counter(), time.process_time()
            seen, loss_sum, correct = 0, 0.0, 0
            it = batches(data.train, c.batch_size, rng=rng, limit=steps_per_epoch * c.batch_size,
                         drop_last=True)
            bar = tqdm(it, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{c.epochs}",
                       disable=bars_off() or not self.progress, leave=False, mininterval=1.0)
            self.model.train()
            for i, (x, y) in enumerate(bar):
                step = epoch * steps_per_epoch + i
                for g in opt.param_groups:
                    g["lr"] = self._lr(step, total)
                if c.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                archs = self.archs_fn(rng) if self.archs_fn is not None else [None]
                opt.zero_grad(set_to_none=True)
                teacher = None
                for j, arch in enumerate(archs):
                    out = self.model(x, arch)
                    if teacher is None:
                        loss = F.cross_entropy(out, y, label_smoothing=c.label_smoothing)
                    else:
                        loss = F.kl_div(F.log_softmax(out, 1), teacher, reduction="batchmean")
                    if c.distill and j == 0:
                        teacher = F.softmax(out.detach(), 1)
                    loss.backward()
                    if j == len(archs) - 1:  # statistics of the last path of the step
                        loss_sum += float(loss.detach()) * len(y)
                        correct += int((out.argmax(1) == y).sum())
                nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_norm)
                opt.step()
                seen += len(y)
                if i % 20 == 0:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
            bar.close()
            rec = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen),
                   "train_acc_last_path": 100 * correct / max(1, seen), "images": seen,
                   "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                   "images_per_s": seen / max(1e-9, time.perf_counter() - t0)}
            if monitor is not None:
                rec.update(monitor(self.model))
                self.model.train()
            self.history_.append(rec)
            if self.progress:
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
            if self.checkpoint:
                save_checkpoint(self.checkpoint, {
                    **self.meta, "epoch": epoch + 1, "model": self.model.state_dict(),
                    "optimizer": opt.state_dict(), "train_config": asdict(c), "history": self.history_,
                })
        self.model.eval()
        return self


def arch_sampler(supernet, config: TrainConfig, fixed=None):
    """The per-step path function for `Trainer` (uniform, sandwich or one fixed arch)."""
    if config.sampler == "fixed":
        arch = supernet.space.validate(fixed)
        return lambda rng: [arch]
    if config.sampler == "sandwich":
        big, small = supernet.largest(), supernet.smallest()
        return lambda rng: [big, small] + [supernet.sample(rng) for _ in range(config.sandwich_random)]
    return lambda rng: [supernet.sample(rng)]


def train_supernet(space, data: Dataset, config: TrainConfig, out: str | None = None,
                   resume: bool = False, supernet_config: dict | None = None, progress: bool = True):
    """Build, train and checkpoint the supernet of `space` on `data` (train split only)."""
    from .base import create_supernet
    from .evaluate import make_monitor

    torch.manual_seed(config.seed)
    net = create_supernet(space, **(supernet_config or {}))
    meta = {"space": net.space.name, "supernet_config": net.config(), "data": data.describe()}
    monitor = make_monitor(net, data, config.monitor_val) if config.monitor_val else None
    trainer = Trainer(net, config, arch_sampler(net, config), checkpoint=out, meta=meta, progress=progress)
    return trainer.fit(data, resume=resume, monitor=monitor)


class _Static(nn.Module):
    """A stand-alone network behind the supernet's `forward(x, arch)` signature."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, arch=None):
        return self.net(x)


def train_standalone(space, arch, data: Dataset, config: TrainConfig, progress: bool = True,
                     test: bool = False) -> dict:
    """Train `space.build(arch)` from scratch; returns val accuracy (%), with `test` also the
    test split's (final reporting only: no method ever reads it), and the history."""
    from .evaluate import accuracy

    torch.manual_seed(config.seed)
    model = _Static(space.build(space.validate(arch)))
    tr = Trainer(model, config, None, progress=progress).fit(data)
    with torch.no_grad():
        val_acc = accuracy(lambda x: model(x), data.val, channels_last=config.channels_last)
        test_acc = accuracy(lambda x: model(x), data.test, channels_last=config.channels_last) if test else None
    return {"arch_str": space.to_str(arch), "val_acc": val_acc, "test_acc": test_acc,
            "history": tr.history_, "model": model.net}


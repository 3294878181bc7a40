"""Subnet accuracy from a trained supernet, with BatchNorm recalibrated per subnet.

Shared BN statistics are a mixture over all paths seen in training, so each subnet's running
mean/var are re-estimated (cumulative average) on a fixed set of training images before it is
scored on the validation split (OFA's `set_running_statistics`). Many subnets are scored in
parallel by an executor (`search.supernet.executor`); each worker holds its own supernet copy.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from hwnas.core.log import bars_off
from hwnas.search.data import Dataset, Split, batches, load_dataset
from torch import nn

from .dynamic import DynamicBatchNorm2d
from .executor import Executor, SerialExecutor, create_executor

_BN = (nn.BatchNorm2d, DynamicBatchNorm2d)


@torch.no_grad()
def recalibrate_bn(forward, model: nn.Module, x_calib: torch.Tensor, batch_size: int = 256,
                   channels_last: bool = True) -> None:
    """Reset every BN's running stats and re-estimate them on `x_calib` (training images)."""
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for i in range(0, len(x_calib), batch_size):
            xb = x_calib[i:i + batch_size]
            forward(xb.contiguous(memory_format=torch.channels_last) if channels_last else xb)
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.eval()


@torch.no_grad()
def accuracy(forward, split: Split, batch_size: int = 500, channels_last: bool = True) -> float:
    """Top-1 accuracy in percent of `forward` (eval mode) on `split`."""
    correct = 0
    for x, y in batches(split, batch_size):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        correct += int((forward(x).argmax(1) == y).sum())
    return 100.0 * correct / max(1, len(split))


def calibration_images(data: Dataset, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(data.train.subset(n, seed=seed + 7919).x))


def make_monitor(net, data: Dataset, n_val: int, n_calib: int = 256):
    """Per-epoch check during training: largest and smallest subnet on `n_val` val images."""
    val = data.val.subset(n_val, seed=0)
    x_cal = calibration_images(data, n_calib, 0)

    def monitor(model) -> dict:
        out = {}
        for tag, arch in (("largest", net.largest()), ("smallest", net.smallest())):
            recalibrate_bn(lambda x, a=arch: model(x, a), model, x_cal)
            out[f"val_acc_{tag}"] = accuracy(lambda x, a=arch: model(x, a), val)
        return out

    return monitor


def count_params_macs(space, arch) -> tuple[int, int]:
    """(parameters, multiply-accumulates of one 1-image forward) of `space.build(arch)`.

    MACs count conv and linear layers (BN, activations, pooling and SE's elementwise products are
    not multiply-accumulates of weights and are left out, as in OFA/thop).
    """
    net = space.build(arch).eval()
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            macs += out.numel() // out.shape[0] * k
        elif isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        net(torch.zeros(1, *space.input_shape))
    for h in handles:
        h.remove()
    return sum(p.numel() for p in net.parameters()), int(macs)


# ---- worker side (module globals: one supernet per process) -------------------------------
_W: dict = {}


def _worker_init(checkpoint: str, space_name: str, x_calib: np.ndarray, val_x: np.ndarray,
                 val_y: np.ndarray, batch_size: int, threads: int | None) -> None:
    from .checkpoint import load_supernet

    if threads:
        torch.set_num_threads(threads)
    net, _ = load_supernet(checkpoint, space_name)
    net.to(memory_format=torch.channels_last).eval()
    _W.update(net=net, x_calib=torch.from_numpy(x_calib), val=Split(val_x, val_y), batch_size=batch_size)


def _worker_eval(task: tuple[list[str], bool]) -> tuple[list[tuple[float, int | None, int | None]], float]:
    """The chunk's (val_acc, params, macs) and the CPU seconds the worker spent on it."""
    arch_strs, with_cost = task
    c0 = time.process_time()
    net = _W["net"]
    out = []
    for s in arch_strs:
        arch = net.space.from_str(s)

        def fwd(x, a=arch):
            return net(x, a)

        recalibrate_bn(fwd, net, _W["x_calib"])
        acc = accuracy(fwd, _W["val"], _W["batch_size"])
        params, macs = count_params_macs(net.space, arch) if with_cost else (None, None)
        out.append((acc, params, macs))
    return out, time.process_time() - c0


class SubnetEvaluator:
    """Validation accuracy (%) of many subnets of one trained supernet.

    `SubnetEvaluator(space, checkpoint, data="fashion-mnist")(archs) -> np.ndarray`. Every subnet
    gets the same `calib_images` training images for BN recalibration and the same
    `val_images` validation images (all of the val split when None), so differences between
    subnets are paired. Workers start on first use and stay up until `close()`.

    `store` (a folder) shares accuracy-only estimates between evaluators and processes that
    score the same checkpoint the same way (search/supernet/estimate_store.py); an estimate read
    from it is charged the CPU seconds it cost when made (`remote_cpu_s_`).
    """

    def __init__(self, space, checkpoint_path, data: str | Dataset = "fashion-mnist",
                 calib_images: int = 512, val_images: int | None = None, batch_size: int = 500,
                 workers: int | None = None, executor: str | Executor = "process", seed: int = 0,
                 progress: bool = False, store: str | Path | None = None):
        from hwnas.search.spaces import create_space

        self.space = create_space(space)
        self.checkpoint_path = str(checkpoint_path)
        if not Path(self.checkpoint_path).exists():
            raise FileNotFoundError(f"{self.checkpoint_path}: no such checkpoint; train one with `hwnas supernet train`")
        from .checkpoint import load_supernet

        load_supernet(self.checkpoint_path, self.space.name)  # one-line error here, not in every worker
        self.data = data
        self.calib_images, self.val_images = calib_images, val_images
        self.batch_size, self.workers, self.seed = batch_size, workers, seed
        self.executor = executor
        self.progress = progress
        self._ex: Executor | None = None
        # CPU seconds of worker processes, and of estimates read from the store (search cost accounting)
        self.remote_cpu_s_ = 0.0
        self.store_ = None
        if store is not None:
            from .estimate_store import EstimateStore, evaluation_key

            self.store_ = EstimateStore(store, evaluation_key(
                self.checkpoint_path, space=self.space.describe(), data=data if isinstance(data, str) else data.describe(),
                calib_images=calib_images, val_images=val_images, seed=seed))

    def _start(self) -> Executor:
        if self._ex is not None:
            return self._ex
        data = self.data
        if isinstance(data, str):
            data = load_dataset(data, shape=self.space.input_shape, seed=self.seed)
        if tuple(data.input_shape) != tuple(self.space.input_shape):
            raise ValueError(f"data shape {data.input_shape} does not fit space {self.space.name} input {self.space.input_shape}")
        val = data.val.subset(self.val_images, seed=self.seed)
        x_cal = calibration_images(data, self.calib_images, self.seed).numpy()
        self.n_val_ = len(val)
        ex = self.executor if isinstance(self.executor, Executor) else create_executor(self.executor, self.workers)
        if ex.workers == 1 and not isinstance(self.executor, Executor):
            ex = create_executor("serial")
        self._ex = ex.start(_worker_init, (self.checkpoint_path, self.space.name, x_cal, val.x, val.y,
                                           self.batch_size))
        return self._ex

    def evaluate(self, archs: list, with_cost: bool = False, chunk: int | None = None):
        """List of (val_acc %, params, macs) per arch; params/macs None unless `with_cost`.

        With a store, accuracy-only estimates it holds are read from it (and charged the CPU
        they cost when made); the rest are scored and stored chunk by chunk, so a killed run
        keeps what it scored."""
        from tqdm.auto import tqdm

        strs = [self.space.to_str(a) if not isinstance(a, str) else self.space.to_str(self.space.from_str(a))
                for a in archs]
        todo = list(dict.fromkeys(strs))
        store = self.store_ if not with_cost else None
        done: dict[str, tuple] = {}
        if store is not None:
            stored = store.get(todo)
            self.remote_cpu_s_ += sum(cpu for _, cpu in stored.values())
            done = {s: (acc, None, None) for s, (acc, _) in stored.items()}
            todo = [s for s in todo if s not in done]
        if todo:
            ex = self._start()
            chunk = chunk or max(1, min(8, -(-len(todo) // (4 * ex.workers))))
            tasks = [(todo[i:i + chunk], with_cost) for i in range(0, len(todo), chunk)]
            with tqdm(total=len(todo), desc="subnets", disable=bars_off() or not self.progress, mininterval=1.0) as bar:
                for task, (res, cpu) in zip(tasks, ex.map(_worker_eval, tasks), strict=True):
                    self._count(ex, cpu)
                    done.update(zip(task[0], res, strict=True))
                    if store is not None:
                        store.put({s: (r[0], cpu / len(res)) for s, r in zip(task[0], res, strict=True)})
                    bar.update(len(res))
        return [done[s] for s in strs]

    def _count(self, ex: Executor, cpu: float) -> None:
        """Worker CPU seconds, where workers are other processes (a serial executor's work is
        this process's own CPU time already)."""
        if not isinstance(ex, SerialExecutor):
            self.remote_cpu_s_ += cpu

    def iter_chunks(self, archs: list, with_cost: bool = True, chunk: int = 8):
        """Yield (arch_strs, results) chunk by chunk, in order (for resumable writers)."""
        if not archs:
            return
        ex = self._start()
        strs = [self.space.to_str(a) if not isinstance(a, str) else a for a in archs]
        tasks = [(strs[i:i + chunk], with_cost) for i in range(0, len(strs), chunk)]
        for task, (res, cpu) in zip(tasks, ex.map(_worker_eval, tasks), strict=True):
            self._count(ex, cpu)
            yield task[0], res

    def __call__(self, archs: list) -> np.ndarray:
        return np.array([r[0] for r in self.evaluate(archs)], dtype=np.float64)

    def close(self) -> None:
        if self._ex is not None:
            self._ex.close()
            self._ex = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

"""Weight-sharing layers (Once-for-All style): the largest weights are stored once and each
subnet uses a slice: the first `c` channels, the centre `k x k` of the largest kernel.

The layers take their active size from the input (channels in) and from arguments (channels out,
kernel), so a supernet forward needs no global state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DynamicBatchNorm2d(nn.Module):
    """BatchNorm over the first `C` channels of the largest one.

    `momentum=None` gives a cumulative average over batches since the last `reset_running_stats`
    (what BN recalibration of a subnet needs; see `search.supernet.evaluate`).
    """

    def __init__(self, max_channels: int, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        self.max_channels, self.eps, self.momentum = max_channels, eps, momentum
        self.weight = nn.Parameter(torch.ones(max_channels))
        self.bias = nn.Parameter(torch.zeros(max_channels))
        self.register_buffer("running_mean", torch.zeros(max_channels))
        self.register_buffer("running_var", torch.ones(max_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x):
        c = x.shape[1]
        factor = 0.0
        if self.training:
            self.num_batches_tracked += 1
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                            self.bias[:c], self.training, factor, self.eps)


class DynamicPointwise(nn.Module):
    """1x1 convolution [out_max, in_max]; uses [:out, :x.shape[1]]."""

    def __init__(self, in_max: int, out_max: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_max, in_max, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_max)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x, out_channels: int):
        w = self.weight[:out_channels, : x.shape[1]]
        b = self.bias[:out_channels] if self.bias is not None else None
        return F.conv2d(x, w, b)


class DynamicDepthwise(nn.Module):
    """Depthwise kxk convolution sharing the largest kernel: a smaller kernel is its centre crop,
    optionally passed through OFA's learned kernel transform (a (k*k)x(k*k) matrix per size,
    initialised to the identity, applied to the crop of the next larger transformed kernel)."""

    def __init__(self, max_channels: int, kernels: tuple[int, ...], stride: int,
                 kernel_transform: bool = False):
        super().__init__()
        self.kernels = tuple(sorted(set(kernels), reverse=True))
        self.max_kernel = self.kernels[0]
        self.stride = stride
        self.kernel_transform = kernel_transform
        self.weight = nn.Parameter(torch.empty(max_channels, 1, self.max_kernel, self.max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        if kernel_transform:
            for k in self.kernels[1:]:
                self.register_parameter(f"transform_{k}", nn.Parameter(torch.eye(k * k)))

    def kernel(self, channels: int, k: int) -> torch.Tensor:
        w = self.weight[:channels]
        size = self.max_kernel
        for kk in self.kernels[1:]:
            if size == k:
                break
            lo = (size - kk) // 2
            w = w[:, :, lo:lo + kk, lo:lo + kk]
            if self.kernel_transform:
                m = getattr(self, f"transform_{kk}")
                w = (w.reshape(-1, kk * kk) @ m).reshape(channels, 1, kk, kk)
            size = kk
        if size != k:
            raise ValueError(f"kernel {k} not in this layer's choices {self.kernels}")
        return w

    def forward(self, x, k: int):
        c = x.shape[1]
        return F.conv2d(x, self.kernel(c, k), None, self.stride, k // 2, 1, c)


class DynamicSqueezeExcite(nn.Module):
    """SE with channel-sliced reduce/expand convs; reduced width follows `SqueezeExcite`."""

    def __init__(self, max_channels: int, reduction: int = 4):
        super().__init__()
        from hwnas.search.spaces.mbconv import make_divisible

        self.reduction = reduction
        self.reduce = DynamicPointwise(max_channels, make_divisible(max_channels // reduction), bias=True)
        self.expand = DynamicPointwise(make_divisible(max_channels // reduction), max_channels, bias=True)

    def mid(self, channels: int) -> int:
        from hwnas.search.spaces.mbconv import make_divisible

        return make_divisible(channels // self.reduction)

    def forward(self, x):
        c = x.shape[1]
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(self.reduce(s, self.mid(c)))
        return x * F.hardsigmoid(self.expand(s, c))


def act_fn(name: str):
    if name == "relu":
        return F.relu
    if name == "hswish":
        return F.hardswish
    raise ValueError(f"unknown activation {name!r}; expected 'relu' or 'hswish'")

"""Once-for-All style supernet of the `mbv3-*` chain spaces.

Kernel: centre crop of the largest kernel (optionally OFA's learned kernel transform).
Expansion: the first `mid` channels of the largest expansion's 1x1 / depthwise / SE / project
weights; expansion 1 has no 1x1 expand (as in the static MBConv) and runs the first `c_in`
channels of the shared depthwise / SE / project weights. Depth: a stage of depth d runs its first d blocks and skips the trailing ones.
Stem and head are fixed in these spaces, so they are ordinary layers.
"""

from __future__ import annotations

from hwnas.search.spaces.mbconv import make_divisible
from hwnas.search.spaces.mbv3 import parse_choice
from torch import nn

from .base import Supernet, copy_into, register_supernet
from .dynamic import (
    DynamicBatchNorm2d,
    DynamicDepthwise,
    DynamicPointwise,
    DynamicSqueezeExcite,
    act_fn,
)


class DynamicMBConv(nn.Module):
    """All (kernel, expansion) choices of one block position, sharing weights."""

    def __init__(self, c_in: int, c_out: int, stride: int, se: bool, act: str,
                 kernels: tuple[int, ...], expansions: tuple[float, ...], kernel_transform: bool):
        super().__init__()
        if min(expansions) < 1:
            raise ValueError(f"DynamicMBConv needs expansions >= 1, got {min(expansions)}")
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        mid_max = max(self.mid(e) for e in expansions)
        self.expand_conv = DynamicPointwise(c_in, mid_max)
        self.expand_bn = DynamicBatchNorm2d(mid_max)
        self.depthwise = DynamicDepthwise(mid_max, kernels, stride, kernel_transform)
        self.depthwise_bn = DynamicBatchNorm2d(mid_max)
        self.se = DynamicSqueezeExcite(mid_max) if se else None
        self.project_conv = DynamicPointwise(mid_max, c_out)
        self.project_bn = DynamicBatchNorm2d(c_out)
        self.act = act_fn(act)
        self.residual = stride == 1 and c_in == c_out

    def mid(self, expand: float) -> int:
        if expand == 1:  # as in search.spaces.mbconv.MBConv
            return self.c_in
        return make_divisible(round(self.c_in * expand))

    def forward(self, x, kernel: int, expand: float):
        mid = self.mid(expand)
        y = x if expand == 1 else self.act(self.expand_bn(self.expand_conv(x, mid)))
        y = self.act(self.depthwise_bn(self.depthwise(y, kernel)))
        if self.se is not None:
            y = self.se(y)
        y = self.project_bn(self.project_conv(y, self.c_out))
        return x + y if self.residual else y

    def copy_to(self, block, kernel: int, expand: float) -> None:
        """Write this position's weights for (kernel, expand) into a static `MBConv`."""
        mid = self.mid(expand)
        if expand != 1:
            copy_into(block.expand[0].weight, self.expand_conv.weight[:mid, : self.c_in])
            _copy_bn(block.expand[1], self.expand_bn, mid)
        copy_into(block.depthwise[0].weight, self.depthwise.kernel(mid, kernel))
        _copy_bn(block.depthwise[1], self.depthwise_bn, mid)
        if self.se is not None:
            r = self.se.mid(mid)
            copy_into(block.se.reduce.weight, self.se.reduce.weight[:r, :mid])
            copy_into(block.se.reduce.bias, self.se.reduce.bias[:r])
            copy_into(block.se.expand.weight, self.se.expand.weight[:mid, :r])
            copy_into(block.se.expand.bias, self.se.expand.bias[:mid])
        copy_into(block.project[0].weight, self.project_conv.weight[: self.c_out, :mid])
        _copy_bn(block.project[1], self.project_bn, self.c_out)


def _copy_bn(dst: nn.BatchNorm2d, src: DynamicBatchNorm2d, c: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        copy_into(getattr(dst, name), getattr(src, name)[:c])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


class MBV3Supernet(Supernet):
    def __init__(self, space, kernel_transform: bool = False):
        super().__init__()
        self.space = space
        self.kernel_transform = kernel_transform
        stem_spec, head_spec = space.fixed_blocks()
        self.stem = space.build_block(stem_spec)
        self.head = space.build_block(head_spec)
        # (kernel, expansion) of every choice index, per stage
        self._choices = [[parse_choice(c) for c in st.choices] for st in space.stages]
        stages = []
        for s, st in enumerate(space.stages):
            kernels = tuple(sorted({k for k, _ in self._choices[s]}))
            expansions = tuple(sorted({e for _, e in self._choices[s]}))
            c_in = space.stage_io()[s][0]
            stages.append(nn.ModuleList(
                DynamicMBConv(c_in if b == 0 else st.width, st.width, st.stride if b == 0 else 1,
                              st.se, st.act, kernels, expansions, kernel_transform)
                for b in range(st.max_depth)
            ))
        self.stages = nn.ModuleList(stages)

    def config(self) -> dict:
        return {"kernel_transform": self.kernel_transform}

    def _size(self, s: int, c: int) -> tuple[int, int]:
        k, e = self._choices[s][c]
        return k * k * e, e

    def largest(self):
        return tuple(
            (max(range(len(st.choices)), key=lambda c, s=s: self._choices[s][c]),) * st.max_depth
            for s, st in enumerate(self.space.stages)
        )

    def smallest(self):
        return tuple(
            (min(range(len(st.choices)), key=lambda c, s=s: self._choices[s][c]),) * st.min_depth
            for s, st in enumerate(self.space.stages)
        )

    def forward(self, x, arch=None):
        arch = self.largest() if arch is None else arch
        x = self.stem(x)
        for s, blocks in enumerate(arch):
            for b, c in enumerate(blocks):
                k, e = self._choices[s][c]
                x = self.stages[s][b](x, k, e)
        return self.head(x)

    def extract(self, arch) -> nn.Module:
        arch = self.space.validate(arch)
        net = self.space.build(arch)
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        i = 0
        for s, blocks in enumerate(arch):
            for b, c in enumerate(blocks):
                k, e = self._choices[s][c]
                self.stages[s][b].copy_to(net.blocks[i], k, e)
                i += 1
        return net


@register_supernet("mbv3-*")
def mbv3_supernet(space, kernel_transform: bool = False, **_) -> MBV3Supernet:
    return MBV3Supernet(space, kernel_transform=kernel_transform)

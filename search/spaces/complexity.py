"""MACs, parameters and activation sizes of a space's blocks, counted on the built module.

Cost predictors that see only which block sits where must learn each block's cost from samples;
telling them how much work each block does (multiply-accumulates, bytes moved) lets 100 samples
go further. Counting on the module that `build_block` returns, with forward hooks on every conv
and linear layer, keeps the figures true to what is profiled and needs no per-space formula.
Each block key is counted once per process.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import BlockSpec

COUNTED = ("macs", "params", "activations", "layers")


@dataclass(frozen=True)
class BlockComplexity:
    """Batch-1 figures of one block; `activations` counts conv/linear output elements."""

    macs: int
    params: int
    activations: int
    layers: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.macs, self.params, self.activations, self.layers


_CACHE: dict[tuple[str, str], BlockComplexity] = {}


def block_complexity(space, spec: BlockSpec) -> BlockComplexity:
    key = (space.name, spec.key)
    if key not in _CACHE:
        _CACHE[key] = _count(space, spec)
    return _CACHE[key]


def _count(space, spec: BlockSpec) -> BlockComplexity:
    import torch

    module = space.build_block(spec).eval()
    totals = {"macs": 0, "activations": 0, "layers": 0}

    def hook(mod, inputs, output):
        out = output.numel()
        if isinstance(mod, torch.nn.Conv2d):
            kh, kw = mod.kernel_size
            totals["macs"] += out * (mod.in_channels // mod.groups) * kh * kw
        else:
            totals["macs"] += out * mod.in_features
        totals["activations"] += out
        totals["layers"] += 1

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    try:
        with torch.no_grad():
            module(torch.zeros((1, *spec.input_shape)))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in module.parameters())
    return BlockComplexity(totals["macs"], int(params), totals["activations"], totals["layers"])

"""The fixed reference network for drift compensation.

Small, deterministic and defined here in code (weights from a fixed seed, so every machine and
every run times the same graph). Blocks and whole networks are timed in rounds interleaved with
it; the per-round ratio cancels the shared machine's speed drift (see DESIGN.md).
Its cost is close to a typical mobile block (a few hundred microseconds on one CPU core), so
both see the same cache and frequency state.
"""

from __future__ import annotations

import hashlib

REFERENCE_INPUT = (1, 16, 16, 16)
REFERENCE_NAME = "ref-mbconv-v1"


def reference_module():
    """Conv-BN-ReLU, depthwise 3x3, pointwise projection, pooled linear: an MBConv-like net."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20240601)
        net = nn.Sequential(
            nn.Conv2d(16, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 32, 1, bias=False), nn.BatchNorm2d(32),
            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
        )
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


_CACHE: dict[int, bytes] = {}


def reference_onnx(batch: int = 1) -> bytes:
    """ONNX bytes of the reference network at `batch` (memoised in-process)."""
    if batch not in _CACHE:
        from .export import export_onnx

        _CACHE[batch] = export_onnx(reference_module(), (batch, *REFERENCE_INPUT[1:]))
    return _CACHE[batch]


def reference_input(batch: int = 1) -> tuple[int, ...]:
    return (batch, *REFERENCE_INPUT[1:])


def reference_digest(batch: int = 1) -> str:
    """sha256 of the reference's ONNX bytes: recorded in sidecars, so tables are comparable."""
    return hashlib.sha256(reference_onnx(batch)).hexdigest()[:16]

"""torch module -> ONNX bytes, cached on disk by block key.

Every block of a space is exported once: a resumed or repeated profile (and every device in a
parallel run) reads the same file. The cache key includes the input shape, opset and torch
version, so a changed exporter never serves a stale graph.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from hwnas.core.io import atomic_write_bytes

OPSET = 17
DEFAULT_CACHE_DIR = ".cache/onnx"
_EXPORT_LOCK = threading.Lock()  # torch.onnx.export is not thread-safe


class OnnxCache:
    """A folder of `<sha>.onnx` files; writes are atomic, so concurrent readers are safe."""

    def __init__(self, root: str | os.PathLike = DEFAULT_CACHE_DIR):
        self.root = Path(root)

    def path(self, key: str, input_shape: Sequence[int], opset: int = OPSET) -> Path:
        import torch

        ident = f"{key}|{tuple(int(d) for d in input_shape)}|opset{opset}|torch{torch.__version__}"
        return self.root / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.onnx"

    def get(self, key: str, input_shape: Sequence[int], opset: int = OPSET) -> bytes | None:
        p = self.path(key, input_shape, opset)
        return p.read_bytes() if p.exists() else None

    def put(self, key: str, input_shape: Sequence[int], data: bytes, opset: int = OPSET) -> Path:
        p = self.path(key, input_shape, opset)
        atomic_write_bytes(p, data)
        return p


def export_onnx(module, input_shape: Sequence[int], opset: int = OPSET) -> bytes:
    """Export in eval mode with one static input named `x` (batch included in `input_shape`)."""
    import torch

    module = module.eval()
    x = torch.zeros(*[int(d) for d in input_shape])
    buf = io.BytesIO()
    with _EXPORT_LOCK, torch.no_grad():
        torch.onnx.export(module, (x,), buf, input_names=["x"], output_names=["y"],
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def to_onnx(module, input_shape: Sequence[int], cache: OnnxCache | None = None,
            key: str | None = None, opset: int = OPSET) -> bytes:
    """ONNX bytes of `module`, from the cache when `cache` and `key` are given."""
    if cache is not None and key is not None:
        hit = cache.get(key, input_shape, opset)
        if hit is not None:
            return hit
    data = export_onnx(module, input_shape, opset)
    if cache is not None and key is not None:
        cache.put(key, input_shape, data, opset)
    return data

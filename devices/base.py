"""The Device interface: one small abstract base every backend (local or remote) implements.

ONNX-centred so that a remote board, which has no torch, fits the same contract: the pipeline
exports each block to ONNX once and hands the bytes to `measure_onnx`. Backends that time
something other than ONNX (PyTorch eager) override `measure_module`, the module-level path.
"""

from __future__ import annotations

import abc
import functools
import platform
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .measurement import Measurement
from .timing import TimingConfig

_REF_ONNX: dict = {}  # (id(reference module), shape) -> ONNX bytes: exported once per process
InputShapes = Mapping[str, Sequence[int]] | None


class DeviceUnavailable(OSError):
    """The device cannot run here (no GPU, missing runtime); the message says what to install."""


def safe_id(text: str) -> str:
    """A file-name-safe device id: lower case, [a-z0-9._-] only."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return s or "device"


@functools.lru_cache(maxsize=1)
def processor_name() -> str:
    """The processor model (py-cpuinfo; falls back to platform when cpuinfo cannot tell)."""
    try:
        import cpuinfo

        return str(cpuinfo.get_cpu_info().get("brand_raw") or platform.processor() or "unknown")
    except Exception:  # cpuinfo probes the CPU with subprocesses; never fail a run for a label
        return platform.processor() or "unknown"


class Device(abc.ABC):
    """A place where ONNX models are timed.

    Attributes: `spec` is what the user typed (`cpu:threads=2`), `device_id` a file-name-safe
    name used for table files (`cpu-t2`). `measures` is False for read-only devices (tables
    measured by others), which answer `lookup` instead.
    """

    spec: str = ""
    device_id: str = ""
    measures: bool = True
    precision: str = "fp32"
    threads: int | None = None

    # ---- description -------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Sidecar metadata: processor, runtime and versions, providers, threads, precision."""
        return {
            "device": self.spec,
            "device_id": self.device_id,
            "processor": processor_name(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "threads": self.threads,
            "precision": self.precision,
        }

    # ---- measuring -----------------------------------------------------------------------
    @abc.abstractmethod
    def measure_onnx(self, onnx_bytes: bytes, input_shapes: InputShapes = None,
                     cfg: TimingConfig = TimingConfig(), ref_onnx: bytes | None = None,
                     ref_latency_ms: float | None = None) -> Measurement:
        """Time one ONNX model by the protocol (devices/timing.py).

        With `ref_onnx`, rounds of the model alternate with rounds of the reference network and
        the result carries `ref_ratio` and `latency_norm_ms = ratio x ref_latency_ms`.
        """

    def measure_module(self, module, input_shape: Sequence[int], cfg: TimingConfig = TimingConfig(),
                       ref_module=None, ref_latency_ms: float | None = None,
                       cache=None, key: str | None = None,
                       ref_input_shape: Sequence[int] | None = None) -> Measurement:
        """Time a `torch.nn.Module` on an input of `input_shape` (batch included).

        Default: export to ONNX (cached by `key` when a cache is given) and call `measure_onnx`.
        The reference is exported at `ref_input_shape` (default: devices/reference.py's input).
        """
        from .export import to_onnx
        from .reference import onnx_of, reference_input

        onnx_bytes = onnx_of(module, input_shape) or to_onnx(module, input_shape, cache=cache, key=key)
        ref = None
        if ref_module is not None:
            shape = tuple(ref_input_shape or reference_input(int(input_shape[0])))
            ref = onnx_of(ref_module, shape) or _REF_ONNX.get((id(ref_module), shape))
            if ref is None:
                ref = _REF_ONNX[(id(ref_module), shape)] = to_onnx(ref_module, shape)
        return self.measure_onnx(onnx_bytes, {"x": tuple(input_shape)}, cfg, ref_onnx=ref,
                                 ref_latency_ms=ref_latency_ms)

    def calibrate(self, ref_module, input_shape: Sequence[int],
                  cfg: TimingConfig = TimingConfig()) -> Measurement:
        """The calibration phase: the reference network alone; its median scales every ratio."""
        return self.measure_module(ref_module, input_shape, cfg)

    def close(self) -> None:
        """Release sessions, contexts or connections. Safe to call twice."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, device_id={self.device_id!r})"

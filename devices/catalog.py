"""The built-in devices, registered by name (the device registry imports this module on its first
look-up: core.registry.BUILTINS). Factories import their backend only when called, so listing or
importing never touches tensorrt, pycuda or pynvml."""

from __future__ import annotations

from hwnas.core.paths import TABLES_DIR

from .base import Device
from .registry import register_device


def _ort(spec: str) -> Device:
    from .ort import OrtDevice

    return OrtDevice(spec)


# one ONNX Runtime device class serves the three execution providers
register_device("cpu", kind="onnxruntime", example="cpu:threads=1")(_ort)
register_device("cuda", kind="onnxruntime", needs_gpu=True)(_ort)
register_device("trt", kind="onnxruntime", needs_gpu=True, example="trt:fp16")(_ort)


@register_device("trt-native", kind="tensorrt", needs_gpu=True, example="trt-native:fp16")
def _trt_native(spec: str) -> Device:
    from .tensorrt import TensorRTDevice

    return TensorRTDevice(spec)


def _torch_eager(spec: str) -> Device:
    from .torch_eager import TorchEagerDevice

    return TorchEagerDevice(spec)


register_device("torch-cpu", kind="torch", example="torch-cpu:threads=1")(_torch_eager)
register_device("torch-cuda", kind="torch", needs_gpu=True)(_torch_eager)


@register_device("table", kind="table", measures=False,
                 example=f"table:{TABLES_DIR.as_posix()}/mbv3-fmnist/cpu-t1.parquet:latency_norm_ms")
def _table(spec: str) -> Device:
    from .table_device import TableDevice

    return TableDevice(spec)


@register_device("remote", kind="remote", example="remote:http://127.0.0.1:8765")
def _remote(spec: str) -> Device:
    try:
        from . import remote
    except ImportError as exc:
        raise LookupError(
            f"device {spec!r}: the remote client (devices/remote.py) is not available ({exc}); "
            "it ships with the agent"
        ) from None
    for attr in ("RemoteDevice", "create_remote_device"):
        factory = getattr(remote, attr, None)
        if factory is not None:
            return factory(spec)
    raise LookupError(f"device {spec!r}: devices/remote.py defines no RemoteDevice")

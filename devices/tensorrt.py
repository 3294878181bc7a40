"""Native TensorRT (`trt-native[:fp16]`): build an engine from the ONNX bytes, time it with CUDA
events on a dedicated stream.

Imported lazily (tensorrt and torch.cuda only inside the device), so machines without a GPU
import the rest of devices/. Buffers are torch CUDA tensors (no pycuda needed); engines are
cached on disk by ONNX digest, precision and TensorRT version, as building dominates otherwise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hwnas.core.io import atomic_write_bytes

from .base import Device, DeviceUnavailable
from .measurement import Measurement
from .timing import TimingConfig, measure

ENGINE_CACHE = Path(".cache/trt-native")


def _import_trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise DeviceUnavailable(
            "TensorRT is not installed here; on an NVIDIA GPU machine `pip install .[gpu]` (tensorrt>=10), or use --device cpu"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailable("trt-native needs an NVIDIA GPU; torch sees none here. Use --device cpu")
    return trt


class TensorRTDevice(Device):
    def __init__(self, spec: str = "trt-native", workspace_mb: int = 1024):
        name, _, opts = spec.partition(":")
        toks = [t for t in opts.split(":") if t]
        for t in toks:
            if t not in ("fp16", "fp32"):
                raise ValueError(f"device {spec!r}: unknown option {t!r}; trt-native accepts fp16 or fp32")
        self.spec = spec
        self.precision = "fp16" if "fp16" in toks else "fp32"
        self.device_id = f"trt-native-{self.precision}"
        self.workspace = workspace_mb << 20
        self.trt = _import_trt()
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self.logger)
        self.energy_window_s = 1.0

    def info(self) -> dict:
        import torch

        d = super().info()
        d.update(runtime="tensorrt", runtime_version=self.trt.__version__, providers=["tensorrt-native"],
                 gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda)
        return d

    # ---- engines ---------------------------------------------------------------------------
    def build_engine(self, onnx_bytes: bytes) -> bytes:
        trt = self.trt
        key = hashlib.sha256(onnx_bytes + f"{self.precision}|{trt.__version__}".encode()).hexdigest()[:24]
        path = ENGINE_CACHE / f"{key}.engine"
        if path.exists():
            return path.read_bytes()
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ValueError(f"TensorRT could not parse the ONNX model: {errs[:300]}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace)
        if self.precision == "fp16":
            if not getattr(builder, "platform_has_fast_fp16", True):
                raise DeviceUnavailable(f"device {self.spec!r}: this GPU has no fast fp16; use trt-native:fp32")
            config.set_flag(trt.BuilderFlag.FP16)
        data = builder.build_serialized_network(network, config)
        if data is None:
            raise ValueError("TensorRT failed to build an engine for this model (see its log above)")
        data = bytes(data)
        atomic_write_bytes(path, data)
        return data

    def _runner(self, onnx_bytes: bytes):
        import torch

        trt = self.trt
        engine = self.runtime.deserialize_cuda_engine(self.build_engine(onnx_bytes))
        ctx = engine.create_execution_context()
        buffers = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ValueError(f"tensor {name!r} has a dynamic shape {shape}; export with static shapes")
            dtype = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                     trt.int64: torch.int64}.get(engine.get_tensor_dtype(name))
            if dtype is None:
                raise ValueError(f"tensor {name!r} has type {engine.get_tensor_dtype(name)}; trt-native times float/int models")
            t = (torch.randn(shape, device="cuda").to(dtype)
                 if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                 else torch.empty(shape, dtype=dtype, device="cuda"))
            ctx.set_tensor_address(name, t.data_ptr())
            buffers.append(t)
        stream = torch.cuda.Stream()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run() -> float:
            start.record(stream)
            ctx.execute_async_v3(stream.cuda_stream)
            end.record(stream)
            end.synchronize()
            return start.elapsed_time(end)  # ms, device time

        mem = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", None)
        run._keep = (engine, ctx, buffers, stream)  # lifetimes tied to the closure
        return run, (int(mem) if mem is not None else None), stream

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg: TimingConfig = TimingConfig(),
                     ref_onnx=None, ref_latency_ms=None) -> Measurement:
        from .energy import measure_energy, open_meter
        from .memory import memory_row

        run, mem, stream = self._runner(onnx_bytes)
        ref = self._runner(ref_onnx)[0] if ref_onnx is not None else None
        timing = measure(run, cfg, ref_fn=ref)
        meter = open_meter("gpu")
        try:
            e = measure_energy(run, meter, self.energy_window_s, sync=stream.synchronize)
        finally:
            if meter is not None:
                meter.close()
        kw = {}
        try:
            kw.update(memory_row(onnx_bytes))
        except Exception:
            pass
        batch = int(next(iter((input_shapes or {"x": (1,)}).values()))[0])
        return Measurement.from_timing(self.spec, batch, None, timing, cfg, ref_latency_ms,
                                       energy_mj=e.energy_mj, energy_source=e.energy_source,
                                       peak_mem_bytes=mem, peak_mem_source="trt-engine" if mem is not None else "none",
                                       precision=self.precision, extra={"runtime": "tensorrt"}, **kw)

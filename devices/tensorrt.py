"""Native TensorRT (`trt-native[:fp16]`): build an engine from the ONNX bytes, time it with CUDA
events on a dedicated stream.

Imported lazily (tensorrt and torch.cuda only inside the device), so machines without a GPU
import the rest of devices/. Buffers are torch CUDA tensors (no pycuda needed); engines are
cached on disk, as building dominates otherwise, under a key of everything an engine depends on:
the ONNX digest, precision, workspace, TensorRT version, GPU model and compute capability (an
engine built on another GPU or TensorRT would fail late, or run slower, when served again). A
cached engine TensorRT cannot deserialize is removed and built again. The reference network's
engine and buffers are built once per device and reused by every measurement.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from hwnas.core.io import atomic_write_bytes

from .base import Device, DeviceUnavailable
from .measurement import Measurement
from .timing import TimingConfig, measure

ENGINE_CACHE = Path(".cache/trt-native")
log = logging.getLogger(__name__)


def engine_cache_key(onnx_bytes: bytes, precision: str, workspace: int, trt_version: str, identity) -> str:
    """The engine file's name: every input the built engine depends on."""
    ident = (f"{precision}|ws{int(workspace)}|trt{trt_version}|{identity.name}|"
             f"sm{identity.compute_capability[0]}{identity.compute_capability[1]}")
    return hashlib.sha256(onnx_bytes + ident.encode()).hexdigest()[:24]


def load_engine(runtime, path: Path, build) -> object:
    """Deserialize the cached engine at `path`, or the one `build()` makes (and caches) when there
    is none. A cache file TensorRT rejects (another TensorRT or GPU, a truncated write) is removed
    and built again; a freshly built engine it still rejects is a ValueError, never a None that
    fails later."""
    if path.exists():
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is not None:
            return engine
        log.warning("%s: TensorRT rejected this cached engine; building it again", path)
        path.unlink(missing_ok=True)
    engine = runtime.deserialize_cuda_engine(build())
    if engine is None:
        path.unlink(missing_ok=True)
        raise ValueError(f"TensorRT could not deserialize the engine it just built ({path.name}); see its log above")
    return engine


def _import_trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise DeviceUnavailable(
            "TensorRT is not installed here; on an NVIDIA GPU machine `pip install tensorrt` (>= 10; the `gpu` extra: "
            "`make setup-gpu` in a checkout), or use --device cpu"
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
        from .gpu import cuda_identity

        self.identity = cuda_identity(0)  # torch's "cuda" is CUDA device 0 of this process
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self.logger)
        self.energy_window_s = 1.0
        self._ref: dict[str, tuple] = {}  # reference ONNX digest -> its runner (built once)

    def info(self) -> dict:
        import torch

        d = super().info()
        d.update(runtime="tensorrt", runtime_version=self.trt.__version__, providers=["tensorrt-native"],
                 cuda=torch.version.cuda, workspace_bytes=self.workspace, **self.identity.info())
        return d

    # ---- engines ---------------------------------------------------------------------------
    def engine_path(self, onnx_bytes: bytes) -> Path:
        key = engine_cache_key(onnx_bytes, self.precision, self.workspace, self.trt.__version__, self.identity)
        return ENGINE_CACHE / f"{key}.engine"

    def build_engine(self, onnx_bytes: bytes) -> bytes:
        """Build and cache the engine (the cache is read by `load_engine`)."""
        trt = self.trt
        path = self.engine_path(onnx_bytes)
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
        engine = load_engine(self.runtime, self.engine_path(onnx_bytes), lambda: self.build_engine(onnx_bytes))
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

    def _reference(self, ref_onnx: bytes):
        """The reference's runner, built once per device (same network every measurement)."""
        key = hashlib.sha256(ref_onnx).hexdigest()
        if key not in self._ref:
            self._ref[key] = self._runner(ref_onnx)
        return self._ref[key][0]

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg: TimingConfig = TimingConfig(),
                     ref_onnx=None, ref_latency_ms=None) -> Measurement:
        from .energy import idle_baseline, measure_energy, open_meter
        from .memory import memory_row

        run, mem, stream = self._runner(onnx_bytes)
        ref = self._reference(ref_onnx) if ref_onnx is not None else None
        meter = open_meter("gpu", 0)
        try:
            idle_w = idle_baseline(meter)  # before the loop, after a cool-down: never a hot GPU
            timing = measure(run, cfg, ref_fn=ref)
            e = measure_energy(run, meter, self.energy_window_s, idle_w=idle_w, sync=stream.synchronize)
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
                                       precision=self.precision, extra={"runtime": "tensorrt", **e.extra()}, **kw)

    def close(self) -> None:
        self._ref.clear()

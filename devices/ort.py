"""ONNX Runtime devices: sessions for the CPU, CUDA and TensorRT execution providers.

torch-free, so the remote agent can use it on a small board. `measure_onnx` is the one entry
point both the local devices and the agent call.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .base import Device
from .measurement import Measurement
from .timing import TimingConfig, measure

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}


class ProviderUnavailable(OSError):
    """The execution provider is not in this onnxruntime build or has no device."""


def available_providers() -> list[str]:
    return list(_import_ort().get_available_providers())


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise ProviderUnavailable("onnxruntime is not installed; `pip install 'hwnas[cpu]'` (or 'hwnas[gpu]' on an "
                                  "NVIDIA GPU machine; never both)") from None
    return ort


def make_session(onnx_bytes: bytes, providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
                 threads: int | None = None, profile_dir: str | None = None):
    """An inference session; raises ProviderUnavailable / ValueError with the reason.

    With `profile_dir`, onnxruntime's profiler is on until `ort_profile.collect` stops it."""
    ort = _import_ort()

    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    missing = [n for n in names if n not in ort.get_available_providers()]
    if missing:
        from .ort_build import GPU_INSTALL

        raise ProviderUnavailable(
            f"onnxruntime provider(s) {', '.join(missing)} not available here (have: "
            f"{', '.join(ort.get_available_providers())}); on an NVIDIA GPU machine: {GPU_INSTALL}"
        )
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if profile_dir is not None:
        from .ort_profile import enable

        enable(so, profile_dir)
    try:
        sess = ort.InferenceSession(onnx_bytes, sess_options=so, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf
        raise ValueError(f"model rejected by onnxruntime: {str(exc).splitlines()[0][:300]}") from None
    # ORT silently falls back to CPU when a GPU provider fails to initialise: refuse that.
    if names and sess.get_providers()[0] != names[0]:
        raise ProviderUnavailable(
            f"onnxruntime could not initialise {names[0]} (session runs on {sess.get_providers()[0]}); check the GPU driver and CUDA/TensorRT libraries"
        )
    return sess


def feeds_for(sess, input_shapes: Mapping[str, Sequence[int]] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every graph input; `input_shapes` must match the model where it is static."""
    rng = np.random.default_rng(seed)
    feeds = {}
    given = dict(input_shapes or {})
    for inp in sess.get_inputs():
        declared = inp.shape
        shape = given.pop(inp.name, None)
        if shape is None:
            if any(not isinstance(d, int) for d in declared):
                raise ValueError(f"input {inp.name!r} has dynamic shape {declared}; give its shape")
            shape = declared
        shape = [int(d) for d in shape]
        if len(shape) != len(declared) or any(
            isinstance(d, int) and d != s for d, s in zip(declared, shape, strict=False)
        ):
            raise ValueError(f"input {inp.name!r} shape {shape} does not match the model's {declared}")
        if any(d <= 0 for d in shape):
            raise ValueError(f"input {inp.name!r} shape {shape} has a non-positive dimension")
        dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16}.get(inp.type)
        if dtype is None:
            raise ValueError(f"input {inp.name!r} has unsupported type {inp.type}")
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    if given:
        raise ValueError(f"model has no input(s) named {', '.join(given)}")
    return feeds


TRT_CACHE_ROOT = Path(".cache/trt")


def trt_cache_dir(fp16: bool, identity=None, root: Path = TRT_CACHE_ROOT, device_index: int = 0) -> str:
    """The TensorRT provider's engine folder, one per onnxruntime and TensorRT version, GPU model,
    compute capability and precision: onnxruntime names cached engines by model alone, and an
    engine from another GPU or TensorRT fails late (or runs slower) when served again."""
    import importlib.metadata as md

    if identity is None:
        from .gpu import cuda_identity

        identity = cuda_identity(device_index)
    trt_version = "unknown"
    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-libs"):
        try:
            trt_version = md.version(dist)
            break
        except md.PackageNotFoundError:
            continue
    tag = f"ort{_import_ort().__version__}-trt{trt_version}-{identity.tag()}-{'fp16' if fp16 else 'fp32'}"
    return str(root / tag)


def provider_options(provider: str, fp16: bool = False, device_index: int = 0,
                     cache_dir: str | None = None, identity=None) -> dict:
    """Execution-provider options for timing: exhaustive cuDNN search, cached TRT engines
    (in `trt_cache_dir` unless `cache_dir` is given)."""
    if provider == "cuda":
        return {"device_id": device_index, "cudnn_conv_algo_search": "EXHAUSTIVE",
                "do_copy_in_default_stream": True}
    if provider == "trt":
        if cache_dir is None:
            cache_dir = trt_cache_dir(fp16, identity, device_index=device_index)
        return {"device_id": device_index, "trt_fp16_enable": bool(fp16),
                "trt_engine_cache_enable": True, "trt_engine_cache_path": cache_dir,
                "trt_builder_optimization_level": 3}
    return {}


def provider_chain(provider: str, options: dict | None = None, device_index: int = 0) -> list:
    """The session's provider list: the asked provider first, then the fall-backs onnxruntime may
    give nodes it rejects. TensorRT falls back to CUDA, then CPU, so a node TensorRT cannot take
    stays on the GPU; where a node lands is read back from the profile (ort_profile.py)."""
    if provider == "cpu":
        return [(PROVIDERS["cpu"], dict(options or {}))]
    chain = [(PROVIDERS[provider], dict(options if options is not None else provider_options(provider, device_index=device_index)))]
    if provider == "trt":
        chain.append((PROVIDERS["cuda"], provider_options("cuda", device_index=device_index)))
    chain.append(PROVIDERS["cpu"])
    return chain


def _runner(sess, feeds, provider: str = "cpu", device_index: int = 0):
    """One synchronous inference. GPU providers keep inputs and outputs on the device through
    IO binding, so host copies are not timed."""
    out_names = [o.name for o in sess.get_outputs()]
    if provider == "cpu":
        def run():
            sess.run(out_names, feeds)

        return run
    ort = _import_ort()
    binding = sess.io_binding()
    for name, arr in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", device_index))
    for name in out_names:
        binding.bind_output(name, "cuda", device_index)

    def run_gpu():
        binding.synchronize_inputs()
        sess.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run_gpu


_REF_SESSIONS: dict = {}
_REF_LAST_USE: dict[int, float] = {}
_REF_LOCK = threading.Lock()
REF_WARM_S = 5.0  # a reference session that ran this recently is still warm


def _reference_runner(ref_onnx: bytes, prov, threads, provider: str, device_index: int):
    """The reference's session is reused across measurements (it is the same model every time),
    and its warm-up skipped when it ran within REF_WARM_S seconds. One cached session per
    model / provider / threads / calling thread (parallel devices never share one)."""
    tid = threading.get_ident()
    key = (hashlib.sha256(ref_onnx).hexdigest(), repr(prov), threads, device_index, tid)
    with _REF_LOCK:
        hit = _REF_SESSIONS.get(key)
    if hit is None:
        rsess = make_session(ref_onnx, prov, threads)
        hit = _runner(rsess, feeds_for(rsess), provider, device_index)
        with _REF_LOCK:
            if len(_REF_SESSIONS) >= 8:
                _REF_SESSIONS.clear()
            _REF_SESSIONS[key] = hit
        return hit, False
    return hit, time.monotonic() - _REF_LAST_USE.get(tid, 0.0) < REF_WARM_S


def measure_onnx(onnx_bytes: bytes, input_shapes: Mapping[str, Sequence[int]] | None = None,
                 cfg: TimingConfig = TimingConfig(), provider: str = "cpu", threads: int | None = None,
                 ref_onnx: bytes | None = None, ref_latency_ms: float | None = None,
                 device: str | None = None, provider_options: dict | None = None,
                 energy_window_s: float = 0.0, memory: bool = True,
                 device_index: int = 0) -> Measurement:
    """Time one ONNX model by the protocol, optionally interleaved with a reference model.

    Before timing, two profiled runs (ort_profile.py) say where every kernel ran and, on the CPU,
    the arena's peak: `peak_mem_bytes` (source "ort-cpu-arena-peak"); GPU providers record the
    placement in `extra.provider_nodes` and warn when kernels fell off the GPU.
    `memory` adds the analytic parameter / activation bytes (devices/memory.py);
    `energy_window_s` > 0 adds energy per inference where a hardware counter is readable
    (NVML for GPU providers, RAPL for CPU), else leaves it empty with energy_source "none"; idle
    power is taken before the timing loop (energy.idle_baseline).
    `provider_options` are the asked provider's options (default: `provider_options(provider)`).
    """
    import tempfile

    from .ort_profile import PEAK_SOURCE, collect, report_fallback

    if provider not in PROVIDERS:
        raise KeyError(f"unknown onnxruntime provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    prov = provider_chain(provider, provider_options, device_index)
    threads = threads or (os.cpu_count() if provider == "cpu" else None)
    with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
        sess = make_session(onnx_bytes, prov, threads, profile_dir=tmp)
        feeds = feeds_for(sess, input_shapes)
        run = _runner(sess, feeds, provider, device_index)
        prof = collect(sess, run)
    kw: dict = {}
    extra: dict = {"provider": PROVIDERS[provider]}
    if provider == "cpu":
        if prof.cpu_peak_bytes is not None:
            kw.update(peak_mem_bytes=prof.cpu_peak_bytes, peak_mem_source=PEAK_SOURCE)
    else:
        extra["provider_nodes"] = prof.placement()
        report_fallback(prof, PROVIDERS[provider], device or provider)
    meter = idle_w = None
    if energy_window_s > 0:
        from .energy import idle_baseline, open_meter

        meter = open_meter("cpu" if provider == "cpu" else "gpu", device_index)
        idle_w = idle_baseline(meter)  # before the loop: a device sampled after it is still hot
    try:
        ref_run, ref_warm = None, False
        if ref_onnx is not None:
            ref_run, ref_warm = _reference_runner(ref_onnx, prov, threads, provider, device_index)
        timing = measure(run, cfg, ref_fn=ref_run, ref_warm=ref_warm)
        if ref_onnx is not None:
            _REF_LAST_USE[threading.get_ident()] = time.monotonic()
        if energy_window_s > 0:
            from .energy import measure_energy

            e = measure_energy(run, meter, energy_window_s, idle_w=idle_w)
            kw.update(energy_mj=e.energy_mj, energy_source=e.energy_source)
            extra.update(e.extra())
    finally:
        if meter is not None:
            meter.close()
    batch = next(iter(feeds.values())).shape[0] if feeds else 1
    if memory:
        from .memory import memory_row

        try:
            kw.update(memory_row(onnx_bytes, {k: v.shape for k, v in feeds.items()}))
        except Exception:  # shape inference can fail on exotic graphs: leave the cells empty
            pass
    return Measurement.from_timing(device or provider, int(batch), threads, timing, cfg, ref_latency_ms,
                                   extra=extra, **kw)


def measure_peak_memory(onnx_bytes: bytes, input_shapes: Mapping[str, Sequence[int]] | None = None,
                        threads: int | None = 1) -> tuple[int | None, str]:
    """The CPU arena's peak over two runs (bytes, source), without timing anything: the
    memory-only pass over tables measured before memory was (bench/engine/memory_pass.py)."""
    import tempfile

    from .ort_profile import PEAK_SOURCE, collect

    with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
        sess = make_session(onnx_bytes, provider_chain("cpu"), threads, profile_dir=tmp)
        prof = collect(sess, _runner(sess, feeds_for(sess, input_shapes)))
    return (prof.cpu_peak_bytes, PEAK_SOURCE) if prof.cpu_peak_bytes is not None else (None, "none")


def _parse_options(spec: str, name: str, allowed: dict[str, type]) -> dict:
    """`name:key=value:flag` -> {key: value, flag: True}; unknown keys are a clear error."""
    out: dict = {}
    for tok in spec.split(":")[1:]:
        if not tok:
            continue
        k, sep, v = tok.partition("=")
        if k not in allowed:
            raise ValueError(f"device {spec!r}: unknown option {k!r}; {name} accepts {', '.join(allowed) or 'no options'}")
        typ = allowed[k]
        if typ is bool:
            out[k] = (v.lower() not in ("0", "false", "no")) if sep else True
        else:
            try:
                out[k] = typ(v)
            except ValueError:
                raise ValueError(f"device {spec!r}: option {k}={v!r} is not a valid {typ.__name__}") from None
    return out


class OrtDevice(Device):
    """ONNX Runtime with one execution provider: `cpu[:threads=N]`, `cuda[:gpu=I]`,
    `trt[:fp16][:gpu=I]`."""

    def __init__(self, spec: str = "cpu"):
        name = spec.split(":", 1)[0]
        if name not in PROVIDERS:
            raise KeyError(f"unknown onnxruntime device {name!r}; expected one of {', '.join(PROVIDERS)}")
        allowed = {"cpu": {"threads": int}, "cuda": {"gpu": int}, "trt": {"gpu": int, "fp16": bool}}[name]
        opts = _parse_options(spec, name, allowed)
        self.provider = name
        self.spec = spec
        self.gpu = opts.get("gpu", 0)
        self.energy_window_s = 1.0
        if name == "cpu":
            self.threads = opts.get("threads", os.cpu_count() or 1)
            if self.threads < 1:
                raise ValueError(f"device {spec!r}: threads must be >= 1")
            self.device_id = f"cpu-t{self.threads}"
        else:
            self.threads = None
            self.precision = "fp16" if opts.get("fp16") else "fp32"
            self.device_id = name + (f"{self.gpu}" if self.gpu else "") + ("-fp16" if opts.get("fp16") else "")
            self.identity = gpu_start_check(spec, PROVIDERS[name], self.gpu)
        self._options = provider_options(name, self.precision == "fp16", self.gpu,
                                         identity=getattr(self, "identity", None))

    def info(self) -> dict:
        ort = _import_ort()
        d = super().info()
        d.update(runtime="onnxruntime", runtime_version=ort.__version__,
                 providers=[p[0] if isinstance(p, tuple) else p for p in provider_chain(self.provider, self._options, self.gpu)],
                 provider_options=self._options)
        if self.provider != "cpu":
            d.update(self.identity.info())
        return d

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg: TimingConfig = TimingConfig(),
                     ref_onnx=None, ref_latency_ms=None) -> Measurement:
        m = measure_onnx(onnx_bytes, input_shapes, cfg, provider=self.provider, threads=self.threads,
                         ref_onnx=ref_onnx, ref_latency_ms=ref_latency_ms, device=self.spec,
                         provider_options=self._options, energy_window_s=self.energy_window_s,
                         device_index=self.gpu)
        m.precision = self.precision
        return m


def gpu_start_check(spec: str, provider: str, index: int, check=None, identify=None):
    """At the start of a GPU device: the onnxruntime build can run `provider` (one line naming
    the fix otherwise: ort_build.py), and CUDA device `index` exists; returns its GpuIdentity."""
    from .ort_build import BuildError, check_gpu_provider

    try:
        (check or check_gpu_provider)(provider)
    except BuildError as exc:
        raise ProviderUnavailable(f"device {spec!r}: {exc}; or use --device cpu") from None
    if identify is None:
        from .gpu import cuda_identity as identify
    return identify(index)

"""ONNX Runtime devices: sessions for the CPU, CUDA and TensorRT execution providers.

torch-free, so the remote agent can use it on a small board. `measure_onnx` is the one entry
point both the local devices and the agent call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

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
    import onnxruntime as ort

    return list(ort.get_available_providers())


def make_session(onnx_bytes: bytes, providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
                 threads: int | None = None):
    """An inference session; raises ProviderUnavailable / ValueError with the reason."""
    import onnxruntime as ort

    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    missing = [n for n in names if n not in ort.get_available_providers()]
    if missing:
        raise ProviderUnavailable(
            f"onnxruntime provider(s) {', '.join(missing)} not available here (have: "
            f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu (`pip install .[gpu]`) on a GPU machine"
        )
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
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


def _runner(sess, feeds):
    out_names = [o.name for o in sess.get_outputs()]

    def run():
        sess.run(out_names, feeds)

    return run


def measure_onnx(onnx_bytes: bytes, input_shapes: Mapping[str, Sequence[int]] | None = None,
                 cfg: TimingConfig = TimingConfig(), provider: str = "cpu", threads: int | None = None,
                 ref_onnx: bytes | None = None, ref_latency_ms: float | None = None,
                 device: str | None = None, provider_options: dict | None = None) -> Measurement:
    """Time one ONNX model by the protocol, optionally interleaved with a reference model."""
    if provider not in PROVIDERS:
        raise KeyError(f"unknown onnxruntime provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    prov = [(PROVIDERS[provider], provider_options or {})]
    if provider != "cpu":
        prov.append(PROVIDERS["cpu"])
    threads = threads or (os.cpu_count() if provider == "cpu" else None)
    sess = make_session(onnx_bytes, prov, threads)
    feeds = feeds_for(sess, input_shapes)
    ref_run = None
    if ref_onnx is not None:
        rsess = make_session(ref_onnx, prov, threads)
        ref_run = _runner(rsess, feeds_for(rsess))
    timing = measure(_runner(sess, feeds), cfg, ref_fn=ref_run)
    batch = next(iter(feeds.values())).shape[0] if feeds else 1
    return Measurement.from_timing(device or provider, int(batch), threads, timing, cfg, ref_latency_ms,
                                   extra={"provider": PROVIDERS[provider]})

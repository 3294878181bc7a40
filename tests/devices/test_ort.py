from __future__ import annotations

import io

import pytest
import torch
from hwnas.devices.ort import ProviderUnavailable, measure_onnx
from hwnas.devices.timing import TimingConfig

FAST = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_s=0.5, rel_ci=0.05, round_runs=5)


def onnx_of(module, shape):
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.randn(1, *shape), buf, input_names=["x"], dynamo=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def conv():
    return onnx_of(torch.nn.Conv2d(8, 8, 3, padding=1), (8, 16, 16))


def test_measures_with_and_without_reference(conv):
    m = measure_onnx(conv, {"x": (1, 8, 16, 16)}, FAST, threads=1)
    assert m.latency_ms > 0 and m.n >= 10 and m.threads == 1 and m.latency_norm_ms is None
    r = measure_onnx(conv, None, FAST, threads=1, ref_onnx=conv, ref_latency_ms=m.latency_ms)
    assert r.ref_ratio == pytest.approx(1.0, rel=0.3)


@pytest.mark.parametrize("shapes, msg", [({"x": (1, 8, 15, 16)}, "does not match"),
                                         ({"y": (1, 8, 16, 16)}, "no input"),
                                         ({"x": (1, 8, 16)}, "does not match")])
def test_wrong_shapes_are_value_errors(conv, shapes, msg):
    with pytest.raises(ValueError, match=msg):
        measure_onnx(conv, shapes, FAST)


def test_garbage_and_truncated_models(conv):
    with pytest.raises(ValueError, match="rejected by onnxruntime"):
        measure_onnx(b"not an onnx file", None, FAST)
    with pytest.raises(ValueError, match="rejected by onnxruntime"):
        measure_onnx(conv[: len(conv) // 2], None, FAST)


def test_missing_gpu_provider_is_a_clear_error(conv):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider not available"):
        measure_onnx(conv, None, FAST, provider="cuda")

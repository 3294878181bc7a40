"""onnxruntime's profile read back: kernel placement per provider, and the CPU arena's peak as the
measured `peak_mem_bytes` of CPU tables."""

from __future__ import annotations

import io
import json

import torch
from hwnas.devices import ort_profile
from hwnas.devices.ort import measure_onnx, measure_peak_memory
from hwnas.devices.timing import TimingConfig

FAST = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_s=0.2, rel_ci=0.5, round_runs=5)


def onnx_of(module, shape):
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.randn(1, *shape), buf, input_names=["x"], dynamo=False)
    return buf.getvalue()


def conv(hw: int) -> bytes:
    torch.manual_seed(0)
    return onnx_of(torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(16, 8, 3, padding=1)), (8, hw, hw))


def event(name, provider, op, peak=None):
    args = {"provider": provider, "op_name": op}
    if peak is not None:
        args["mem_in_use_peak"] = str(peak)
    return {"cat": "Node", "name": f"{name}_kernel_time", "args": args}


def test_parse_counts_kernels_per_provider_once_and_reads_the_cpu_peak():
    events = [event("trt0", "TensorrtExecutionProvider", "TRTKernel_graph_0"),
              event("gather", "CUDAExecutionProvider", "Gather"),
              event("shape", "CPUExecutionProvider", "Shape", peak=100),
              event("shape", "CPUExecutionProvider", "Shape", peak=300),  # the second profiled run
              {"cat": "Session", "name": "model_run", "args": {}},
              {"cat": "Node", "name": "shape_fence_before", "args": {"provider": "CPUExecutionProvider"}}]
    p = ort_profile.parse(events)
    assert p.kernels == {"TensorrtExecutionProvider": 1, "CUDAExecutionProvider": 1, "CPUExecutionProvider": 1}
    assert p.cpu_peak_bytes == 300
    assert p.off_provider("TensorrtExecutionProvider") == {"Shape": 1}  # CUDA is TensorRT's GPU fall-back
    assert p.off_provider("CUDAExecutionProvider") == {"TRTKernel_graph_0": 1, "Shape": 1}
    line = ort_profile.report_fallback(p, "TensorrtExecutionProvider", "trt")
    assert "1 of 3 kernels ran off TensorrtExecutionProvider" in line and "Shape x1" in line


def test_all_on_the_gpu_provider_reports_nothing():
    p = ort_profile.parse([event("c", "CUDAExecutionProvider", "Conv"), event("r", "CUDAExecutionProvider", "Relu")])
    assert ort_profile.report_fallback(p, "CUDAExecutionProvider") is None
    assert p.placement() == "CUDAExecutionProvider=2" and p.cpu_peak_bytes is None


def test_cpu_measurement_fills_measured_peak_memory():
    m = measure_onnx(conv(16), None, FAST, threads=1)
    assert m.peak_mem_source == ort_profile.PEAK_SOURCE and m.peak_mem_bytes > 0
    assert "provider_nodes" not in m.extra  # CPU tables gain no placement column
    # the same figure without timing (memory-only pass), and again: the arena peak is deterministic
    assert measure_peak_memory(conv(16), None, 1) == (m.peak_mem_bytes, ort_profile.PEAK_SOURCE)
    assert measure_peak_memory(conv(16), None, 1)[0] == m.peak_mem_bytes


def test_peak_memory_grows_with_the_activations():
    small, big = measure_peak_memory(conv(16), None, 1)[0], measure_peak_memory(conv(64), None, 1)[0]
    # 16x more activation elements; the weights are the same
    assert big > 8 * small
    act_big = 16 * 64 * 64 * 4  # the widest intermediate tensor alone
    assert big >= act_big


def test_profile_trace_is_removed(tmp_path):
    from hwnas.devices.ort import _runner, feeds_for, make_session

    sess = make_session(conv(8), ("CPUExecutionProvider",), 1, profile_dir=str(tmp_path))
    prof = ort_profile.collect(sess, _runner(sess, feeds_for(sess)))
    assert prof.kernels.get("CPUExecutionProvider", 0) >= 2 and list(tmp_path.iterdir()) == []
    json.dumps(prof.ops)

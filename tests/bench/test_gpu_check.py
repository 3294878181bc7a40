"""`make gpu-check`'s logic without a GPU: the one-line refusal, and the report from stand-in steps
(a failing step is recorded, the others still run; placement, energy and fp16 verdicts)."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from hwnas.bench.experiments import gpu_check


def m(latency_ms, energy_mj=None, source="none", **extra):
    return types.SimpleNamespace(latency_ms=latency_ms, energy_mj=energy_mj, energy_source=source, extra=extra)


def test_refuses_with_one_line_without_a_gpu(tmp_path):
    if gpu_check.detect_gpu() is None:
        pytest.skip("this machine has an NVIDIA GPU")
    r = subprocess.run([sys.executable, "-m", "hwnas.bench.cli", "gpu-check", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no NVIDIA GPU here"), r.stderr
    assert not (tmp_path / "o").exists()


def test_report_from_stand_in_steps(tmp_path):
    conv = {"cuda": m(2.0, 3.0, "nvml", provider_nodes="CUDAExecutionProvider=7", power_w=250.0,
                      idle_power_w=60.0, power_limit_w=700.0),
            "trt": m(1.2, 2.0, "nvml", provider_nodes="TensorrtExecutionProvider=1;CPUExecutionProvider=1",
                     power_w=900.0, idle_power_w=60.0, power_limit_w=700.0),
            "trt:fp16": m(0.7, None, "none", provider_nodes="TensorrtExecutionProvider=1")}

    def profile(b):
        if b == "trt:fp16":
            raise RuntimeError("TensorRT could not parse the ONNX model\nmore")
        return True, "47/47 blocks"

    steps = {"machine": lambda facts: (facts.update(gpu="NVIDIA H100") or True, "H100"),
             "profile": profile, "validate": lambda b: (True, "MAPE 3%"), "conv": lambda b: conv[b]}
    rep = gpu_check.run_check(tmp_path, ("cuda", "trt", "trt:fp16"), detect=lambda: None, steps=steps)
    status = {c.item: c.status for c in rep.checks}
    assert status["trt:fp16: profile mbv3-fmnist"] == "FAIL"  # recorded, and the rest still ran
    assert status["trt:fp16: validate the table end to end"] == "pass"
    assert status["cuda: all kernels on the GPU"] == "pass" and status["trt: all kernels on the GPU"] == "FAIL"
    assert status["cuda: NVML energy and power"] == "pass"
    assert status["trt: NVML energy and power"] == "FAIL"  # 900 W over a 700 W limit
    assert status["trt:fp16: NVML energy and power"] == "not measured"
    assert status["trt:fp16 faster than trt on the conv net"] == "pass"
    assert rep.failed == 3
    md = (tmp_path / "gpu-check.md").read_text()
    assert "GPU: NVIDIA H100" in md and "TensorRT could not parse the ONNX model |" in md and "3 failed" in md
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    assert doc["failed"] == 3 and "trt:fp16: profile mbv3-fmnist" in doc["tracebacks"]


def test_verdicts():
    assert gpu_check.fp16_check(2.0, 2.5)[0] is False
    assert gpu_check.energy_check(m(1.0, 0.0, "nvml", power_w=50.0, idle_power_w=60.0))[0] is False
    assert gpu_check.placement_check(m(1.0))[0] is None  # native TensorRT / torch: nothing to place


def test_no_gpu_is_refused_before_any_step(tmp_path):
    with pytest.raises(SystemExit, match="gpu-check: no NVIDIA GPU here .no driver."):
        gpu_check.run_check(tmp_path, detect=lambda: "no driver", steps={})

"""Behaviour on a real NVIDIA GPU (skipped without one): every kernel on the GPU providers, fp16
engines faster than fp32 on a conv net, NVML energy per inference positive with the mean power
between idle and the board's enforced limit. `make gpu-check` runs the same verdicts
(bench/experiments/gpu_check.py) beside a profiled and validated table per backend."""

from __future__ import annotations

import pytest
from hwnas.bench.experiments.gpu_check import (
    CONV_INPUT,
    conv_net,
    detect_gpu,
    energy_check,
    placement_check,
)

pytestmark = pytest.mark.gpu

if detect_gpu() is not None:
    pytest.skip(f"no NVIDIA GPU here ({detect_gpu()})", allow_module_level=True)

from hwnas.devices.registry import create_device  # noqa: E402
from hwnas.devices.timing import TimingConfig  # noqa: E402

CFG = TimingConfig(rel_ci=0.02, max_s=3.0)


def measure(spec: str, energy_s: float = 0.0):
    dev = create_device(spec)
    dev.energy_window_s = energy_s
    try:
        return dev.measure_module(conv_net(), CONV_INPUT, CFG)
    finally:
        dev.close()


@pytest.mark.parametrize("spec", ["cuda", "trt", "trt:fp16"])
def test_every_kernel_runs_on_the_gpu_provider(spec):
    ok, cell = placement_check(measure(spec))
    assert ok, cell


@pytest.mark.parametrize("fp32, fp16", [("trt-native", "trt-native:fp16"), ("trt", "trt:fp16")])
def test_fp16_engine_is_faster_than_fp32_on_a_conv_net(fp32, fp16):
    a, b = measure(fp32), measure(fp16)
    assert b.latency_ms < a.latency_ms, (a.latency_ms, b.latency_ms)


@pytest.mark.parametrize("spec", ["cuda", "trt-native"])
def test_energy_is_positive_and_power_within_the_board_limits(spec):
    m = measure(spec, energy_s=2.0)
    ok, detail = energy_check(m)
    assert ok, detail

"""One contract suite over every registered device: each that can run here is created, described
and asked to time a tiny model; GPU devices are skipped with the reason this machine gives."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
import torch
from hwnas.devices.base import Device, DeviceUnavailable
from hwnas.devices.registry import create_device, device_info, list_devices, split_specs
from hwnas.devices.timing import TimingConfig

FAST = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_s=0.3, rel_ci=0.2, round_runs=5)


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    import pandas as pd

    p = tmp_path_factory.mktemp("tbl") / "dev.parquet"
    pd.DataFrame({"block_key": ["a", "b"], "kind": ["block", "block"], "latency_ms": [1.0, 2.0]}).to_parquet(p)
    return p


def spec_for(name: str, tiny_table) -> str:
    if name == "table":
        return f"table:{tiny_table}:latency_ms"
    if name == "remote":
        pytest.skip("remote:URL needs a running agent; covered by tests/devices/test_agent.py")
    return device_info(name)["example"]


def make(name, tiny_table) -> Device:
    try:
        return create_device(spec_for(name, tiny_table))
    except (DeviceUnavailable, OSError) as exc:
        if device_info(name)["needs_gpu"]:
            pytest.skip(f"{name} needs a GPU: {exc}")
        raise


@pytest.mark.parametrize("name", list_devices())
def test_registration_metadata(name):
    from hwnas.devices.registry import KINDS

    info = device_info(name)
    assert info["kind"] in KINDS and isinstance(info["needs_gpu"], bool) and info["example"].startswith(name)
    assert name in list_devices(kind=info["kind"], needs_gpu=info["needs_gpu"])


@pytest.mark.parametrize("name", list_devices())
def test_contract(name, tiny_table):
    dev = make(name, tiny_table)
    assert re.fullmatch(r"[a-z0-9._-]+", dev.device_id), dev.device_id
    info = dev.info()
    json.dumps(info, default=str)  # sidecar-serialisable
    assert info["device_id"] == dev.device_id
    if not dev.measures:
        with pytest.raises(ValueError, match="cannot measure"):
            dev.measure_onnx(b"", None, FAST)
        return
    assert info["runtime"] and info["runtime_version"] and "threads" in info and info["precision"]
    module = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU())
    from hwnas.devices.reference import reference_module

    m = dev.measure_module(module, (1, 4, 8, 8), FAST, ref_module=reference_module(), ref_latency_ms=0.1)
    assert m.latency_ms > 0 and m.n >= FAST.min_runs and len(m.samples_ms) == m.n
    assert m.ref_ratio is not None and m.latency_norm_ms == pytest.approx(m.ref_ratio * 0.1)
    assert m.param_bytes == (8 * 4 * 9 + 8) * 4
    assert m.energy_source in ("none", "rapl", "nvml", "nvml-power")
    if m.energy_source == "none":
        assert m.energy_mj is None  # never estimated silently
    dev.close()
    dev.close()


def test_unknown_device_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*cpu.*torch-cpu"):
        create_device("gpu0")


@pytest.mark.parametrize("spec, msg", [("cpu:threads=x", "not a valid int"), ("cpu:fast", "unknown option"),
                                       ("cpu:threads=0", "threads must be"), ("trt-native:int8", None),
                                       ("table:nofile.csv:col", "no such file"), ("table:x.parquet", "COLUMN")])
def test_bad_specs_are_user_errors(spec, msg):
    with pytest.raises((ValueError, LookupError, OSError)) as ei:
        create_device(spec)
    if msg:
        assert msg in str(ei.value)


def test_cuda_without_gpu_is_a_clear_oserror():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(OSError, match="CUDAExecutionProvider"):
        create_device("cuda")


def test_cpu_threads_are_set_and_recorded():
    d = create_device("cpu:threads=1")
    assert d.device_id == "cpu-t1" and d.info()["threads"] == 1


def test_split_specs_keeps_urls_and_options_together():
    assert split_specs("remote:http://a:1,remote:http://b:2") == ["remote:http://a:1", "remote:http://b:2"]
    assert split_specs("cpu:threads=1, torch-cpu") == ["cpu:threads=1", "torch-cpu"]


def test_no_gpu_library_is_imported_by_the_registry():
    code = ("import sys, devices.registry, devices.ort, devices.energy, devices.lut; "
            "print([m for m in ('tensorrt','pycuda','pynvml','torch') if m in sys.modules])")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_table_device_looks_up_blocks(tiny_table):
    d = create_device(f"table:{tiny_table}:latency_ms")
    assert d.lookup_blocks(["b", "a"]).tolist() == [2.0, 1.0]
    with pytest.raises(LookupError, match="'c'"):
        d.lookup_blocks(["c"])


@pytest.mark.gpu
@pytest.mark.parametrize("spec", ["cuda", "trt", "trt-native", "trt-native:fp16", "torch-cuda"])
def test_gpu_devices_time_a_model(spec):
    if not torch.cuda.is_available():
        pytest.skip("no NVIDIA GPU on this machine")
    dev = create_device(spec)
    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Conv2d(8, 8, 3, padding=1).eval(), torch.randn(1, 8, 32, 32), buf,
                      input_names=["x"], dynamo=False)
    m = dev.measure_onnx(buf.getvalue(), {"x": (1, 8, 32, 32)}, FAST) if not spec.startswith("torch") else \
        dev.measure_module(torch.nn.Conv2d(8, 8, 3, padding=1), (1, 8, 32, 32), FAST)
    assert m.latency_ms > 0

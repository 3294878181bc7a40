"""The GPU path's logic without a GPU: onnxruntime build checks, CUDA-to-NVML device matching,
idle power before the loop, TensorRT engine caching, provider fall-back order. NVML, the CUDA
driver, onnxruntime's GPU build and TensorRT are replaced by small stand-ins."""

from __future__ import annotations

import ctypes
import time
import types
from pathlib import Path

import pytest
from hwnas.devices import energy, ort, ort_build
from hwnas.devices.gpu import CudaDriver, GpuIdentity, normalise_bus_id, nvml_handle

H100 = GpuIdentity(0, "NVIDIA H100 80GB HBM3", "0000:81:00.0", "GPU-11111111-2222-3333-4444-555555555555", (9, 0))
A100 = GpuIdentity(0, "NVIDIA A100-SXM4-40GB", "0000:07:00.0", "GPU-aaaaaaaa-2222-3333-4444-555555555555", (8, 0))


# ---- onnxruntime build --------------------------------------------------------------------------
def fake_ort(tmp_path: Path, providers, libs=("cuda", "tensorrt"), preload=None):
    pkg = tmp_path / "onnxruntime"
    (pkg / "capi").mkdir(parents=True)
    for lib in libs:
        (pkg / "capi" / f"libonnxruntime_providers_{lib}.so").write_bytes(b"")
    mod = types.SimpleNamespace(__file__=str(pkg / "__init__.py"), get_available_providers=lambda: list(providers))
    if preload is not None:
        mod.preload_dlls = preload
    return mod


GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_both_builds_installed_names_which_to_remove(tmp_path):
    with pytest.raises(ort_build.BuildError) as ei:
        ort_build.check_gpu_provider("CUDAExecutionProvider", {"onnxruntime": "1.20.1", "onnxruntime-gpu": "1.20.1"},
                                     fake_ort(tmp_path, GPU_PROVIDERS), load=lambda p: None)
    msg = str(ei.value)
    assert "\n" not in msg and "both onnxruntime 1.20.1 (CPU build) and onnxruntime-gpu 1.20.1" in msg
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in msg and "hwnas[gpu]" in msg


def test_cpu_build_only_says_so(tmp_path):
    with pytest.raises(ort_build.BuildError, match="onnxruntime 1.20.1 is the CPU build.*hwnas\\[gpu\\]"):
        ort_build.check_gpu_provider("CUDAExecutionProvider", {"onnxruntime": "1.20.1"},
                                     fake_ort(tmp_path, ["CPUExecutionProvider"]))


def test_gpu_build_whose_libraries_are_missing_names_the_library(tmp_path):
    err = "libcudnn.so.9: cannot open shared object file: No such file or directory"
    with pytest.raises(ort_build.BuildError, match="cannot load CUDAExecutionProvider: libcudnn.so.9"):
        ort_build.check_gpu_provider("CUDAExecutionProvider", {"onnxruntime-gpu": "1.20.1"},
                                     fake_ort(tmp_path, GPU_PROVIDERS), load=lambda p: err)


def test_preloading_the_nvidia_packages_is_tried(tmp_path):
    state = {"preloaded": False}
    mod = fake_ort(tmp_path, GPU_PROVIDERS, preload=lambda: state.update(preloaded=True))
    loads = []

    def load(path):
        loads.append(Path(path).name)
        return None if state["preloaded"] else "libcublasLt.so.12: cannot open shared object file"

    ort_build.check_gpu_provider("TensorrtExecutionProvider", {"onnxruntime-gpu": "1.22.0"}, mod, load=load)
    assert loads == ["libonnxruntime_providers_tensorrt.so"] * 2 and state["preloaded"]


def test_gpu_device_start_refuses_with_one_line():
    def check(provider):
        raise ort_build.BuildError(f"{provider} is not available (onnxruntime 1.32.0 is the CPU build): fix")

    with pytest.raises(ort.ProviderUnavailable) as ei:
        ort.gpu_start_check("trt:fp16", "TensorrtExecutionProvider", 0, check=check, identify=lambda i: H100)
    assert str(ei.value).startswith("device 'trt:fp16': TensorrtExecutionProvider is not available") and "\n" not in str(ei.value)
    assert ort.gpu_start_check("cuda", "CUDAExecutionProvider", 0, check=lambda p: None, identify=lambda i: H100) is H100


# ---- provider order and engine caches ------------------------------------------------------------
def test_tensorrt_falls_back_to_cuda_before_cpu():
    chain = ort.provider_chain("trt", {"trt_fp16_enable": True}, device_index=1)
    assert [p[0] if isinstance(p, tuple) else p for p in chain] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert chain[1][1]["device_id"] == 1 and chain[0][1] == {"trt_fp16_enable": True}
    assert [p if isinstance(p, str) else p[0] for p in ort.provider_chain("cuda", {})] == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_ort_tensorrt_engine_folder_is_per_gpu_and_precision():
    a, b = ort.trt_cache_dir(False, H100), ort.trt_cache_dir(False, A100)
    assert a != b and "sm90" in a and "sm80" in b and a.endswith("fp32")
    assert ort.trt_cache_dir(True, H100) != a
    assert ort.provider_options("trt", True, identity=H100)["trt_engine_cache_path"] == ort.trt_cache_dir(True, H100)


def test_native_engine_key_covers_gpu_capability_version_and_workspace():
    from hwnas.devices.tensorrt import engine_cache_key

    base = engine_cache_key(b"onnx", "fp16", 1 << 30, "10.3.0", H100)
    variants = [engine_cache_key(b"onnx", "fp16", 1 << 30, "10.3.0", A100),
                engine_cache_key(b"onnx", "fp16", 1 << 30, "10.3.0", GpuIdentity(0, H100.name, "x", None, (8, 9))),
                engine_cache_key(b"onnx", "fp16", 1 << 30, "10.4.0", H100),
                engine_cache_key(b"onnx", "fp16", 2 << 30, "10.3.0", H100),
                engine_cache_key(b"onnx", "fp32", 1 << 30, "10.3.0", H100),
                engine_cache_key(b"onnx2", "fp16", 1 << 30, "10.3.0", H100)]
    assert len({base, *variants}) == 7
    # the PCI slot is not part of it: two boards of one model share engines
    assert engine_cache_key(b"onnx", "fp16", 1 << 30, "10.3.0", GpuIdentity(1, H100.name, "0000:01:00.0", None, (9, 0))) == base


class FakeRuntime:
    def __init__(self, good: set[bytes]):
        self.good, self.seen = good, []

    def deserialize_cuda_engine(self, data):
        self.seen.append(data)
        return ("engine", data) if data in self.good else None


def test_stale_cached_engine_is_rebuilt(tmp_path):
    from hwnas.devices.tensorrt import load_engine

    path = tmp_path / "k.engine"
    path.write_bytes(b"from another GPU")
    rt = FakeRuntime({b"fresh"})

    def build():
        path.write_bytes(b"fresh")
        return b"fresh"

    assert load_engine(rt, path, build) == ("engine", b"fresh")
    assert rt.seen == [b"from another GPU", b"fresh"] and path.read_bytes() == b"fresh"
    assert load_engine(rt, path, lambda: pytest.fail("cached: no build")) == ("engine", b"fresh")


def test_engine_tensorrt_rejects_is_an_error_not_none(tmp_path):
    from hwnas.devices.tensorrt import load_engine

    path = tmp_path / "k.engine"

    def build():
        path.write_bytes(b"bad")
        return b"bad"

    with pytest.raises(ValueError, match="could not deserialize"):
        load_engine(FakeRuntime(set()), path, build)
    assert not path.exists()


def test_reference_engine_is_built_once_per_device(monkeypatch):
    from hwnas.devices import tensorrt
    from hwnas.devices.timing import TimingConfig

    dev = tensorrt.TensorRTDevice.__new__(tensorrt.TensorRTDevice)
    dev.spec, dev.precision, dev.energy_window_s, dev._ref = "trt-native", "fp32", 0.0, {}
    built = []

    def runner(onnx_bytes):
        built.append(onnx_bytes)
        return (lambda: 0.5), 1024, types.SimpleNamespace(synchronize=lambda: None)

    monkeypatch.setattr(dev, "_runner", runner)
    monkeypatch.setattr(energy, "open_meter", lambda *a, **k: None)
    cfg = TimingConfig(warmup_runs=1, warmup_s=0.0, min_runs=5, max_s=0.05, rel_ci=0.5, round_runs=2)
    for block in (b"block-a", b"block-b"):
        m = dev.measure_onnx(block, {"x": (1, 3)}, cfg, ref_onnx=b"reference", ref_latency_ms=1.0)
        assert m.latency_ms == 0.5 and m.peak_mem_bytes == 1024
    assert built == [b"block-a", b"reference", b"block-b"]


# ---- CUDA index -> NVML handle ----------------------------------------------------------------------
class FakeCudaLib:
    """libcuda for a machine with GPUs at NVML indices 0 and 1 and CUDA_VISIBLE_DEVICES=1."""

    def __init__(self, visible):
        self.visible = visible  # CUDA ordinal -> (name, bus id, uuid bytes, cc)

    def cuInit(self, flags):
        return 0

    def cuDeviceGetCount(self, ref):
        ref._obj.value = len(self.visible)
        return 0

    def cuDeviceGet(self, ref, ordinal):
        ref._obj.value = ordinal
        return 0

    def cuDeviceGetName(self, buf, n, dev):
        buf.value = self.visible[dev.value][0].encode()
        return 0

    def cuDeviceGetPCIBusId(self, buf, n, dev):
        buf.value = self.visible[dev.value][1].encode()
        return 0

    def cuDeviceGetUuid(self, raw, dev):
        ctypes.memmove(raw, self.visible[dev.value][2], 16)
        return 0

    def cuDeviceGetAttribute(self, ref, attr, dev):
        ref._obj.value = self.visible[dev.value][3][0 if attr == 75 else 1]
        return 0


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, gpus):
        self.gpus, self.inits = gpus, 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlShutdown(self):
        self.inits -= 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetPciInfo(self, h):
        return types.SimpleNamespace(busId=self.gpus[h]["bus"].encode())

    def nvmlDeviceGetUUID(self, h):
        return self.gpus[h]["uuid"]

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self.gpus[h]["energy_mj"]

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self.gpus[h]["limit_mw"]


MACHINE = [{"bus": "00000000:07:00.0", "uuid": A100.uuid, "energy_mj": 1000, "limit_mw": 400_000},
           {"bus": "00000000:81:00.0", "uuid": H100.uuid, "energy_mj": 5000, "limit_mw": 700_000}]


def test_cuda_driver_names_the_visible_device():
    uuid = bytes.fromhex(H100.uuid[4:].replace("-", ""))
    drv = CudaDriver(FakeCudaLib({0: (H100.name, "0000:81:00.0", uuid, (9, 0))}))
    assert drv.identity(0) == H100
    with pytest.raises(OSError, match="CUDA device 1 does not exist here .1 visible"):
        drv.identity(1)


def test_nvml_handle_follows_the_bus_id_not_the_index():
    nv = FakeNvml(MACHINE)
    assert nvml_handle(nv, H100) == 1  # CUDA device 0 is NVML's device 1
    assert nvml_handle(nv, GpuIdentity(0, "x", "0000:99:00.0", A100.uuid, (8, 0))) == 0  # by UUID
    with pytest.raises(LookupError, match="no GPU at PCI bus id 0000:99:00.0"):
        nvml_handle(nv, GpuIdentity(0, "x", "0000:99:00.0", None, (8, 0)))


def test_nvml_meter_reads_the_matched_board():
    nv = FakeNvml(MACHINE)
    m = energy.NvmlMeter(0, nvml=nv, identity=H100)
    assert m.source == "nvml" and m.read_mj() == 5000 and m.power_limit_w() == 700 and m.key.endswith("0000:81:00.0")
    m.close()
    assert nv.inits == 0


@pytest.mark.parametrize("text", ["00000000:81:00.0", "0000:81:00.0", "81:00.0", b"00000000:81:00.0\x00"])
def test_bus_ids_normalise(text):
    assert normalise_bus_id(text) == "0000:81:00.0"


# ---- idle power ----------------------------------------------------------------------------------
class ClockMeter(energy.EnergyMeter):
    """Energy from a constant power and the real clock."""

    source = "nvml"

    def __init__(self, watts: float, key: str = "clock"):
        self.watts, self.key, self.reads = watts, key, 0

    def read_mj(self) -> float:
        self.reads += 1
        return time.perf_counter() * self.watts * 1e3

    def power_limit_w(self):
        return 300.0


def test_idle_power_waits_the_cool_down_first():
    slept = []
    meter = ClockMeter(40.0)

    def sleep(s):
        slept.append((s, meter.reads))
        time.sleep(s)

    w = energy.idle_power_w(meter, window_s=0.02, cooldown_s=0.03, sleep=sleep)
    assert slept == [(0.03, 0), (0.02, 1)] and w == pytest.approx(40.0, rel=0.05)


def test_idle_figure_is_reused_then_refreshed(monkeypatch):
    calls = []
    monkeypatch.setattr(energy, "idle_power_w", lambda meter, **kw: calls.append(1) or 10.0)
    monkeypatch.setattr(energy, "_IDLE", {})
    meter = ClockMeter(50.0, key="reuse")
    assert energy.idle_baseline(meter) == 10.0 and energy.idle_baseline(meter) == 10.0 and len(calls) == 1
    assert energy.idle_baseline(meter, max_age_s=0.0) == 10.0 and len(calls) == 2


def test_window_below_idle_gives_no_figure_not_zero():
    e = energy.measure_energy(lambda: time.sleep(0.001), ClockMeter(20.0), 0.02, idle_w=30.0)
    assert e.energy_mj is None and e.energy_source == "none" and e.power_w == pytest.approx(20.0, rel=0.1)
    e = energy.measure_energy(lambda: time.sleep(0.001), ClockMeter(50.0), 0.02, idle_w=30.0)
    assert e.energy_mj > 0 and e.power_limit_w == 300.0 and set(e.extra()) >= {"idle_power_w", "power_w"}


def test_onnxruntime_device_samples_idle_before_the_timing_loop(monkeypatch):
    import io

    import torch
    from hwnas.devices.timing import TimingConfig

    order = []
    real_measure = ort.measure
    monkeypatch.setattr(energy, "_IDLE", {})
    monkeypatch.setattr(energy, "open_meter", lambda *a, **k: ClockMeter(60.0, key="order"))
    monkeypatch.setattr(energy, "idle_power_w", lambda meter, **kw: order.append("idle") or 20.0)
    monkeypatch.setattr(ort, "measure", lambda *a, **k: order.append("timing") or real_measure(*a, **k))
    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), torch.randn(1, 3, 8, 8), buf, input_names=["x"], dynamo=False)
    cfg = TimingConfig(warmup_runs=1, warmup_s=0.0, min_runs=5, max_s=0.05, rel_ci=0.5, round_runs=2)
    m = ort.measure_onnx(buf.getvalue(), None, cfg, threads=1, energy_window_s=0.05)
    assert order == ["idle", "timing"]
    assert m.energy_source == "nvml" and m.energy_mj > 0 and m.extra["idle_power_w"] == 20.0


# ---- the agent on a GPU board ----------------------------------------------------------------------
def test_agent_serving_a_gpu_provider_has_no_address_space_cap():
    from hwnas.devices.agent.config import AgentConfig

    assert AgentConfig(token="x" * 32, providers=("cpu", "cuda")).max_memory_bytes is None
    assert AgentConfig(token="x" * 32, providers=("cpu",)).max_memory_bytes > 256 << 20  # CPU boards keep it
    with pytest.raises(ValueError, match="RLIMIT_AS.*CUDA cannot start") as ei:
        AgentConfig(token="x" * 32, providers=("trt",), max_memory_bytes=4096 << 20)
    assert "\n" not in str(ei.value)


def test_gpu_providers_get_timing_options_by_default():
    """What the agent's worker passes per provider (provider_options), and measure_onnx's default."""
    opts = ort.provider_options("cuda", device_index=0)
    assert opts["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    chain = ort.provider_chain("trt", ort.provider_options("trt", identity=H100))
    assert chain[0][1]["trt_engine_cache_path"].endswith(f"{H100.tag()}-fp32")


def test_the_copied_agent_modules_the_readme_lists_are_enough(tmp_path):
    """A board without the package: the README's list of modules must measure a model alone."""
    import re
    import shutil
    import subprocess
    import sys

    import torch

    repo = Path(__file__).resolve().parents[2]
    names = re.search(r"devices/\{([^}]*)\}\.py", (repo / "README.md").read_text()).group(1).split(",")
    (tmp_path / "devices").mkdir()
    for n in names:
        shutil.copy(repo / "devices" / f"{n}.py", tmp_path / "devices" / f"{n}.py")
    shutil.copytree(repo / "devices" / "agent", tmp_path / "devices" / "agent")
    import io

    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), torch.randn(1, 3, 8, 8), buf, input_names=["x"], dynamo=False)
    (tmp_path / "m.onnx").write_bytes(buf.getvalue())
    code = ("import devices.agent, devices.ort as o; from devices.timing import TimingConfig; "
            "m = o.measure_onnx(open('m.onnx','rb').read(), None, TimingConfig(min_runs=5, max_s=0.05, warmup_s=0), threads=1); "
            "print(m.peak_mem_source, m.latency_ms > 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0 and r.stdout.split() == ["ort-cpu-arena-peak", "True"], r.stderr[-1500:]


def test_tensorrt_options_name_the_engine_folder_of_the_asked_gpu(monkeypatch):
    from hwnas.devices import gpu

    asked = []
    monkeypatch.setattr(gpu, "cuda_identity", lambda i=0: asked.append(i) or (A100 if i == 1 else H100))
    path = ort.provider_options("trt", device_index=1)["trt_engine_cache_path"]
    assert asked == [1] and A100.tag() in path


def test_no_install_brings_both_onnxruntime_builds():
    """The CPU and GPU builds are one import name: the base needs neither; cpu and gpu extras bring one each."""
    import re

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    repo = Path(__file__).resolve().parents[2]
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in reqs}

    assert not {n for n in names(project["dependencies"]) if n.startswith("onnxruntime")}
    extras = {k: names(v) for k, v in project["optional-dependencies"].items()}
    assert "onnxruntime" in extras["cpu"] and "onnxruntime-gpu" in extras["gpu"]
    for name, reqs in extras.items():
        assert not ({"onnxruntime", "onnxruntime-gpu"} <= reqs), name
        if name not in ("cpu", "gpu"):
            assert not {n for n in reqs if n.startswith("onnxruntime")}, f"extra {name} pins a build"

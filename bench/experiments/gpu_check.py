"""`make gpu-check`: the GPU path end to end on a machine with an NVIDIA GPU, in one report.

1. The machine: the GPU CUDA device 0 is (name, PCI bus id, compute capability) and the
   onnxruntime build check of the CUDA and TensorRT providers (devices/ort_build.py).
2. Every GPU backend (`cuda`, `trt`, `trt:fp16`, `trt-native`, `trt-native:fp16`, `torch-cuda`)
   profiles the blocks of a small space into OUT/tables and validates that table end to end
   (whole networks timed against the table's sum: validate-lut's protocol).
3. Behaviour on a conv net, per backend: where onnxruntime ran its kernels (all on the GPU
   providers?), NVML energy per inference (> 0) with the mean power between idle and the board's
   enforced limit, and fp16 against fp32 (faster?).
Each step's failure is recorded and the others still run; the report says pass / FAIL / not
measured per item: OUT/gpu-check.md and OUT/gpu-check.json. On a machine without an NVIDIA GPU it
refuses with one line and exit status 2, before importing anything heavy.

    hwnas gpu-check --out runs/gpu-check
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..reports.writer import table, write_markdown, written_by

BACKENDS = ("cuda", "trt", "trt:fp16", "trt-native", "trt-native:fp16", "torch-cuda")
FP16_PAIRS = (("trt", "trt:fp16"), ("trt-native", "trt-native:fp16"))
GPU_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}


def detect_gpu() -> str | None:
    """None when an NVIDIA GPU is usable here, else the reason there is none (one line)."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver: libcuda.so.1 cannot be loaded"
    try:
        from hwnas.devices.gpu import CudaDriver

        n = CudaDriver(lib).count()
    except Exception as exc:  # the driver is there but CUDA cannot start
        return str(exc).splitlines()[0]
    return None if n > 0 else "the NVIDIA driver sees no GPU (CUDA_VISIBLE_DEVICES empty?)"


@dataclass
class Check:
    item: str
    status: str  # pass | FAIL | not measured
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def add(self, item: str, ok: bool | None, detail: str = "") -> None:
        self.checks.append(Check(item, "not measured" if ok is None else ("pass" if ok else "FAIL"), detail))

    def step(self, item: str, fn: Callable[[], tuple[bool | None, str]]) -> None:
        """Run one check; an exception is a FAIL with its first line, never an abort."""
        try:
            ok, detail = fn()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.facts.setdefault("tracebacks", {})[item] = traceback.format_exc(limit=4)
        self.add(item, ok, detail)

    @property
    def failed(self) -> int:
        return sum(c.status == "FAIL" for c in self.checks)

    def markdown(self) -> list[str]:
        lines = ["# GPU check", "", f"GPU: {self.facts.get('gpu', '?')}; written {self.facts.get('written_at', '?')}.", ""]
        lines += table(("item", "status", "detail"), [(c.item, c.status, c.detail.replace("|", "/")) for c in self.checks])
        return lines + ["", f"{self.failed} failed of {len(self.checks)}."]


def conv_net():
    """A small conv net (the fp16 and energy checks' workload): big enough for the GPU to work."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, 10)).eval()


CONV_INPUT = (8, 3, 128, 128)


def placement_check(m) -> tuple[bool | None, str]:
    """All kernels on the GPU providers (onnxruntime devices; others have nothing to place)."""
    cell = m.extra.get("provider_nodes")
    if not cell:
        return None, "no onnxruntime placement for this backend"
    counts = {p: int(n) for p, n in (kv.split("=") for kv in cell.split(";"))}
    off = {p: n for p, n in counts.items() if p not in GPU_PROVIDERS}
    return not off, cell


def energy_check(m) -> tuple[bool | None, str]:
    """Energy per inference > 0 and mean power above idle, within the board's enforced limit."""
    if m.energy_source == "none" or m.energy_mj is None:
        return None, f"no energy figure (source {m.energy_source})"
    p, idle, limit = m.extra.get("power_w"), m.extra.get("idle_power_w"), m.extra.get("power_limit_w")
    ok = m.energy_mj > 0 and p is not None and idle is not None and p > idle and (limit is None or p <= limit * 1.05)
    return ok, (f"{m.energy_mj:.3f} mJ/inference ({m.energy_source}); power {p:.1f} W, idle {idle:.1f} W, "
                f"limit {limit if limit is None else round(limit, 1)} W")


def fp16_check(fp32_ms: float, fp16_ms: float) -> tuple[bool, str]:
    return fp16_ms < fp32_ms, f"fp32 {fp32_ms:.3f} ms, fp16 {fp16_ms:.3f} ms ({fp32_ms / fp16_ms:.2f}x)"


def run_check(out: Path, backends=BACKENDS, space: str = "mbv3-fmnist", samples: int = 8,
              detect: Callable[[], str | None] = detect_gpu, steps: dict | None = None) -> Report:
    """Every check into one Report (written under `out`). `steps` replaces the real steps
    (`machine`, `profile`, `validate`, `conv`) in tests; see `real_steps`."""
    from hwnas.devices.table import now_iso

    reason = detect()
    if reason is not None:
        raise SystemExit(f"gpu-check: no NVIDIA GPU here ({reason}); run it on a machine with one")
    steps = steps or real_steps(out, space, samples)
    rep = Report(facts={"written_at": now_iso(), "space": space, "samples": samples, "backends": list(backends)})
    rep.step("machine: GPU and onnxruntime build", lambda: steps["machine"](rep.facts))
    conv: dict[str, object] = {}
    for b in backends:
        rep.step(f"{b}: profile {space}", lambda b=b: steps["profile"](b))
        rep.step(f"{b}: validate the table end to end", lambda b=b: steps["validate"](b))

        def run_conv(b=b):
            conv[b] = steps["conv"](b)
            return True, f"{conv[b].latency_ms:.3f} ms median"

        rep.step(f"{b}: conv net timed", run_conv)
        if b in conv:
            rep.step(f"{b}: all kernels on the GPU", lambda b=b: placement_check(conv[b]))
            rep.step(f"{b}: NVML energy and power", lambda b=b: energy_check(conv[b]))
    for lo, hi in FP16_PAIRS:
        if lo in conv and hi in conv:
            rep.step(f"{hi} faster than {lo} on the conv net", lambda lo=lo, hi=hi: fp16_check(conv[lo].latency_ms, conv[hi].latency_ms))
    out.mkdir(parents=True, exist_ok=True)
    from hwnas.core.io import atomic_write_json

    write_markdown(out / "gpu-check.md", rep.markdown(), command=written_by("hwnas gpu-check", "make gpu-check"))
    doc = {**rep.facts, "checks": [c.__dict__ for c in rep.checks], "failed": rep.failed}
    atomic_write_json(out / "gpu-check.json", doc, default=str)
    return rep


def real_steps(out: Path, space: str, samples: int) -> dict:
    from hwnas.devices.timing import TimingConfig

    timing = TimingConfig(rel_ci=0.03, max_s=2.0)
    tables = out / "tables"

    def machine(facts: dict):
        from hwnas.devices.gpu import cuda_identity
        from hwnas.devices.ort_build import check_gpu_provider, installed_builds

        ident = cuda_identity(0)
        facts.update(gpu=ident.name, **ident.info(), onnxruntime_builds=installed_builds())
        for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            check_gpu_provider(p)
        return True, f"{ident.name} sm{ident.compute_capability[0]}{ident.compute_capability[1]} at {ident.pci_bus_id}; " \
                     f"onnxruntime {installed_builds()}"

    def profile(b: str):
        from hwnas.bench.engine.profile import ProfileConfig, profile_device

        r = profile_device(b, ProfileConfig(space=space, devices=[b], out_dir=tables, timing=timing, resume=True,
                                            progress=False))
        return r["complete"], f"{r['rows']}/{r['total']} blocks, {r['unstable']} unstable, {r['wall_s']:.0f} s"

    def validate(b: str):
        from hwnas.bench.engine.validate_lut import ValidateConfig, validate
        from hwnas.bench.reports import lut_validation

        v = validate(ValidateConfig(space=space, device=b, samples=samples, out_dir=tables, timing=timing,
                                    resume=True, progress=False))
        md = lut_validation.write_report(v["base"], v["report"], v["per_network"], v["info"], v["memory"],
                                         written_by("hwnas gpu-check", "make gpu-check"))["md"]
        rep = v["report"]
        row = rep[(rep.predictor == "calibrated") & (rep.split == "test")].iloc[0]
        floor = rep[rep.predictor.str.startswith("test-retest")].iloc[0]
        return True, (f"calibrated test MAPE {row.mape_pct:.1f}% (noise floor {floor.mape_pct:.1f}%), "
                      f"tau {row.kendall_tau:.2f}; {md}")

    def conv(b: str):
        from hwnas.devices.registry import create_device

        dev = create_device(b)
        dev.energy_window_s = 2.0
        try:
            return dev.measure_module(conv_net(), CONV_INPUT, timing)
        finally:
            dev.close()

    return {"machine": machine, "profile": profile, "validate": validate, "conv": conv}


def main(out: str = "runs/gpu-check", space: str = "mbv3-fmnist", samples: int = 8,
         backends: tuple[str, ...] = BACKENDS) -> int:
    """Run the check, print one summary line; the exit status (0 passed, 1 a check failed, 2 no
    GPU here: the one-line refusal on stderr)."""
    t0 = time.perf_counter()
    try:
        rep = run_check(Path(out), tuple(backends), space, samples)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"gpu-check: {len(rep.checks) - rep.failed} of {len(rep.checks)} checks passed or not measured, "
          f"{rep.failed} failed, in {time.perf_counter() - t0:.0f} s -> {Path(out) / 'gpu-check.md'}")
    return 1 if rep.failed else 0

"""The reference network is exported once a run: its digest, the calibration and every
interleaved round read the same ONNX bytes (an export costs ~0.5 s, about a block's timing)."""

from __future__ import annotations

import hashlib

from hwnas.bench.engine.profile import block_units, calibrate, measure_unit
from hwnas.devices import export as export_mod
from hwnas.devices import reference
from hwnas.devices.export import OnnxCache
from hwnas.devices.registry import create_device
from hwnas.devices.timing import TimingConfig
from hwnas.search.spaces import create_space


def test_a_profile_run_exports_the_reference_once(tmp_path, monkeypatch):
    exported = []
    plain = export_mod.export_onnx

    def counting(module, shape, *a, **k):
        data = plain(module, shape, *a, **k)
        exported.append(hashlib.sha256(data).hexdigest()[:16])
        return data

    monkeypatch.setattr(export_mod, "export_onnx", counting)
    monkeypatch.setattr(reference, "_CACHE", {})
    cfg = TimingConfig(warmup_s=0.0, warmup_runs=1, min_runs=10, max_runs=20, round_runs=5, max_s=0.5)
    dev = create_device("cpu:threads=1")
    try:
        cal = calibrate(dev, cfg, 1)
        ref = reference.reference_module()
        units = block_units(create_space("mbv3-fmnist"))[:3]
        rows = [measure_unit(dev, u, cfg, 1, OnnxCache(tmp_path / "cache"), ref, cal["ref_latency_ms"]) for u in units]
    finally:
        dev.close()
    ref_digest = reference.reference_digest(1)
    assert cal["reference_sha256"] == ref_digest
    assert exported.count(ref_digest) == 1  # digest, calibration and the rounds of every block
    assert len(exported) == 4 and all(r["latency_norm_ms"] > 0 for r in rows)

"""The profile pipeline in-process with a scripted device: re-measuring unstable rows, --force."""

from __future__ import annotations

import pandas as pd
import pytest
from hwnas.bench.engine.profile import ProfileConfig, profile_device
from hwnas.devices import registry
from hwnas.devices.base import Device
from hwnas.devices.measurement import Measurement
from hwnas.devices.timing import TimingConfig, TimingResult


class Scripted(Device):
    """Returns canned measurements: stable only from the `stable_from`-th call on."""

    calls = 0

    def __init__(self, spec):
        self.spec, self.device_id = spec, "scripted"
        self.stable_from = int(spec.split(":")[1]) if ":" in spec else 0

    def info(self):
        return {"device": self.spec, "device_id": self.device_id, "runtime": "scripted"}

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg=TimingConfig(), ref_onnx=None, ref_latency_ms=None):
        Scripted.calls += 1
        stable = Scripted.calls > self.stable_from
        t = TimingResult([1.0, 1.1, 0.9], [], [], stable, 0.01, 0.003)
        return Measurement.from_timing(self.spec, 1, 1, t, cfg)

    def measure_module(self, module, input_shape, cfg=TimingConfig(), ref_module=None, ref_latency_ms=None,
                       cache=None, key=None, ref_input_shape=None):
        return self.measure_onnx(b"", None, cfg)


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "scripted", Scripted)
    Scripted.calls = 0
    return Scripted


def run(tmp_path, spec, **kw):
    pc = ProfileConfig(space="mbv3-fmnist", devices=[spec], out_dir=tmp_path, limit=2, reference=False,
                       progress=False, cache_dir=tmp_path / "cache", **kw)
    s = profile_device(spec, pc)
    return s, pd.read_parquet(s["path"])


def test_unstable_rows_are_remeasured_and_flagged(tmp_path, scripted):
    s, df = run(tmp_path, "scripted:1")  # first call unstable, then stable
    assert df.attempts.tolist() == [2, 1] and df.stable.all() and s["unstable"] == 0
    s, df = run(tmp_path / "b", "scripted:99")  # never stable: kept, flagged, counted
    assert df.attempts.tolist() == [2, 2] and not df.stable.any() and s["unstable"] == 2


def test_force_keeps_a_backup_of_the_replaced_table(tmp_path, scripted):
    run(tmp_path, "scripted")
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, "scripted")
    s, df = run(tmp_path, "scripted", force=True)
    backups = list((tmp_path / "mbv3-fmnist").glob("scripted.replaced-*.parquet"))
    assert len(backups) == 1 and len(pd.read_parquet(backups[0])) == 2 and len(df) == 2

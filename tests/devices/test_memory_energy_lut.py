from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hwnas.devices import energy
from hwnas.devices.export import OnnxCache, export_onnx, to_onnx
from hwnas.devices.lut import BlockTable
from hwnas.devices.memory import activation_bytes, memory_row, param_bytes
from hwnas.devices.reference import reference_digest, reference_onnx


def test_param_and_activation_bytes_are_exact_for_a_conv():
    b = export_onnx(torch.nn.Conv2d(8, 16, 3, padding=1), (1, 8, 10, 10))
    assert param_bytes(b) == (16 * 8 * 9 + 16) * 4
    assert activation_bytes(b) == (8 + 16) * 100 * 4  # input and output live together


def test_activation_peak_frees_dead_tensors():
    chain = torch.nn.Sequential(*[torch.nn.Conv2d(4, 4, 1) for _ in range(6)])
    b = export_onnx(chain, (2, 4, 8, 8))
    one = 2 * 4 * 64 * 4
    assert activation_bytes(b) == 2 * one  # never more than producer + consumer


def test_reference_is_deterministic_and_small():
    assert reference_digest() == reference_digest()
    row = memory_row(reference_onnx())
    assert 0 < row["param_bytes"] < 2_000_000 and row["activation_bytes"] > 0  # small: < 2 MB of weights


def test_export_cache_hits_by_key(tmp_path):
    cache = OnnxCache(tmp_path)
    m = torch.nn.Conv2d(2, 2, 1)
    a = to_onnx(m, (1, 2, 4, 4), cache=cache, key="k")
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    assert to_onnx(torch.nn.Identity(), (1, 2, 4, 4), cache=cache, key="k") == a  # served from cache
    to_onnx(m, (1, 2, 5, 5), cache=cache, key="k")
    assert len(list(tmp_path.glob("*.onnx"))) == 2  # the shape is part of the key


class FakeMeter(energy.EnergyMeter):
    """A counter advancing by a known power: checks the idle subtraction arithmetic."""

    source = "rapl"

    def __init__(self, watts):
        import time

        self.watts, self.t0, self.time = watts, time.perf_counter(), time

    def read_mj(self):
        return (self.time.perf_counter() - self.t0) * self.watts * 1e3


def test_energy_subtracts_idle_and_is_none_without_a_counter():
    # a window that drew no more than idle has no figure (it used to be clamped to 0 mJ)
    r = energy.measure_energy(lambda: sum(range(1000)), FakeMeter(10.0), window_s=0.1, idle_w=10.5)
    assert r.energy_source == "none" and r.energy_mj is None and r.runs > 0
    r = energy.measure_energy(lambda: None, FakeMeter(10.0), window_s=0.1, idle_w=4.0)
    assert r.energy_mj * r.runs == pytest.approx(6.0 * r.window_s * 1e3, rel=0.05)
    none = energy.measure_energy(lambda: None, None)
    assert none.energy_mj is None and none.energy_source == "none"


def test_rapl_meter_handles_wraparound(tmp_path, monkeypatch):
    z = tmp_path / "intel-rapl:0"
    z.mkdir()
    (z / "max_energy_range_uj").write_text("1000000")
    (z / "energy_uj").write_text("999000")
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    m = energy.RaplMeter(energy.rapl_zones())
    (z / "energy_uj").write_text("1000")  # wrapped: +2000 uJ
    assert m.read_mj() == pytest.approx(2.0)


class ChainStub:
    """Two-stage chain space stand-in: arch = ((choice,...), (choice,...))."""

    class B:
        def __init__(self, key):
            self.key = key

    def fixed_blocks(self):
        return [self.B("stem")]

    def blocks(self, arch):
        return [self.B(f"s{s}c{c}") for s, st in enumerate(arch) for c in st]

    def block_keys(self, arch):
        return [b.key for b in self.blocks(arch)]


def test_block_table_sums_blocks_and_fixed_parts():
    """The calibration on top of these sums is the `lut-sum` predictor (tests/predictors/test_lut.py)."""
    sp = ChainStub()
    df = pd.DataFrame({"kind": ["fixed"] + ["block"] * 6, "block_key": ["stem"] + [f"s{s}c{c}" for s in (0, 1) for c in range(3)],
                       "latency_norm_ms": [0.5, 1, 2, 3, 4, 5, 6]})
    t = BlockTable.from_frame(df)
    assert t.network_sum(sp, ((0,), (2,))) == 0.5 + 1 + 6
    with pytest.raises(LookupError, match="s0c9"):
        t.network_sum(sp, ((9,), (0,)))


def test_block_table_names_empty_cells():
    df = pd.DataFrame({"kind": ["block"], "block_key": ["a"], "latency_norm_ms": [np.nan]})
    with pytest.raises(ValueError, match="empty for 'a'"):
        BlockTable.from_frame(df)

"""validate-lut's report is the report's, not the engine's: the command hands what the engine
measured to bench/reports/lut_validation.py. From the committed validation's stored rows (nothing
timed), the command writes the committed Markdown again, line for line, and the plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.bench.engine import validate_lut
from hwnas.devices.table import read_sidecar, read_table_file

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "results" / "tables" / "mbv3-fmnist" / "cpu-t1-validation"


def _stored() -> dict:
    """What `validate_lut.validate` returned for the committed run, read back from its files."""
    per_net = pd.read_csv(BASE.with_name(BASE.name + "-per-network.csv"))
    nets = read_table_file(BASE.with_name(BASE.name + "-networks.parquet"))
    return {"report": pd.read_csv(BASE.with_suffix(".csv")), "per_network": per_net,
            "info": read_sidecar(BASE.with_suffix(".csv")),
            "memory": validate_lut.memory_comparison(nets, per_net.block_key.tolist()), "summary": "(stored)"}


def test_the_command_writes_the_report_from_what_the_engine_returns(tmp_path, monkeypatch):
    base = tmp_path / "mbv3-fmnist" / "cpu-t1-validation"
    monkeypatch.setattr(validate_lut, "validate", lambda vc: {**_stored(), "base": base, "csv": str(base) + ".csv"})
    r = CliRunner().invoke(cli, ["validate-lut", "--device", "cpu:threads=1", "--space", "mbv3-fmnist",
                                 "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    md = base.with_suffix(".md").read_text().splitlines()
    assert md[2].startswith("Written by `hwnas validate-lut --device cpu:threads=1 --space mbv3-fmnist --out-dir ")
    committed = BASE.with_suffix(".md").read_text().splitlines()
    assert md[:2] + md[3:] == committed[:2] + committed[3:]  # every other line as committed
    png = base.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1100  # 10 in at 110 dpi
    assert str(tmp_path) not in base.with_suffix(".md").read_text()

"""`hwnas.api` and `hwnas measure`: the README's example runs as written, queries read the tables
they name, and a model is timed by the suite's protocol (short settings: behaviour, not figures)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
QUICK = dict(max_s=0.5, warmup_s=0.02, min_runs=5)


def readme_api_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## From Python: query a space, time a model (`hwnas.api`)", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(data_dir, capsys):
    exec(compile(readme_api_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("{'arch_idx': 0, 'arch_str': '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|")
    assert "'accuracy': 85.86" in out[0] and "'pixel3_ms'" in out[0]
    assert "'accuracy': 94.36" in out[1]  # the cell's 200-epoch CIFAR-10 accuracy, read from the table
    assert "ms (drift-compensated)" in out[-1]


@pytest.fixture(scope="module")
def nb(data_dir):
    import hwnas.api as hw

    help_csv = data_dir / "help-latency" / "help_nasbench201_latency_ms.csv"
    return hw.open_space("nb201",
                         accuracy=f"table:{data_dir}/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc",
                         metrics={"pixel3": f"latency_ms@table:{help_csv}:pixel3"}), help_csv


def test_queries_read_the_named_tables_by_index_or_string(nb):
    space, help_csv = nb
    table = pd.read_csv(help_csv, usecols=["arch_idx", "arch_str", "pixel3"])
    by_index = space.query_by_index(4321)
    assert by_index["arch_str"] == table.arch_str[4321] and by_index["pixel3"] == table.pixel3[4321]
    by_str = space.query(table.arch_str[4321])
    assert by_str == by_index
    secs = space.values(f"latency_s@table:{help_csv}:pixel3", [4321, 7])
    assert secs == pytest.approx(table.pixel3[[4321, 7]].to_numpy() / 1000)
    assert np.array_equal(space.values("pixel3", range(3)), table.pixel3[:3].to_numpy())


def test_unknown_metrics_and_archs_are_one_clear_error(nb):
    space, _ = nb
    with pytest.raises(KeyError, match="metric 'speed': not a named metric"):
        space.query(0, "speed")
    with pytest.raises(ValueError):
        space.query("|bogus~0|", "accuracy")


def test_a_block_table_device_id_is_a_metric():
    import hwnas.api as hw

    mb = hw.open_space("mbv3-fmnist", tables_dir=REPO / "results" / "tables")
    if not (REPO / "results/tables/mbv3-fmnist/cpu-t1.parquet").exists():
        pytest.skip("no committed cpu-t1 table")
    from hwnas.search.constraints import resolve

    arch = "k3e1-k5e6|k7e3-k3e3-k3e3|k5e1"
    (b,) = resolve(mb.space, ["latency_ms<=1@cpu-t1"], REPO / "results" / "tables")
    assert mb.query(arch, "latency_ms@cpu-t1")["latency_ms@cpu-t1"] == pytest.approx(
        b.values([mb.space.from_str(arch)])[0])


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(1, 3, 16, 16),), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    path.write_bytes(buf.getvalue())
    return path, net


def test_measure_command_writes_a_row_and_a_summary(tiny_onnx, tmp_path):
    from hwnas.bench.cli import cli

    model, _ = tiny_onnx
    quick = ["--max-s", "0.5", "--warmup-s", "0.02", "--min-runs", "5"]
    r = CliRunner().invoke(cli, ["measure", str(model), *quick])
    assert r.exit_code == 2 and "input 'x' has a dynamic shape (batchx3x16x16)" in r.output
    out = tmp_path / "rows.parquet"
    for extra in ([], ["--no-reference"]):
        r = CliRunner().invoke(cli, ["measure", str(model), "--input-shape", "2x3x16x16", *quick, *extra,
                                     "--out", str(out)])
        assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.startswith("tiny.onnx on cpu:threads=1 (batch 2): ") and "raw median (no reference)" in first
    rows = pd.read_parquet(out)
    assert len(rows) == 2 and list(rows.columns[:4]) == ["model", "model_sha256", "device", "batch"]
    with_ref, raw = rows.iloc[0], rows.iloc[1]
    assert with_ref.latency_norm_ms > 0 and with_ref.ref_latency_ms > 0 and pd.isna(raw.latency_norm_ms)
    assert (rows.batch == 2).all() and (rows.latency_ms > 0).all()
    # memory and energy: a figure with its source, or empty with source "none"
    for _, row in rows.iterrows():
        assert (row.energy_source == "none") == pd.isna(row.energy_mj)
        assert (row.peak_mem_source == "none") == pd.isna(row.peak_mem_bytes)


def test_measure_from_python_takes_a_module_or_onnx(tiny_onnx):
    from hwnas.devices.timing import TimingConfig

    import hwnas.api as hw

    model, net = tiny_onnx
    cfg = TimingConfig(**QUICK)
    m = hw.measure(net, "cpu:threads=1", input_shape=(1, 3, 16, 16), timing=cfg, reference=False)
    assert m.batch == 1 and m.latency_ms > 0 and m.latency_norm_ms is None
    m = hw.measure(model.read_bytes(), "cpu:threads=1", input_shape=(3, 3, 16, 16), timing=cfg)
    assert m.batch == 3 and m.latency_norm_ms > 0
    with pytest.raises(ValueError, match="input shape"):
        hw.measure(net, "cpu:threads=1", timing=cfg)

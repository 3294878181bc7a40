"""`hwnas data`: the catalogue matches the files the committed results used, and a machine's
data folder is reported file by file as present, missing, checksum mismatch or columns missing."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.bench.engine.datasets import CATALOGUE, check


def test_the_catalogue_names_the_shared_files_by_their_checksums(data_dir):
    tables = [ds for ds in CATALOGUE if ds.root == "$HWNAS_DATA_DIR"]
    present = [ds for ds in tables if (data_dir / ds.path).is_file()]
    if not present:
        pytest.skip("no shared data here")
    assert {check(ds)["status"] for ds in present} == {"present"}
    listed = {str(p.relative_to(data_dir)) for p in data_dir.glob("*/*.csv")}
    assert listed <= {ds.path for ds in tables}, "a shared data file the catalogue does not list"


def test_a_data_folder_is_checked_file_by_file(data_dir, tmp_path, monkeypatch):
    good = "nb201-supernet-estimates/nb201_cifar10_oneshot_supernet.csv"
    other = "nb201-acc-200ep/nb201_cifar10_200ep.csv"
    wrong_cols = "nb201-acc-12ep-minibench/nb201_cifar10_12ep.csv"
    for rel in (good, other, wrong_cols):
        (tmp_path / rel).parent.mkdir(parents=True)
    shutil.copy(data_dir / good, tmp_path / good)
    (tmp_path / other).write_text("arch_idx,arch_str,cifar10_test_acc\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10.0\n")
    (tmp_path / wrong_cols).write_text("arch_idx,arch_str,acc\n")
    monkeypatch.setenv("HWNAS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HWNAS_FMNIST_DIR", str(tmp_path / "no-images"))
    r = CliRunner().invoke(cli, ["data"])
    assert r.exit_code == 0, r.output
    status = {line[19:].split()[0]: line[:18].strip() for line in r.output.splitlines()[1:-1]}
    assert status[good] == "present"
    assert status[other] == "checksum mismatch"
    assert status[wrong_cols] == "columns missing"
    assert status["help-latency/help_nasbench201_latency_ms.csv"] == "missing"
    assert "lacks cifar10-test, cifar10-val" in r.output
    counts, _, hint = r.output.splitlines()[-1].partition("; ")
    assert set(counts.split(", ")) == {"1 present", "1 checksum mismatch", "1 columns missing", "7 missing"}
    assert "README 'Data on a new machine'" in hint

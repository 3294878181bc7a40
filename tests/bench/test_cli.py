from __future__ import annotations

import subprocess
import sys

import pytest


def hwnas(*args):
    return subprocess.run([sys.executable, "-m", "hwnas.bench.cli", *args], capture_output=True, text=True)


def test_spaces_lists_every_space_with_its_size():
    r = hwnas("spaces")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:]}
    assert rows["nb201"] == "15,625"
    assert rows["mbv3-fmnist"] == "549,353,259"  # (9 + 9^2 + 9^3)^3: depth 1-3, 9 choices per block
    assert set(rows) >= {"mbv3-imagenet", "fbnet"}


@pytest.mark.parametrize("cmd", [["--help"], ["spaces", "--help"], ["tables", "import", "--help"],
                                 ["profile", "--help"], ["supernet", "train", "--help"],
                                 ["predictors", "evaluate", "--help"], ["search", "--help"]])
def test_every_subcommand_documents_itself(cmd):
    r = hwnas(*cmd)
    assert r.returncode == 0 and "Usage:" in r.stdout


def test_unknown_space_is_one_line():
    r = hwnas("tables", "import", "--space", "nb-201", "x.csv")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "unknown space 'nb-201'" in r.stderr

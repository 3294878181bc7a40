"""A search method from a package that is not hwnas, registered through an entry point, is listed
by `hwnas search --method` and runs; a plugin that fails to load is skipped with a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.fakes import install_plugin

REPO = Path(__file__).resolve().parents[2]

PLUGIN = '''
"""A third-party method: best of the budget's feasible archs, sampled in pairs."""
import numpy as np
from hwnas.search.methods import Searcher
from hwnas.search.methods.base import sample_feasible


class BestOfPairs(Searcher):
    hwnas_meta = {"supports": ("any",), "kind": "query"}

    def _search(self, space, accuracy, constraints, budget, rng):
        archs = sample_feasible(space, constraints, rng, budget)
        acc = accuracy.query(archs)
        return archs[int(np.argmax(acc))], None, "from hwnas-plugin-demo"
'''


def _install_plugin(site: Path) -> None:
    install_plugin(site, "hwnas_plugin_demo", PLUGIN, "[hwnas.methods]\nbest-of-pairs = hwnas_plugin_demo:BestOfPairs\n"
                   "broken = hwnas_plugin_missing:Nothing\n")


def _hwnas(site: Path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "hwnas.bench.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_an_entry_point_method_is_listed_and_runs(tmp_path, data_dir):
    site = tmp_path / "site"
    _install_plugin(site)
    acc = f"table:{data_dir}/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc"
    con = f"latency_ms<=8@table:{data_dir}/help-latency/help_nasbench201_latency_ms.csv:pixel3"
    common = ["--space", "nb201", "--accuracy", acc, "--constraint", con, "--budget", "10", "--seeds", "1"]

    r = _hwnas(site, "search", "--method", "zzz", *common, "--out", str(tmp_path / "none"))
    assert r.returncode == 2
    known = r.stderr.split("known:", 1)[1]
    assert "best-of-pairs" in known and "random" in known
    assert "plugin 'broken'" in r.stderr and "hwnas_plugin_missing" in r.stderr  # skipped, said once

    r = _hwnas(site, "-q", "search", "--method", "best-of-pairs", *common, "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    row = pd.read_csv(tmp_path / "runs" / "runs.csv").iloc[0]
    assert row.method == "best-of-pairs" and row.notes.startswith("from hwnas-plugin-demo")
    assert row.feasible and row.queries == 10 and row.cost <= 8


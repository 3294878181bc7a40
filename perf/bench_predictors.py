"""Fit on 1000 NB201 archs + predict all 15,625, per registered predictor (`make bench`).

Target: under a minute for every predictor except the GCN. Medians over rounds go to
results/predictors/fit_time.md. The target is the 200-epoch CIFAR-10 accuracy when the shared
table is present, else a fixed synthetic additive target (said in the file).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import pytest
from hwnas.core import paths
from hwnas.predictors.base import create_predictor, list_predictors
from hwnas.search.spaces import create_space

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "predictors" / "fit_time.md"
ROUNDS = 3
_rows: dict[str, dict] = {}


@pytest.fixture(scope="module")
def data():
    sp = create_space("nb201")
    archs = list(sp.iter_all())
    table = paths.data_dir() / "nb201-acc-200ep/nb201_cifar10_200ep.csv"
    if table.exists():
        import pandas as pd

        y = pd.read_csv(table)["cifar10_test_acc"].to_numpy(np.float64)  # official index order
        source = f"`{table.name}` (cifar10_test_acc)"
    else:
        w = np.random.default_rng(0).normal(size=30)
        y = sp.encode_many(archs) @ w
        source = "synthetic additive target (shared table not found)"
    train = np.random.default_rng(0).permutation(len(archs))[:1000]
    yield archs, y, train, source
    _write(source)


def _write(source: str) -> None:
    if not _rows:
        return
    lines = ["# Predictor fit + predict time (NB201)", "",
             f"Fit on 1000 archs, predict all 15,625; target: {source}. Median (min-max) over rounds, "
             f"wall seconds, on `{platform.processor() or platform.machine()}`, {os.cpu_count()} cores shared with "
             "other jobs. Written by `make bench` (perf/bench_predictors.py).", "",
             "| predictor | rounds | fit s | predict s | total s | under 60 s |", "|---|---:|---:|---:|---:|---|"]
    for name in sorted(_rows):
        r = _rows[name]
        f, p = np.asarray(r["fit"]), np.asarray(r["predict"])
        t = f + p
        lines.append(f"| {name} | {len(t)} | {np.median(f):.2f} ({f.min():.2f}-{f.max():.2f}) | "
                     f"{np.median(p):.2f} | {np.median(t):.2f} | {'yes' if np.median(t) < 60 else 'no'} |")
    from hwnas.bench.reports.writer import write_markdown

    write_markdown(OUT, lines, command="make bench")


@pytest.mark.parametrize("name", list_predictors())
def test_fit_1000_predict_all(benchmark, data, name):
    archs, y, train, _ = data
    rec = _rows.setdefault(name, {"fit": [], "predict": []})

    def run():
        p = create_predictor(name, space="nb201", seed=0)
        t0 = time.perf_counter()
        p.fit([archs[i] for i in train], y[train])
        t1 = time.perf_counter()
        pred = p.predict(archs)
        rec["fit"].append(t1 - t0)
        rec["predict"].append(time.perf_counter() - t1)
        return pred

    pred = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert pred.shape == (15625,) and np.isfinite(pred).all()
    if not name.startswith("gcn"):
        assert np.median(np.add(rec["fit"], rec["predict"])) < 60, f"{name} over a minute"

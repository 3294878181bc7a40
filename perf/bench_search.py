"""A search's cost as its budget grows (`make bench`): random search and regularised evolution on
NB201 (200-epoch CIFAR-10 accuracy) under a 25% latency bound (the 25% quantile of HELP's pixel3
latency over all 15,625 cells), at 500, 2,000, 8,000 and 15,625 queries, and the command
`hwnas search --space nb201 --method random,evolution --budget 15625 --seeds 1` end to end.

Target: under 10 s per run at 15,625 queries; the cost should grow no faster than the budget
(before the sampler drew without replacement from the unread feasible set it grew with the
budget's square: 500 queries 3 s, 8,000 67 s, 15,625 241 s). Figures go to results/bench/search.md
with the load average, since the machine may be shared.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hwnas.core import paths

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "results" / "bench" / "search.md"
BUDGETS = (500, 2000, 8000, 15625)
METHODS = ("random", "evolution")
TARGET_S = 10.0
_rows: list[dict] = []
_command: dict = {}


@pytest.fixture(scope="module")
def problem():
    from hwnas.bench.engine.search import bound_at_quantile
    from hwnas.search.methods import create_method
    from hwnas.search.spaces import create_space

    data = paths.data_dir()
    acc = data / "nb201-acc-200ep" / "nb201_cifar10_200ep.csv"
    lat = data / "help-latency" / "help_nasbench201_latency_ms.csv"
    if not (acc.exists() and lat.exists()):
        pytest.skip(f"the NB201 accuracy and HELP latency tables are not under {data} (HWNAS_DATA_DIR)")
    space = create_space("nb201")
    bound = bound_at_quantile(space, "latency_ms", f"table:{lat}:pixel3", 0.25)
    create_method("random")  # imports every method module once (torch among them), outside the timings
    yield {"accuracy": f"table:{acc}:cifar10_test_acc",
           "constraint": f"latency_ms<={bound:.6g}@table:{lat}:pixel3", "bound": bound}
    _write(bound)


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("method", METHODS)
def test_search_cost_by_budget(benchmark, problem, method, budget):
    from hwnas.search.constraints import resolve
    from hwnas.search.methods import create_method
    from hwnas.search.methods.base import TableAccuracy
    from hwnas.search.spaces import create_space

    space = create_space("nb201")
    constraints = resolve(space, [problem["constraint"]])
    load0 = os.getloadavg()[0]

    def run():
        acc = TableAccuracy(space, problem["accuracy"])
        c0, t0 = time.process_time(), time.perf_counter()
        r = create_method(method).search(space, acc, constraints, budget=budget, seed=0)
        return r, time.perf_counter() - t0, time.process_time() - c0

    r, wall, cpu = benchmark.pedantic(run, rounds=1, iterations=1)
    _rows.append({"method": method, "budget": budget, "queries": r.queries, "wall_s": wall, "cpu_s": cpu,
                  "accuracy": r.accuracy, "load": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"})
    assert r.feasible and r.queries <= budget
    assert cpu < TARGET_S, f"{method} at {budget} queries took {cpu:.1f} CPU s"


def test_search_command_end_to_end(benchmark, problem):
    """The issue's command as a user runs it: a fresh process, both methods, one seed each."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "hwnas.bench.cli", "-q", "search", "--space", "nb201", "--method",
               ",".join(METHODS), "--accuracy", problem["accuracy"], "--constraint", problem["constraint"],
               "--budget", "15625", "--seeds", "1", "--out", tmp]
        load0 = os.getloadavg()[0]

        def run():
            t0 = time.perf_counter()
            p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
            return p, time.perf_counter() - t0

        p, wall = benchmark.pedantic(run, rounds=1, iterations=1)
        assert p.returncode == 0, p.stderr[-2000:]
        runs = pd.read_csv(Path(tmp) / "runs.csv")
    _command.update(wall_s=wall, load=f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
                    runs={r.method: (r.wall_seconds, r.search_cpu_s, r.queries) for r in runs.itertuples()})
    assert len(runs) == len(METHODS)
    assert (runs.search_cpu_s < TARGET_S).all(), runs[["method", "wall_seconds", "search_cpu_s"]].to_string()


def _write(bound: float) -> None:
    if not _rows and not _command:
        return
    proc = platform.processor() or platform.machine()
    lines = ["# Search cost by budget (NB201)", "",
             f"Random search and regularised evolution (defaults), seed 0, on NB201 with the 200-epoch CIFAR-10 "
             f"accuracy table, under `latency_ms<={bound:.6g}` on HELP's pixel3 (the 25% quantile: 3,907 of the "
             f"15,625 cells are feasible, so budgets past that read every feasible cell). Host {proc}, "
             f"{os.cpu_count()} cores. Regenerate: `make bench` (perf/bench_search.py).",
             "",
             "The machine may be shared with other jobs (load average given): wall seconds grow with the load, CPU "
             "seconds much less. Target: under 10 s per run at 15,625 queries. Before the sampler drew without "
             "replacement from the unread feasible set, a random search cost 3 s at 500 queries, 67 s at 8,000 and "
             "241 s at 15,625 (figures from the issue that reported it, not re-measured here).", ""]
    if _rows:
        lines += ["| method | budget | queries read | wall s | CPU s | accuracy | load 1m |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in sorted(_rows, key=lambda r: (r["method"], r["budget"])):
            lines.append(f"| {r['method']} | {r['budget']} | {r['queries']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
                         f"{r['accuracy']:.2f} | {r['load']} |")
    if _command:
        lines += ["", f"`hwnas search --space nb201 --method {','.join(METHODS)} --budget 15625 --seeds 1` under the "
                  f"same bound, end to end in a fresh process: {_command['wall_s']:.1f} s wall in all (start-up and "
                  f"imports included), load {_command['load']}.", "",
                  "| method | run wall s | run CPU s | queries |", "|---|---:|---:|---:|"]
        for m, (w, c, q) in _command["runs"].items():
            lines.append(f"| {m} | {w:.2f} | {c:.2f} | {q} |")
    from hwnas.bench.reports.writer import write_markdown

    write_markdown(REPORT, lines, command="make bench")

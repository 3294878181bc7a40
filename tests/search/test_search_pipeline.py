from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli

from tests import needs


def _args(nb201_tables, out, *extra):
    acc, lat, _, _ = nb201_tables
    return ["search", "--space", "nb201", "--method", "random,evolution", "--accuracy", f"table:{acc}:acc",
            "--constraint", f"latency_ms<=6@table:{lat}:dev", "--budget", "30", "--seeds", "2", "--out", str(out),
            "--param", "evolution.population=10", *extra]


def test_search_writes_runs_with_regret_and_resumes(nb201_tables, tmp_path):
    r = CliRunner().invoke(cli, _args(nb201_tables, tmp_path))
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 4 and runs.feasible.all() and (runs.queries <= 30).all()
    _, _, acc, lat = nb201_tables
    assert runs.optimum_accuracy.to_numpy() == pytest.approx([acc[lat <= 6].max()] * 4)
    assert (runs.regret >= -1e-9).all()
    traj = pd.read_parquet(tmp_path / "trajectories.parquet")
    assert traj.groupby(["method", "seed"]).query.max().max() == 30
    # resume: nothing runs again, the rows stay the same
    r2 = CliRunner().invoke(cli, _args(nb201_tables, tmp_path))
    assert r2.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "runs.csv"), runs)


@pytest.mark.parametrize("change, message", [
    (("--method", "annealing"), "unknown method 'annealing'"),
    (("--constraint", "latency<=6@cpu"), "has no unit"),
    (("--param", "evolution=3"), "METHOD.PARAM=VALUE"),
    (("--budget", "x"), "--budget must be comma-separated integers"),
])
def test_bad_input_is_one_line_and_nonzero(nb201_tables, tmp_path, change, message):
    args = _args(nb201_tables, tmp_path)
    i = args.index(change[0])
    args[i + 1] = change[1]
    if change[0] == "--constraint":
        args += ["--constraint", change[1]]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_leaderboard_report_and_plot_from_runs(nb201_tables, tmp_path):
    from hwnas.bench.engine import search
    from hwnas.bench.experiments import leaderboard
    from hwnas.bench.reports import board_stats

    acc, lat, _, _ = nb201_tables
    c = f"latency_ms<=6@table:{lat}:dev"
    df = search.run("nb201", ["random", "evolution"], f"table:{acc}:acc", [c], (20,), 3,
                    tmp_path / "runs", params={"evolution": {"population": 8}}, progress=False)
    df["device"], df["quantile"] = "dev", 0.25
    cells = leaderboard._cell_stats(df)
    ev = cells[cells.method == "evolution"].iloc[0]
    rnd = df[df.method == "random"].set_index("seed").regret
    evo = df[df.method == "evolution"].set_index("seed").regret
    assert ev.regret_mean == pytest.approx(evo.mean()) and ev.ci_low <= ev.regret_mean <= ev.ci_high
    tests = board_stats.paired_table(df, leaderboard._pairs(df))
    t = tests.set_index(["method", "baseline"]).loc[("evolution", "random")]
    assert t.pairs == 3 and t.mean_diff == pytest.approx((evo - rnd).mean()) and t.verdict in ("below", "tied", "above")
    md = "\n".join(leaderboard._markdown(df, "nb201", (0.25,), f"table:{acc}:acc", None, cells, None, 3, (20,),
                                         tests))
    assert "## `latency_ms<=6@dev` (25% quantile)" in md and "| random | 20 | 3 |" in md and "Exact optimum" in md
    assert board_stats.describe(t) in md and "Search reads `acc` (acc.csv)" in md
    assert "0 infeasible picks" in md and "mgas" in md  # the one-shot methods' line
    leaderboard._plot_cells(cells, None, tmp_path / "t.png", "nb201")
    assert (tmp_path / "t.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["process", "ray"])
def test_parallel_executors_give_the_serial_rows(nb201_tables, tmp_path, executor):
    if executor == "ray":
        needs.ray()
    from hwnas.bench.engine import search

    acc, lat, _, _ = nb201_tables
    args = ("nb201", ["random", "evolution"], f"table:{acc}:acc", [f"latency_ms<=6@table:{lat}:dev"], (15,), 2)
    kw = dict(params={"evolution": {"population": 5}}, progress=False)
    serial = search.run(*args, tmp_path / "s", **kw)
    parallel = search.run(*args, tmp_path / "p", executor=executor, workers=2, **kw)
    cols = ["method", "seed", "arch_str", "accuracy", "queries", "regret"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])


def test_truth_scores_the_picks_and_regret_is_a_hand_computation(nb201_tables, tmp_path):
    """--accuracy is what methods read, --truth scores the picks: a source that is the truth
    plus a per-cell distortion; regret = truth's feasible max - truth of the pick, by hand."""
    import numpy as np

    acc_path, lat_path, acc, lat = nb201_tables
    src = pd.read_csv(acc_path)
    rng = np.random.default_rng(7)
    src["acc"] = src["acc"] + rng.normal(0, 2.0, len(src))  # a noisy estimate, like a supernet's
    src_path = tmp_path / "noisy.csv"
    src.to_csv(src_path, index=False)
    out = tmp_path / "runs"
    r = CliRunner().invoke(cli, ["search", "--space", "nb201", "--method", "random", "--accuracy",
                                 f"table:{src_path}:acc", "--truth", f"table:{acc_path}:acc", "--constraint",
                                 f"latency_ms<=6@table:{lat_path}:dev", "--budget", "25", "--seeds", "3",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(out / "runs.csv")
    from hwnas.search.spaces import create_space

    sp = create_space("nb201")
    idx = [sp.to_index(sp.from_str(s)) for s in runs.arch_str]
    opt = acc[lat <= 6].max()  # the truth's exact constrained optimum, by hand
    assert runs.accuracy.to_numpy() == pytest.approx(src.acc.to_numpy()[idx])  # as read
    assert runs.true_accuracy.to_numpy() == pytest.approx(acc[idx])
    assert runs.optimum_accuracy.to_numpy() == pytest.approx([opt] * 3)
    assert runs.regret.to_numpy() == pytest.approx(opt - acc[idx])


def test_runs_of_an_older_method_version_are_set_aside_and_redone(nb201_tables, tmp_path):
    """A resumed board never mixes runs of old and new method code: rows whose method_version is
    not the method's current one move to superseded-runs.csv and run again; the board says so."""
    from hwnas.bench.engine import search
    from hwnas.bench.experiments import leaderboard

    acc, lat, _, _ = nb201_tables
    args = ("nb201", ["random", "evolution"], f"table:{acc}:acc", [f"latency_ms<=6@table:{lat}:dev"], (15,), 2)
    kw = dict(params={"evolution": {"population": 5}}, progress=False)
    first = search.run(*args, tmp_path, **kw)
    assert (first.method_version == 1).all()
    runs = pd.read_csv(tmp_path / "runs.csv")
    runs.loc[runs.method == "evolution", "method_version"] = 0  # as if made by an earlier evolution
    runs.to_csv(tmp_path / "runs.csv", index=False)
    again = search.run(*args, tmp_path, **kw)
    old = pd.read_csv(tmp_path / "superseded-runs.csv")
    assert len(old) == 2 and set(old.method) == {"evolution"} and (old.method_version == 0).all()
    assert len(again) == 4 and (again.method_version == 1).all()
    cols = ["method", "seed", "arch_str", "regret"]
    pd.testing.assert_frame_equal(again.sort_values(cols)[cols].reset_index(drop=True),
                                  first.sort_values(cols)[cols].reset_index(drop=True))  # same code, same rows
    line = leaderboard._versions_line(again, tmp_path)
    assert "evolution v1" in line and "2 earlier runs" in line and "Mixed" not in line


def test_method_versions_can_differ_per_space():
    """BINAS and GCN changed what they read on cell spaces only (version 3 there): runs on chain
    spaces keep version 1 and are not redone."""
    from hwnas.bench.engine.search import method_version
    from hwnas.search.spaces import create_space

    nb, chain = create_space("nb201"), create_space("mbv3-fmnist")
    assert method_version("binas", nb) == 3 and method_version("gcn", nb) == 3
    assert method_version("binas", chain) == 1 and method_version("gcn", chain) == 1
    assert method_version("random", nb) == 1 and method_version("dinas", chain) == 2
    with pytest.raises(ValueError, match="per space"):
        method_version("binas")

"""`hwnas search` records what each query read and draws the regret and reads plots; `hwnas plot`
redraws them from a folder."""

from __future__ import annotations

import matplotlib.image as mpimg
import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli


def test_search_draws_regret_and_reads(data_dir, tmp_path):
    help_csv = data_dir / "help-latency" / "help_nasbench201_latency_ms.csv"
    out = tmp_path / "runs"
    r = CliRunner().invoke(cli, [
        "-q", "search", "--space", "nb201", "--method", "random,evolution", "--budget", "12", "--seeds", "2",
        "--accuracy", f"table:{data_dir}/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc",
        "--constraint", f"latency_ms<=6@table:{help_csv}:pixel3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "plots: regret.png, reads.png" in r.output
    for name in ("regret.png", "reads.png"):
        img = mpimg.imread(out / name)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 0  # drawn, not blank

    traj, runs = pd.read_parquet(out / "trajectories.parquet"), pd.read_csv(out / "runs.csv")
    lat = pd.read_csv(help_csv, usecols=["arch_str", "pixel3"]).set_index("arch_str").pixel3
    assert len(traj) == 4 * 12 and traj.read_cost.notna().all()
    assert traj.read_cost.to_numpy() == pytest.approx(lat[traj.arch_str].to_numpy())  # the cost of what was read
    for _, run in runs.iterrows():  # each pick is among the run's reads, and its best-so-far is the pick's value
        mine = traj[(traj.method == run.method) & (traj.seed == run.seed)]
        assert run.arch_str in set(mine.arch_str)
        assert mine.best_accuracy.iloc[-1] == pytest.approx(run.accuracy)

    (out / "regret.png").unlink()
    r = CliRunner().invoke(cli, ["plot", str(out)])
    assert r.exit_code == 0 and (out / "regret.png").exists()


def test_plot_of_a_folder_without_runs_is_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["plot", str(tmp_path)])
    assert r.exit_code == 2 and "no runs.csv and trajectories.parquet" in r.output

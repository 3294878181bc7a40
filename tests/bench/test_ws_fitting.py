"""The GCN-fitting report (bench/experiments/ws_fitting.py) from rows, without fitting anything."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _rows():
    rows = [{"model": "supernet (raw estimates)", "n_train": 0, "seed": 0, "tau_all": 0.48, "tau_top5": -0.2,
             "top1_true_acc": 91.0, "fit_seconds": 0.0}]
    for s in range(2):
        for n in (100, 1000):
            for m, t in (("gcn", 0.5), ("ridge-struct", 0.4), ("hgb-struct", 0.45)):
                rows.append({"model": m, "n_train": n, "seed": s, "tau_all": t + 0.01 * s + n / 1e5,
                             "tau_top5": 0.0, "top1_true_acc": 92.0, "fit_seconds": 1.0})
    return pd.DataFrame(rows)


def test_report_says_what_fitting_does_and_plots(tmp_path):
    from hwnas.bench.experiments import ws_fitting

    df = _rows()
    truth = np.linspace(80, 94.37, 1000)
    md = "\n".join(ws_fitting._markdown(df, truth, 2, 300))
    assert "N=100: 2" in md and "hgb-struct (best other) | 100 |" in md
    assert "- N = 1000: GCN tau 0.515 (all)" in md and "improves the ranking over all cells" in md
    ws_fitting._plot(df, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_the_command_refuses_bad_sizes_with_one_line(tmp_path):
    """`hwnas predictors ws-fitting` (what `make predictors` runs) checks its input before fitting."""
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    r = CliRunner().invoke(cli, ["predictors", "ws-fitting", "--out", str(tmp_path), "--sizes", "100,many"])
    assert r.exit_code == 2 and "--sizes must be comma-separated integers" in r.output
    assert not any(tmp_path.iterdir())

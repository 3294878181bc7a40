"""`hwnas predictors evaluate`: outputs, determinism, resume, and one-line errors on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.engine.predictors import COLUMNS, TIMING_COLUMNS, evaluate
from hwnas.bench.reports.predictor_report import report_evaluation
from hwnas.search.spaces import create_space


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """300 NB201 cells with a synthetic accuracy and a latency (a fixture, not benchmark data)."""
    sp = create_space("nb201")
    rng = np.random.default_rng(0)
    archs = sp.sample_many(300, rng)
    w = rng.normal(size=30)
    X = sp.encode_many(archs)
    d = tmp_path_factory.mktemp("tables")
    df = pd.DataFrame({"arch_idx": [sp.to_index(a) for a in archs], "acc": 80 + X @ w,
                       "dev_a_latency_ms": 5 + X @ np.abs(w), "dev_b_latency_ms": 3 + 2 * X @ np.abs(w)})
    df.to_csv(d / "t.csv", index=False)
    return d / "t.csv"


class _Result:
    def __init__(self, r):
        self.returncode, self.stdout, self.stderr = r.exit_code, r.stdout, r.stderr


def hwnas(*args):
    """In-process CLI call (the same click group and error handling as `hwnas`, no interpreter start)."""
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    return _Result(CliRunner().invoke(cli, list(args)))


def run(table, out, **kw):
    """The engine's rows, then the report of the folder (as `hwnas predictors evaluate` does)."""
    df = evaluate("nb201", str(table), kw.pop("target", "acc"), out, progress=False,
                  **{"predictors": ["ridge", "xgb-struct", "bilinear"], "train_sizes": (10, 50), "seeds": 2, **kw})
    report_evaluation(df, out)
    return df


def test_writes_csv_summary_and_plot(small_table, tmp_path):
    df = run(small_table, tmp_path / "o")
    csv = pd.read_csv(tmp_path / "o" / "rank_correlation.csv")
    assert list(csv.columns) == COLUMNS and len(csv) == 3 * 2 * 2 == len(df)
    assert (csv.n_test == 300 - csv.train_size).all()
    assert csv.within_10pct.isna().all()  # accuracy target: not measured, left empty
    assert (tmp_path / "o" / "learning_curve.png").stat().st_size > 1000
    assert "| ridge | 50 | 2 |" in (tmp_path / "o" / "summary.md").read_text()


def test_same_seeds_identical_csv_except_timings(small_table, tmp_path):
    a = run(small_table, tmp_path / "a").drop(columns=TIMING_COLUMNS)
    b = run(small_table, tmp_path / "b").drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(a, b)


def test_resume_keeps_rows_and_fills_the_rest(small_table, tmp_path):
    run(small_table, tmp_path / "r", predictors=["ridge"])
    before = pd.read_csv(tmp_path / "r" / "rank_correlation.csv")
    df = run(small_table, tmp_path / "r", predictors=["ridge", "bilinear"])
    pd.testing.assert_frame_equal(df[df.predictor == "ridge"].reset_index(drop=True), before)
    assert len(df) == 8


def test_resume_refuses_another_version_of_a_table_and_fresh_restarts(small_table, tmp_path):
    """The config fingerprints the input tables: rows computed on one version of a table (or of
    a prior table) are never mixed with rows of another; --fresh recomputes them all."""
    import json
    import shutil

    table, prior = tmp_path / "t.csv", tmp_path / "p.csv"
    shutil.copy(small_table, table)
    shutil.copy(small_table, prior)
    kw = dict(target="dev_a_latency_ms", predictors=["ridge"], seeds=1, prior_tables=[f"{prior}:dev_b_latency_ms"])
    first = run(table, tmp_path / "o", **kw)
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert {Path(k).name for k in cfg["sha256"]} == {"t.csv", "p.csv"}  # paths written portably
    pd.testing.assert_frame_equal(run(table, tmp_path / "o", **kw), first)  # same bytes: resumes
    df = pd.read_csv(prior)
    df["dev_b_latency_ms"] *= 1.5  # same path, same columns, other contents
    df.to_csv(prior, index=False)
    with pytest.raises(ValueError, match=r"other contents of .*p\.csv \(sha256 .*--fresh"):
        run(table, tmp_path / "o", **kw)
    df = pd.read_csv(table)
    df["dev_a_latency_ms"] = df["dev_a_latency_ms"][::-1].to_numpy()
    df.to_csv(table, index=False)
    again = run(table, tmp_path / "o", fresh=True, **kw)
    assert len(again) == len(first) and not np.allclose(again.kendall_tau, first.kendall_tau)
    assert json.loads((tmp_path / "o" / "config.json").read_text())["sha256"] != cfg["sha256"]
    pd.testing.assert_frame_equal(run(table, tmp_path / "o", **kw), again)  # resumes on the new version


def test_resume_refuses_a_folder_written_before_fingerprints(small_table, tmp_path):
    import json

    run(small_table, tmp_path / "o", predictors=["ridge"], seeds=1)
    cfg_path = tmp_path / "o" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["sha256"]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="before input tables were fingerprinted.*--fresh"):
        run(small_table, tmp_path / "o", predictors=["ridge"], seeds=1)


def test_cost_mode_and_prior_tables(small_table, tmp_path):
    df = run(small_table, tmp_path / "c", target="dev_a_latency_ms", predictors=["transfer", "lut-sum"],
             prior_tables=[f"{small_table}:dev_b_latency_ms"])
    assert df.within_10pct.notna().all()
    t = df[df.predictor == "transfer"]
    assert (t.spearman > 0.99).all()  # dev_a is an exact affine function of dev_b


def test_cli_runs(small_table, tmp_path):
    r = hwnas("predictors", "evaluate", "--space", "nb201", "--table", f"table:{small_table}:acc",
              "--predictors", "ridge,knn", "--train-sizes", "10,20", "--seeds", "1", "--out", str(tmp_path / "cli"))
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "cli" / "rank_correlation.csv")) == 4


@pytest.mark.parametrize("args,message", [
    (["--target", "acc", "--predictors", "xgboost"], "unknown predictor 'xgboost'"),
    (["--target", "acc", "--train-sizes", "10,5000"], "train size 5000 is larger than the table"),
    (["--target", "nan_col"], "is empty (NaN)"),
    (["--target", "nope"], "missing column(s) nope"),
    (["--target", "acc", "--train-sizes", "10", "--prior-tables", "x.csv"], "needs a column"),
])
def test_bad_input_is_one_line_and_nonzero(small_table, tmp_path, args, message):
    df = pd.read_csv(small_table)
    df["nan_col"] = df["acc"]
    df.loc[7, "nan_col"] = np.nan
    t = tmp_path / "bad.csv"
    df.to_csv(t, index=False)
    r = hwnas("predictors", "evaluate", "--space", "nb201", "--table", str(t), "--seeds", "1",
              "--out", str(tmp_path / "o"), *args)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr, r.stderr


def test_sampled_accuracy_file_with_repeated_archs_is_averaged(tmp_path):
    sp = create_space("mbv3-fmnist")
    archs = sp.sample_many(40, np.random.default_rng(0))
    rows = [{"arch_str": sp.to_str(a), "val_acc": 80.0 + i % 7 + s, "params": 1, "flops": 1, "seed": s}
            for i, a in enumerate(archs) for s in (0, 1)]
    f = tmp_path / "supernet-samples.parquet"
    pd.DataFrame(rows).to_parquet(f)
    df = evaluate("mbv3-fmnist", f"table:{f}:val_acc", None, tmp_path / "m", predictors=["ridge"],
                  train_sizes=(10,), seeds=1, progress=False)
    assert df.n_test.iloc[0] == 30


def test_latency_ceilings_see_op_counts_and_twin_noise(tmp_path):
    """A latency made of op counts only has both ceilings at 1; noise lowers the twin retest and the
    linear ceiling."""
    from hwnas.bench.reports.predictor_report import latency_ceilings as _latency_ceilings
    from hwnas.predictors.encodings import encode

    sp = create_space("nb201")
    archs = list(sp.iter_all())
    ops = encode(sp, archs, "ops").astype(float)
    exact = ops @ np.array([0, 0.1, 0.5, 2.0, 0.3, 0, 0.05, 0.7, 3.0, 0.2])
    noisy = exact + np.random.default_rng(0).normal(scale=exact.std(), size=len(exact))
    path = tmp_path / "lat.csv"
    pd.DataFrame({"arch_idx": range(len(archs)), "arch_str": [sp.to_str(a) for a in archs],
                  "exact": exact, "noisy": noisy}).to_csv(path, index=False)
    got = _latency_ceilings(path, ["exact", "noisy"])
    assert got["exact"][0] > 0.999 and got["exact"][1] > 0.999
    assert got["noisy"][1] < 0.8
    # linear ceiling: the structure features (live ops, pairwise terms; not the raw counts of dead
    # edges) and the other column's log explain most of `exact`, and never `noisy`'s own noise
    assert got["exact"][2] > 0.95 and got["noisy"][2] < 0.85

"""`hwnas device-bench`: pool selection, resumable training without duplicates, reproducible
rows, a report that leaves what is not measured empty, and the table as a search pool."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.bench.engine.protocol import POOL_PROTOCOL
from hwnas.bench.experiments import device_bench as db
from hwnas.devices.table import TableError, import_arch_table, read_sidecar
from hwnas.search.spaces import create_space

from tests import needs
from tests.fakes import synthetic_block_table

#: the pool protocol shrunk to seconds (digits, one batch); the same code path as the real one
TINY = replace(POOL_PROTOCOL, data="digits", epochs=1, train_per_epoch=64)


@pytest.fixture
def cfg(tmp_path):
    """A synthetic block table (latency grows with kernel, expansion and width) and a 6-arch pool."""
    synthetic_block_table(tmp_path / "tables" / "mbv3-fmnist" / "cpu-t1.parquet")
    return db.DeviceBenchConfig(n=6, candidates=500, protocol=TINY, out_dir=tmp_path / "out",
                                tables_dir=tmp_path / "tables", executor="serial", progress=False,
                                device_id="cpu-t1")


def test_bit_reversed_order_spreads_every_prefix():
    o = db.bit_reversed_order(300)
    assert sorted(o) == list(range(300)) and o[:4] == [0, 256, 128, 64]
    assert max(np.diff(sorted(o[:16]))) <= 2 * 300 / 16  # the first 16 leave no big hole
    assert db.bit_reversed_order(1) == [0] and db.bit_reversed_order(0) == []


def test_select_is_reproducible_spread_and_guarded(cfg):
    pool = db.select(cfg)
    assert len(pool) == 6 and pool["arch_str"].is_unique
    assert np.all(np.diff(pool["latency_pred_ms"]) >= 0) and sorted(pool["train_order"]) == list(range(6))
    assert list(pool.loc[pool["second_seed"], "latency_rank"]) == [1, 4]  # every third by latency
    again = db.select(cfg)  # read back, not chosen again
    pd.testing.assert_frame_equal(pool, again)
    with pytest.raises(ValueError, match="chosen with"):
        db.select(replace(cfg, n=7))
    side = cfg.paths()["pool"].with_suffix(".meta.json")  # the method's prose names code that may
    meta = json.loads(side.read_text())                   # move (a module path): not a setting
    meta["selection"]["method"] = "worded by an older version (bench.pipelines.standalone)"
    side.write_text(json.dumps(meta))
    pd.testing.assert_frame_equal(pool, db.select(cfg))


@pytest.mark.slow
def test_train_resumes_without_duplicates_and_report_leaves_gaps_empty(cfg):
    db.select(cfg)
    plan = db.planned_runs(db._read_pool(cfg), TINY)
    assert len(plan) == 8 and len(set(plan)) == 8  # 6 first seeds + 2 second seeds
    first = db.train_pool(replace(cfg, limit=3))
    assert list(zip(first["arch_str"], first["seed"], strict=True)) == plan[:3]
    table, facts = db.assemble(cfg)
    assert facts["trained"] + facts["second_seed_trained"] == 3 and facts["timed"] == 0
    assert table["latency_ms"].isna().all() and table["val_acc"].isna().sum() == 6 - facts["trained"]
    full = db.train_pool(cfg)
    assert len(full) == 8 and not full.duplicated(["arch_str", "seed"]).any()
    kept = first.merge(full, on=["arch_str", "seed"], suffixes=("_a", "_b"))
    assert (kept["val_acc_a"] == kept["val_acc_b"]).all()  # earlier rows kept, not retrained
    out = db.report(cfg, command="test")
    meta = read_sidecar(out["table"])
    assert meta["complete"] is False and meta["noise"]["timed"] == 0 and meta["threads"] == 1
    assert {"torch", "numpy", "processor"} <= set(meta["train_environment"])
    assert "Incomplete" in out["report"].read_text() and "0 of 6 timed" in out["report"].read_text()
    # usable as a table: accuracy reads, the latency not measured refuses instead of inventing
    sp = create_space("mbv3-fmnist")
    assert len(import_arch_table(out["table"], sp, ["val_acc", "test_acc"])) == 6
    with pytest.raises(TableError):
        import_arch_table(out["table"], sp, ["latency_ms"])
    other = replace(TINY, epochs=2)
    with pytest.raises(ValueError, match="protocol"):
        db.train_pool(replace(cfg, protocol=other))


def test_a_retried_task_is_never_written_twice(cfg, monkeypatch):
    """Ray runs a killed actor's task again; if both answers arrive, the table keeps one row."""
    from hwnas.search.supernet import executor as ex

    db.select(cfg)
    real_map = ex.SerialExecutor.map
    monkeypatch.setattr(ex.SerialExecutor, "map", lambda self, fn, items: real_map(self, fn, [*items, items[0]]))
    rows = db.train_pool(replace(cfg, limit=2))
    assert len(rows) == 2 and not rows.duplicated(["arch_str", "seed"]).any()


def test_a_row_reproduces_with_hwnas_train_and_same_seed_runs_are_identical(cfg, tmp_path):
    db.select(cfg)
    row = db.train_pool(replace(cfg, limit=1)).iloc[0]
    res = []
    for i in range(2):
        out = tmp_path / f"train{i}.json"
        r = CliRunner().invoke(cli, ["train", "--space", "mbv3-fmnist", "--arch", row["arch_str"], "--seed",
                                     str(row["seed"]), "--data", TINY.data, "--epochs", str(TINY.epochs),
                                     "--train-per-epoch", str(TINY.train_per_epoch), "--out", str(out)])
        assert r.exit_code == 0, r.output
        res.append(json.loads(out.read_text()))
    assert res[0]["val_acc"] == res[1]["val_acc"] == row["val_acc"]
    assert res[0]["test_acc"] == res[1]["test_acc"] == row["test_acc"]


def test_hwnas_train_defaults_are_the_pool_protocol():
    from hwnas.bench.commands.supernet import train

    d = {p.name: p.default for p in train.params}
    assert (d["data"], d["split_seed"], d["epochs"], d["train_per_epoch"], d["threads"]) == (
        POOL_PROTOCOL.data, POOL_PROTOCOL.split_seed, POOL_PROTOCOL.epochs, POOL_PROTOCOL.train_per_epoch,
        POOL_PROTOCOL.threads)
    assert "pool" in train.help


@pytest.mark.slow  # trains the whole tiny pool; tests/search/test_pool_search.py covers --pool fast
def test_the_device_bench_table_is_a_search_pool(cfg, tmp_path):
    db.select(cfg)
    db.train_pool(cfg)
    out = db.report(cfg, command="test")["table"]
    t = pd.read_parquet(out)
    bound = float(t["latency_pred_ms"].median())
    r = CliRunner().invoke(cli, ["search", "--space", "mbv3-fmnist", "--pool", str(out), "--method", "random",
                                 "--accuracy", f"table:{out}:val_acc", "--constraint",
                                 f"latency_ms<={bound}@table:{out}:latency_pred_ms:ms", "--budget", "3",
                                 "--seeds", "2", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "s" / "runs.csv")
    assert set(runs["arch_str"]) <= set(t["arch_str"])
    assert runs["optimum_accuracy"].iloc[0] == pytest.approx(t.loc[t["latency_pred_ms"] <= bound, "val_acc"].max())


def test_unknown_stage_is_one_line(cfg):
    with pytest.raises(ValueError, match="unknown stage"):
        db.run(cfg, ["select", "measure"])


def test_copy_from_a_running_job_is_whole_and_never_shrinks(cfg, tmp_path):
    db.select(cfg)
    db.train_pool(replace(cfg, limit=2))
    dest = replace(cfg, out_dir=tmp_path / "committed")
    assert db.run(dest, ["report"], copy_from_dir=cfg.out_dir)["copied"] == {"pool": 6, "runs": 2}
    assert len(pd.read_csv(dest.paths()["runs"].with_suffix(".csv"))) == 2
    assert read_sidecar(dest.paths()["runs"])["protocol"] == TINY.key()
    db.train_pool(replace(dest, limit=3))  # the copy now holds more rows than the source
    with pytest.raises(ValueError, match="more rows"):
        db.copy_from(dest, cfg.out_dir)


@pytest.mark.slow  # times 3 networks twice (a test of the stage, not a figure: the machine is loaded)
def test_time_stage_fills_measured_latency(cfg):
    from hwnas.devices.table import write_sidecar
    from hwnas.devices.timing import TimingConfig

    table = cfg.tables_dir / "mbv3-fmnist" / "cpu-t1.parquet"
    write_sidecar(table, {"reference": "ref", "ref_latency_ms": 1.0})
    fast = replace(cfg, n=3, timing=TimingConfig(max_s=0.05, rel_ci=0.5, warmup_s=0, min_runs=10, round_runs=2))
    db.select(fast)
    nets = db.time_pool(fast)
    assert len(nets) == 6  # 3 networks x 2 passes
    assert not {"samples_ms", "extra_ratios"} & set(nets.columns)  # summaries only: results stay small
    table, facts = db.assemble(fast)
    assert facts["timed"] == 3 and (table["latency_ms"] > 0).all() and table["latency_retest_pct"].notna().all()


@pytest.mark.slow  # starts a local Ray
def test_ray_training_gives_the_serial_rows(cfg, tmp_path):
    needs.ray()
    db.select(cfg)
    serial = db.train_pool(replace(cfg, limit=2))
    ray_cfg = replace(cfg, out_dir=tmp_path / "ray", executor="ray", workers=2, limit=2)
    db.select(ray_cfg)
    par = db.train_pool(ray_cfg)
    cols = ["arch_str", "seed", "val_acc", "test_acc"]
    pd.testing.assert_frame_equal(serial[cols], par[cols])


def _train_or_die_once(task):
    """A training task whose worker process dies the first time it runs (as `kill -9`)."""
    import os
    from pathlib import Path

    from hwnas.bench.engine.standalone import _train

    marker = Path(os.environ["HWNAS_TEST_DIE_ONCE"])
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return _train(task)


@pytest.mark.slow  # spawns worker processes
def test_a_killed_process_worker_is_retrained_once(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_TEST_DIE_ONCE", str(tmp_path / "died"))
    db.select(cfg)
    rows = db.train_pool(replace(cfg, executor="process", workers=1, limit=2), task=_train_or_die_once)
    assert (tmp_path / "died").exists()  # a worker really died
    assert len(rows) == 2 and not rows.duplicated(["arch_str", "seed"]).any()
    assert list(zip(rows["arch_str"], rows["seed"], strict=True)) == db.planned_runs(db._read_pool(cfg), TINY)[:2]


def test_ranking_baselines_are_taus_of_latency_and_macs_overall_and_under_the_median():
    from scipy import stats

    rng = np.random.default_rng(0)
    n = 40
    lat = rng.uniform(0.1, 1.0, n)
    tr = pd.DataFrame({"latency_ms": lat, "macs": lat * 1e6 + rng.normal(0, 2e5, n),
                       "val_acc": 80 + 8 * lat + rng.normal(0, 1.0, n)})
    tr.loc[:4, "latency_ms"] = np.nan  # trained, not yet timed: only the MACs tau sees them
    got = db._ranking_baselines(tr)
    t = tr.dropna()
    under = t[t.latency_ms <= t.latency_ms.median()]
    assert got["tau_macs_vs_val_acc"] == pytest.approx(stats.kendalltau(tr.macs, tr.val_acc).statistic)
    assert got["tau_measured_latency_vs_val_acc"] == pytest.approx(stats.kendalltau(t.latency_ms, t.val_acc).statistic)
    assert got["tau_measured_latency_vs_val_acc_under_q50"] == pytest.approx(
        stats.kendalltau(under.latency_ms, under.val_acc).statistic)
    assert 0 < got["tau_measured_latency_vs_val_acc_under_q50"] < got["tau_measured_latency_vs_val_acc"]


def test_supernet_ranking_is_tau_against_trained_archs_and_the_stage_needs_a_checkpoint(cfg):
    from scipy import stats

    rng = np.random.default_rng(1)
    n = 30
    df = pd.DataFrame({"val_acc": rng.normal(85, 1, n), "latency_ms": rng.uniform(0.1, 1, n)})
    df["supernet_val_acc"] = df.val_acc + rng.normal(0, 1, n)
    df.loc[:3, "val_acc"] = np.nan  # not trained yet: not ranked
    got = db._supernet_ranking(df, {"checkpoint": "runs/s.ckpt", "epochs": 4})
    t = df.dropna()
    under = t[t.latency_ms <= t.latency_ms.median()]
    assert got["tau_supernet_vs_val_acc"] == pytest.approx(stats.kendalltau(t.supernet_val_acc, t.val_acc).statistic)
    assert got["tau_supernet_vs_val_acc_under_q50"] == pytest.approx(
        stats.kendalltau(under.supernet_val_acc, under.val_acc).statistic)
    with pytest.raises(ValueError, match="needs --supernet"):
        db.rank_with_supernet(cfg)


def _cli_runner(argv, out):
    """`run_hwnas` in this process (the real one starts a fresh interpreter): the same command."""
    r = CliRunner().invoke(cli, [*argv, "--out", str(out)])
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())


def test_reproduce_retrains_a_fixed_random_draw_with_hwnas_train_and_resumes(cfg):
    db.select(cfg)
    plan = sorted(db.planned_runs(db._read_pool(cfg), TINY))
    drawn = [plan[i] for i in sorted(np.random.default_rng(0).choice(len(plan), 2, replace=False))]
    db.train_pool(replace(cfg, limit=1))
    calls = []

    def runner(argv, out):
        calls.append(argv)
        return _cli_runner(argv, out)

    trained_first = set(db.planned_runs(db._read_pool(cfg), TINY)[:1])
    first = db.reproduce_rows(replace(cfg, reproduce_n=2), runner=runner)  # a drawn row not trained yet waits
    assert len(first) == len(trained_first & set(drawn))
    db.train_pool(cfg)
    got = db.reproduce_rows(replace(cfg, reproduce_n=2), runner=runner)
    assert sorted(zip(got["arch_str"], got["seed"], strict=True)) == drawn and len(calls) == 2
    assert got["exact"].all() and (got["val_diff_pp"] == 0).all()
    # arch and seed, plus only the flags the tiny protocol changes (none under the pool protocol)
    assert calls[0][:2] == ["train", "--space"] and "--epochs" in calls[0] and "--threads" not in calls[0]
    assert db.train_command(replace(cfg, protocol=POOL_PROTOCOL), "a", 1) == [
        "train", "--space", "mbv3-fmnist", "--arch", "a", "--seed", "1"]
    assert all(c.startswith("hwnas train --space mbv3-fmnist --arch ") for c in got["command"])
    again = db.reproduce_rows(replace(cfg, reproduce_n=2), runner=runner)  # done: nothing retrained
    assert len(calls) == 2 and len(again) == 2
    facts = db.assemble(cfg)[1]
    assert (facts["reproduced_rows"], facts["reproduced_exact"], facts["reproduced_max_abs_val_diff_pp"]) == (2, 2, 0.0)
    text = db.report(cfg, command="test")["report"].read_text()
    assert "## Reproduction" in text and "2 of 2 give the table's val and test accuracy exactly" in text


def test_reproduce_says_how_far_a_row_is_off(cfg):
    db.select(cfg)
    db.train_pool(cfg)

    def off_by_a_bit(argv, out):
        r = _cli_runner(argv, out)
        return {**r, "val_acc": r["val_acc"] + 0.25}

    got = db.reproduce_rows(replace(cfg, reproduce_n=1), runner=off_by_a_bit)
    assert not got["exact"].any() and got["val_diff_pp"].iloc[0] == pytest.approx(0.25)
    text = db.report(cfg, command="test")["report"].read_text()
    assert "0 of 1 give the table's" in text and "0.25 pp val" in text


def test_noise_ceiling_is_the_tau_of_the_mean_against_one_seed():
    """Simulated archs (true accuracy + independent seed noise): the ceiling from the seed pairs
    matches the tau the true accuracy itself reaches against one seed."""
    from scipy import stats

    rng = np.random.default_rng(0)
    n = 4000
    true = rng.normal(85, 1.0, n)
    pairs = pd.DataFrame({"val_acc": true + rng.normal(0, 0.6, n), "val_acc_seed2": true + rng.normal(0, 0.6, n),
                          "latency_ms": rng.uniform(0.1, 1, n)})
    got = db._noise_ceiling(pairs, q50=0.55)
    oracle = stats.kendalltau(true, pairs["val_acc"]).statistic
    assert got["tau_ceiling_one_seed"] == pytest.approx(oracle, abs=0.02)
    assert got["tau_ceiling_one_seed"] > stats.kendalltau(pairs["val_acc"], pairs["val_acc_seed2"]).statistic
    assert "tau_ceiling_one_seed_under_q50" in got
    assert "tau_ceiling_one_seed_under_q50" not in db._noise_ceiling(pairs, q50=0.0)  # no pair under the bound
    opposed = pairs.assign(val_acc_seed2=170 - pairs["val_acc"])  # seeds that disagree: no ceiling to state
    assert db._noise_ceiling(opposed, q50=0.55) == {}


def test_every_supernet_tried_stays_and_an_old_single_try_file_is_read_as_one_try(cfg):
    from hwnas.devices.table import write_table

    db.select(cfg)
    db.train_pool(cfg)
    p = cfg.paths()
    archs = list(db._read_pool(cfg)["arch_str"])
    table, _ = db.assemble(cfg)
    acc = table.set_index("arch_str")["val_acc"]
    # the earlier format: one checkpoint, its digest in the sidecar only
    write_table(pd.DataFrame({"arch_str": archs, "supernet_val_acc": [acc[a] for a in archs]}), p["supernet"],
                meta={"kind": "device-bench-supernet", "checkpoint": "runs/a.ckpt", "checkpoint_sha256": "aaa",
                      "epochs": 4, "train_config": {"sampler": "sandwich"}})
    rows, meta = db._read_supernet(p["supernet"])
    assert set(rows["checkpoint_sha256"]) == {"aaa"} and meta["latest"] == "aaa"
    assert meta["checkpoints"]["aaa"]["epochs"] == 4
    # a second try, the latest: ranks the pool backwards
    rows2 = pd.concat([rows, pd.DataFrame({"checkpoint_sha256": "bbb", "arch_str": archs,
                                           "supernet_val_acc": [-acc[a] for a in archs]})], ignore_index=True)
    meta["checkpoints"]["bbb"] = {"checkpoint": "runs/b.ckpt", "epochs": 12, "sampler": "uniform"}
    write_table(rows2, p["supernet"], meta={**meta, "latest": "bbb"})
    tries = db.supernet_tries(table, p["supernet"])
    assert list(tries["checkpoint"]) == ["runs/a.ckpt", "runs/b.ckpt"] and list(tries["latest"]) == [False, True]
    assert tries["tau_overall"].tolist() == pytest.approx([1.0, -1.0])
    out = db.report(cfg, command="test")
    assert out["tau_supernet_vs_val_acc"] == pytest.approx(-1.0)  # the table's column is the latest try
    text = out["report"].read_text()
    assert "## Supernets tried on the pool" in text and "`runs/a.ckpt`" in text and "`runs/b.ckpt` (latest)" in text
    assert "Tried: 2 supernet(s); epochs 4, 12;" in text and "sampler sandwich, uniform." in text
    assert len(read_sidecar(out["table"])["supernet_tries"]) == 2


def test_the_report_says_whether_a_supernet_beats_latency_by_0_1_and_whether_noise_leaves_room():
    from hwnas.bench.reports.device_bench_report import _goal_line

    tries = pd.DataFrame({"epochs": [4, 12], "images_per_epoch": [10000, 10000], "sampler": ["sandwich", "uniform"],
                          "tau_overall": [0.55, 0.70], "tau_under_q50": [0.48, 0.50]})
    facts = {"tau_measured_latency_vs_val_acc": 0.57, "tau_ceiling_one_seed": 0.70,
             "tau_measured_latency_vs_val_acc_under_q50": 0.62, "tau_ceiling_one_seed_under_q50": 0.72}
    line = _goal_line(tries, facts)
    assert line.startswith("Tried: 2 supernet(s); epochs 4, 12; images per epoch 10000; sampler sandwich, uniform.")
    assert "overall, the best try reaches 0.700 against the goal 0.670 (met; seed noise caps any ranking at 0.700, " \
           "above the goal)" in line
    assert "under the median latency, the best try reaches 0.500 against the goal 0.720 (short by 0.220; seed noise " \
           "caps any ranking at 0.720, above the goal)" in line
    facts["tau_ceiling_one_seed_under_q50"] = 0.71
    assert "caps any ranking at 0.710, below the goal: no ranking is expected to meet it)" in _goal_line(tries, facts)
    assert "Goal" not in _goal_line(tries, {})  # no latency bar measured yet: no verdict

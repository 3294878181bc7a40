"""The chain-track board's accounting: measured latency, bound misses, stand-alone accuracy and
regret against the best feasible arch known, on hand-made files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.experiments.chain_board import ChainBoard, board_rows, write_board

C1, C2 = "latency_ms<=1@dev:calibrated", "latency_ms<=2@dev:calibrated"


@pytest.fixture
def board(tmp_path):
    # runs made before the uniform final-validation rule (no final_reads, no top-1 pick)
    b = ChainBoard(out=tmp_path, reference=tmp_path / "reference.parquet", device="dev", guard=0.0, final_reads=None)
    b.runs_dir.mkdir(parents=True)
    pd.DataFrame([
        {"method": "random", "constraint": C1, "seed": 0, "arch_str": "A", "accuracy": 80.0, "cost": 0.9, "bound": 1.0,
         "search_cpu_s": 3.0},
        {"method": "binas", "constraint": C1, "seed": 0, "arch_str": "B", "accuracy": 82.0, "cost": 0.95, "bound": 1.0,
         "search_cpu_s": 5.0},
        {"method": "binas", "constraint": C2, "seed": 0, "arch_str": "C", "accuracy": 85.0, "cost": 1.9, "bound": 2.0,
         "search_cpu_s": 5.0},
        {"method": "binas", "constraint": "latency_ms<=1.5@dev:calibrated", "seed": 0, "arch_str": "C",
         "accuracy": 85.0, "cost": 1.4, "bound": 1.5, "search_cpu_s": 5.0},  # another board's bound: left out
    ]).to_csv(b.runs_dir / "runs.csv", index=False)
    pd.DataFrame([  # A: two passes; B: over its bound; C: one pass only (not measured yet)
        {"arch_str": "A", "block_key": "network:A", "repeat": 0, "latency_norm_ms": 0.8},
        {"arch_str": "A", "block_key": "network:A", "repeat": 1, "latency_norm_ms": 0.9},
        {"arch_str": "B", "block_key": "network:B", "repeat": 0, "latency_norm_ms": 1.1},
        {"arch_str": "B", "block_key": "network:B", "repeat": 1, "latency_norm_ms": 1.3},
        {"arch_str": "C", "block_key": "network:C", "repeat": 0, "latency_norm_ms": 1.5},
    ]).to_parquet(b.runs_dir / "picks-latency.parquet")
    pd.DataFrame([  # C has one seed of two: no stand-alone accuracy yet
        {"arch_str": "A", "seed": 0, "val_acc": 84.0, "test_acc": 83.0, "latency_ms": 0.85},
        {"arch_str": "A", "seed": 1, "val_acc": 86.0, "test_acc": 85.0, "latency_ms": 0.85},
        {"arch_str": "B", "seed": 0, "val_acc": 90.0, "test_acc": 89.0, "latency_ms": 1.2},
        {"arch_str": "B", "seed": 1, "val_acc": 90.0, "test_acc": 89.0, "latency_ms": 1.2},
        {"arch_str": "C", "seed": 0, "val_acc": 88.0, "test_acc": 87.0, "latency_ms": 1.6},
    ]).to_parquet(b.runs_dir / "picks-standalone.parquet")
    pd.DataFrame([
        {"arch_str": "R1", "seed": s, "val_acc": 86.5, "test_acc": 86.0, "latency_ms": 0.95} for s in (0, 1)
    ] + [{"arch_str": "R2", "seed": s, "val_acc": 87.0, "test_acc": 86.0, "latency_ms": 1.5} for s in (0, 1)]
    ).to_parquet(b.reference)
    for f in (b.runs_dir / "picks-standalone.parquet", b.reference):  # the columns stand-alone files carry
        pd.read_parquet(f).assign(latency_table_ms=1.0, macs=1, params=1).to_parquet(f)
    return b


def test_rows_carry_measured_latency_misses_accuracy_and_regret(board):
    df, best = board_rows(board, {C1: (0.25, 1.0), C2: (0.5, 2.0)})
    r = df.set_index("arch_str")
    assert r.loc["A", "measured_latency_ms"] == pytest.approx(0.85)
    assert bool(r.loc["A", "meets_bound_measured"]) and not bool(r.loc["B", "meets_bound_measured"])
    assert pd.isna(r.loc["C", "measured_latency_ms"]) and pd.isna(r.loc["C", "meets_bound_measured"])
    assert r.loc["A", "standalone_val_acc"] == pytest.approx(85.0) and pd.isna(r.loc["C", "standalone_val_acc"])
    # B (90%) missed its bound when measured: the best known under 1 ms is the reference arch R1
    assert best[C1][:2] == (86.5, "R1")
    assert r.loc["A", "regret_pp"] == pytest.approx(1.5)
    assert pd.isna(r.loc["B", "regret_pp"])  # over its bound: no regret, the miss is on its row
    # under 2 ms: B measured 1.2 ms is feasible there
    assert best[C2][:2] == (90.0, "B")


def test_board_files_name_every_required_column_and_the_misses(board):
    md = write_board(board, {C1: (0.25, 1.0), C2: (0.5, 2.0)})
    csv = pd.read_csv(board.out / f"{board.space}.csv")
    need = {"method", "seed", "bound", "arch_str", "measured_latency_ms", "meets_bound_measured",
            "standalone_val_acc", "search_cpu_s"}
    assert need <= set(csv.columns) and len(csv) == 3
    text = md.read_text()
    assert "Bound misses when re-measured: 1 of 2 measured rows: binas seed 0, own rule (1.200 > 1.000 ms)" in text
    assert "2/3 rows re-measured" in text
    assert "Budgets: `binas` 100 queries; `random` 100 queries." in text  # the methods on the board


def test_the_board_states_a_one_shot_methods_training_budget(board):
    board.params = {"dinas": {"epochs": 2}}
    runs = pd.read_csv(board.runs_dir / "runs.csv")
    runs.loc[0, "method"] = "dinas"
    runs.to_csv(board.runs_dir / "runs.csv", index=False)
    text = write_board(board, {C1: (0.25, 1.0), C2: (0.5, 2.0)}).read_text()
    assert "`dinas` 100 queries (to validate its top candidates; supernet training: epochs 2, train_per_epoch 12800, " \
           "batch_size 32)" in text


def test_the_guard_band_is_the_calibration_error_on_held_out_networks(tmp_path):
    b = ChainBoard(tables_dir=tmp_path, device="dev")
    d = tmp_path / b.space
    d.mkdir()
    rel = [0.01, -0.02, 0.03, -0.04, 0.05, -0.06, 0.07, -0.08, 0.09, -0.10]
    pd.DataFrame({"split": ["test"] * 10 + ["train"],  # the train network's 50% error is not counted
                  "normalised_measured_ms": [1.0] * 11,
                  "normalised_calibrated_ms": [1 + r for r in rel] + [1.5]}).to_csv(d / "dev-validation-per-network.csv")
    assert b.guard_band() == pytest.approx(np.quantile(np.abs(rel), 0.9))
    assert ChainBoard(tables_dir=tmp_path, device="dev", guard=0.02).guard_band() == 0.02
    assert ChainBoard(tables_dir=tmp_path, device="other").guard_band() == 0.0  # not validated


# ---- the rebuilt board: both picks, statistics across methods, judgement against a pool ------------
Q1, Q2 = "latency_ms<=1@dev:calibrated", "latency_ms<=2@dev:calibrated"
BOUNDS = {Q1: (0.25, 1.0), Q2: (0.5, 2.0)}


def _k_board(tmp_path, seeds=4, methods=("mgas", "random", "binas"), pool=None):
    """Runs under the uniform rule (k = 2): each row's k-validated pick `V-m-q-s` and its top-1
    `T-m-q-s`; every pick measured at 0.5 ms (feasible under both bounds) and trained with two seeds,
    method i's picks scoring about i pp better, validated picks 0.5 pp above top-1 picks."""
    b = ChainBoard(out=tmp_path, reference=tmp_path / "none.parquet", device="dev", guard=0.0, final_reads=2,
                   seeds=seeds, pool=pool)
    b.runs_dir.mkdir(parents=True)
    runs, lat, acc = [], [], []
    rng = np.random.default_rng(0)
    for i, m in enumerate(methods):
        for c, (q, bound) in BOUNDS.items():
            for s in range(seeds):
                v, t = f"V-{m}-{q}-{s}", f"T-{m}-{q}-{s}"
                runs.append({"method": m, "constraint": c, "seed": s, "arch_str": v, "accuracy": 70.0, "cost": 0.5,
                             "bound": bound, "search_cpu_s": 1.0, "queries": 102, "final_reads": 2,
                             "model_arch_str": t, "model_accuracy": 69.0, "model_cost": 0.4, "final_rank": 1 + s})
                for a, extra in ((v, 0.5), (t, 0.0)):
                    lat += [{"arch_str": a, "block_key": f"network:{a}", "repeat": r, "latency_norm_ms": 0.5}
                            for r in (0, 1)]
                    base = 80.0 + i + extra + rng.normal(0, 0.1)
                    acc += [{"arch_str": a, "seed": sd, "val_acc": base + sd, "test_acc": base, "latency_ms": 0.5,
                             "latency_table_ms": 0.5, "macs": 1, "params": 1} for sd in (0, 1)]
    pd.DataFrame(runs).to_csv(b.runs_dir / "runs.csv", index=False)
    pd.DataFrame(lat).to_parquet(b.runs_dir / "picks-latency.parquet")
    pd.DataFrame(acc).to_parquet(b.runs_dir / "picks-standalone.parquet")
    return b


def test_each_run_shows_its_own_top_1_and_its_k_validated_pick(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    df, _ = board_rows(b, BOUNDS)
    assert sorted(df["pick"].unique()) == ["k=0", "k=2"] and len(df) == 2 * 3 * 2 * 2
    top = df[df.pick == "k=0"].set_index("arch_str")
    assert top.loc["T-mgas-0.25-0", "accuracy"] == 69.0 and top.loc["T-mgas-0.25-0", "cost"] == 0.4
    assert top.loc["T-mgas-0.25-0", "standalone_val_acc"] == pytest.approx(
        df[df.arch_str == "T-mgas-0.25-0"].standalone_val_acc.iloc[0])
    text = write_board(b, BOUNDS).read_text()
    assert "### Each method's own top-1 pick, no validation read (k=0)" in text
    assert "### Each method's best read of its own top 2 (k=2)" in text
    assert "the same k = 2 final validation reads" in text
    assert "`mgas` 2 final reads (supernet training:" in text and "`random` 100 queries + 2 final reads" in text
    csv = pd.read_csv(b.out / f"{b.space}.csv")
    assert set(csv["pick"]) == {"k=0", "k=2"} and len(csv) == len(df)
    # seed 0's winner was its own top-1, seed 1's its second: once in each method's 4 runs (2 bounds x 2 seeds)
    assert "runs whose own top-1 won its k reads, and the winner's place in the method's own ranking: " \
           "binas 2/4 (median 1.5, max 2), mgas 2/4 (median 1.5, max 2), random 2/4 (median 1.5, max 2)." in text


def test_the_board_tests_methods_by_friedman_then_holm_corrected_pairs(tmp_path):
    from hwnas.bench.reports.board_stats import holm
    from scipy import stats

    b = _k_board(tmp_path, seeds=4)
    df, _ = board_rows(b, BOUNDS)
    text = write_board(b, BOUNDS).read_text()
    for pick in ("k=0", "k=2"):
        part = df[df.pick == pick].pivot_table(index=["quantile", "seed"], columns="method",
                                               values="standalone_val_acc")
        f = stats.friedmanchisquare(*[part[m] for m in part.columns])
        assert f"Friedman across 3 methods over 8 complete blocks of 8: chi2 {f.statistic:.2f}, p {f.pvalue:.3g}." \
            in text
        ps = [stats.wilcoxon(part[a] - part[c]).pvalue for a, c in (("binas", "mgas"), ("binas", "random"),
                                                                     ("mgas", "random"))]
        for p in holm(ps):
            assert f"| {p:.3g} |" in text
    # binas (index 2) beats mgas (0) in every block: 8 of 8 pairs, the largest signed-rank sum
    import re

    assert len(re.findall(r"^\| binas \| mgas \| 8 \| \+2\.\d\d \[.*\| higher \|$", text, re.M)) == 2


def test_a_pick_over_its_bound_leaves_its_block_out_of_the_friedman_test(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    lat = pd.read_parquet(b.runs_dir / "picks-latency.parquet")
    lat.loc[lat.arch_str == "V-mgas-0.25-0", "latency_norm_ms"] = 1.5  # over the 1 ms bound
    lat.to_parquet(b.runs_dir / "picks-latency.parquet")
    text = write_board(b, BOUNDS).read_text()
    assert "over 3 complete blocks of 4" in text  # k=2: the miss's block is out
    assert "over 4 complete blocks of 4" in text  # k=0: every top-1 met its bound


def _pool(tmp_path, board, complete=True, protocol=None):
    rows = [{"arch_str": "P1", "val_acc": 84.0, "test_acc": 83.0, "latency_ms": 0.9},
            {"arch_str": "P2", "val_acc": 88.0, "test_acc": 87.0, "latency_ms": 1.8},
            {"arch_str": "P3", "val_acc": 95.0, "test_acc": 94.0, "latency_ms": 2.5}]
    if not complete:
        rows[2]["latency_ms"] = np.nan
    path = tmp_path / "pool" / "cpu-t1.parquet"
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    import json

    proto = protocol or {**board.protocol.key(), "seeds": [0, 1]}
    path.with_name("cpu-t1.meta.json").write_text(json.dumps({"protocol": proto}))
    return path


def test_picks_are_judged_against_the_pools_best_arch_under_each_bound(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    b.pool = _pool(tmp_path, b)
    df, _ = board_rows(b, BOUNDS)
    r = df.set_index("arch_str")
    # under 1 ms only P1 (84%); under 2 ms P2 (88%); P3 is over both bounds when measured
    assert (df[df["quantile"] == 0.25].pool_best_val_acc == 84.0).all()
    assert (df[df["quantile"] == 0.5].pool_best_val_acc == 88.0).all()
    seed0 = pd.read_parquet(b.runs_dir / "picks-standalone.parquet").query("seed == 0").set_index("arch_str").val_acc
    assert r.loc["V-mgas-0.5-1", "pool_regret_pp"] == pytest.approx(88.0 - seed0["V-mgas-0.5-1"])
    text = write_board(b, BOUNDS).read_text()
    assert "## Against the device-bench pool" in text and "every one trained and timed end to end" in text
    assert "| 50% | k=2 | mgas | 88.00 (P2) |" in text
    judged = df["pool_regret_pp"].dropna()
    assert f"{int((judged < 0).sum())} of {len(judged)} judged picks" in text


def test_an_incomplete_pool_is_said_and_leaves_the_pool_regret_empty(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    b.pool = _pool(tmp_path, b, complete=False)
    df, _ = board_rows(b, BOUNDS)
    assert df.pool_regret_pp.isna().all() and df.pool_best_val_acc.isna().all()
    text = write_board(b, BOUNDS).read_text()
    assert "is incomplete (3 of 3 archs trained, 2 of 3 timed end to end): regret against the pool is left empty" \
        in text
    assert pd.read_csv(b.out / f"{b.space}.csv").pool_regret_pp.isna().all()


def test_a_pool_trained_with_another_protocol_is_not_compared(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    b.pool = _pool(tmp_path, b, protocol={**b.protocol.key(), "epochs": 99})
    df, _ = board_rows(b, BOUNDS)
    assert df.pool_regret_pp.isna().all()
    assert "regret against the pool is left empty (train the picks with the pool's protocol)" in \
        write_board(b, BOUNDS).read_text()


def test_the_board_counts_seeds_that_return_the_same_arch_at_every_bound(tmp_path):
    b = _k_board(tmp_path, seeds=2)
    runs = pd.read_csv(b.runs_dir / "runs.csv")
    same = (runs.method == "mgas") & (runs.seed == 1)
    runs.loc[same, "arch_str"] = "V-mgas-0.25-1"  # mgas seed 1 returns one arch at both bounds
    runs.to_csv(b.runs_dir / "runs.csv", index=False)
    text = write_board(b, BOUNDS).read_text()
    assert "Same arch at every bound (seeds run at all of them): binas k=0 0/2, binas k=2 0/2, mgas k=0 0/2, " \
           "mgas k=2 1/2, random k=0 0/2, random k=2 0/2." in text


def test_a_board_judged_against_a_pool_trains_each_pick_as_a_pool_row(tmp_path, monkeypatch):
    """With --pool, picks are trained like the pool's rows (its protocol, its first seed), so a pick's
    accuracy and the pool's val_acc are one kind of number; without, the reference protocol's seeds."""
    from click.testing import CliRunner
    from hwnas.bench.cli import cli
    from hwnas.bench.engine.protocol import POOL_PROTOCOL, REFERENCE_PROTOCOL
    from hwnas.bench.experiments import chain_board

    seen = []

    def capture(board):
        seen.append(board)
        (tmp_path / "board.md").write_text("board")
        return tmp_path / "board.md"

    monkeypatch.setattr(chain_board, "run", capture)
    base = ["leaderboard", "--track", "mbv3-fmnist", "--out", str(tmp_path), "--report-only"]
    for extra in (["--pool", str(tmp_path / "pool.parquet")], []):
        assert CliRunner().invoke(cli, base + extra).exit_code == 0
    with_pool, without = seen
    assert with_pool.protocol.seeds == (POOL_PROTOCOL.seeds[0],) and with_pool.protocol.epochs == POOL_PROTOCOL.epochs
    assert without.protocol == REFERENCE_PROTOCOL
    assert "seed 0 only, as every pool row is trained" in chain_board._seeds(with_pool)
    assert "accuracy = mean over seeds" in chain_board._seeds(without)


def test_the_supernets_training_cost_is_kept_for_a_report_written_without_its_checkpoint(board, monkeypatch):
    import json

    import hwnas.search.supernet as supernet
    from hwnas.core.io import file_sha256

    ckpt = board.out / "shared.ckpt"
    ckpt.write_bytes(b"the supernet the searches read")
    board.supernet = str(ckpt)
    (board.runs_dir / "provenance.json").write_text(json.dumps({"provenance": {"accuracy_sha256": file_sha256(ckpt)}}))
    monkeypatch.setattr(supernet, "load_checkpoint", lambda p: {
        "epoch": 4, "history": [{"cpu_seconds": 100.2, "seconds": 60.0}, {"cpu_seconds": 40.0, "seconds": 30.0}]})
    said = "(4 epochs) cost 140 CPU s to train"
    assert said in write_board(board, {C1: (0.25, 1.0)}).read_text()
    ckpt.unlink()  # a clean clone: the checkpoint is not there, the kept cost is
    assert said in write_board(board, {C1: (0.25, 1.0)}).read_text()
    ckpt.write_bytes(b"another supernet at the same path")  # not the one the runs read: its cost is not theirs
    (board.runs_dir / "supernet-cost.json").unlink()
    text = write_board(board, {C1: (0.25, 1.0)}).read_text()
    assert said not in text and "the checkpoint the searches read is not on this machine" in text

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
    b = ChainBoard(out=tmp_path, reference=tmp_path / "reference.parquet", device="dev", guard=0.0)
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
    assert "Bound misses when re-measured: 1 of 2 measured rows: binas seed 0 (1.200 > 1.000 ms)" in text
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

"""The development report of the NB201 acquisition (bench/experiments/acquisition_dev.py)."""

from __future__ import annotations

import pandas as pd
from hwnas.bench.experiments import acquisition_dev


def _runs(root, variant, task, method, regrets):
    d = root / variant / task
    d.mkdir(parents=True, exist_ok=True)
    rows = [{"method": method, "budget": 100, "seed": s, "regret": r, "notes": "x"} for s, r in enumerate(regrets)]
    f = d / "runs.csv"
    old = pd.read_csv(f) if f.exists() else None
    pd.concat([old, pd.DataFrame(rows)]).to_csv(f, index=False)


def test_report_pairs_each_variant_and_lists_cells_not_below_both_baselines(tmp_path):
    _runs(tmp_path, "baselines", "t1", "random", [1.0, 1.0, 1.0])
    _runs(tmp_path, "baselines", "t1", "evolution", [0.5, 0.5, 0.5])
    _runs(tmp_path, "greedy-loo", "t1", "binas", [0.4, 0.4, 0.4])
    _runs(tmp_path, "greedy-init25-local50", "t1", "binas", [0.6, 0.6, 0.6])  # version 2: above evolution
    _runs(tmp_path, "greedy-init25-local50-explore33", "t1", "binas", [0.3, 0.2, 0.1])
    md = acquisition_dev.report(tmp_path).read_text()
    # against version 2, paired by seed: (0.3 - 0.6, 0.2 - 0.6, 0.1 - 0.6) -> mean -0.400, 3 wins
    assert "| binas | greedy-init25-local50-explore33 | 100 | 3 | -0.400 |" in md and "| 3 / 0 |" in md
    assert "- binas greedy-init25-local50: 1 of 1: t1 @ 100" in md
    assert "- binas greedy-init25-local50-explore33: 0 of 1" in md
    runs = pd.read_parquet(tmp_path / "acquisition-dev.parquet")
    assert len(runs) == 15 and "notes" not in runs.columns


def test_development_devices_and_board_devices_are_disjoint():
    """Issue 21: development is kept apart from the boards by construction."""
    from hwnas.bench.experiments.leaderboard import NB201_DEVICES

    assert not set(acquisition_dev.DEV_DEVICES) & set(NB201_DEVICES)
    assert {dev for _, _, dev, _ in acquisition_dev.TASKS} <= set(acquisition_dev.DEV_DEVICES)
    acquisition_dev.check_apart()  # the committed tasks pass


def test_a_task_on_a_board_device_is_refused():
    import pytest

    task = (acquisition_dev._T200, None, "pixel3", 0.4)
    with pytest.raises(ValueError, match="pixel3"):
        acquisition_dev.check_apart([task])

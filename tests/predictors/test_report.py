"""The top-level predictor summary: `auto` is the headline, the test-set best is marked as such."""

from __future__ import annotations

import pandas as pd
from hwnas.bench.experiments.predictor_experiments import Experiment, hardware, prior_for
from hwnas.bench.reports.predictor_report import standard_summary


def _rows(values: dict[tuple[str, int], float], metric: str) -> pd.DataFrame:
    return pd.DataFrame([{"predictor": p, "train_size": n, "seed": s, metric: v + 0.001 * s, "n_test": 100}
                         for (p, n), v in values.items() for s in range(5)])


def test_summary_checks_the_accuracy_targets_against_auto_and_the_oracle():
    acc = _rows({("auto", 100): 0.805, ("xgb-graf", 100): 0.81, ("auto", 1000): 0.85, ("xgb-graf", 1000): 0.91}, "kendall_tau")
    lines = "\n".join(standard_summary({"nb201-c10-200ep": acc}, {"nb201-c10-200ep": "accuracy"}, None, {}))
    assert "100 train archs (5 seeds): best `xgb-graf` Kendall tau 0.812 (chosen on the test set), target >= 0.80: met" in lines
    assert "`auto` 0.807 (gap 0.005, within 0.02: met)" in lines
    assert "`auto` 0.852 (gap 0.060, within 0.02: NOT met)" in lines


def test_protocol_table_names_devices_short_of_the_target_and_why():
    good = _rows({("auto", 10): 0.98, ("auto", 20): 0.99, ("transfer", 10): 0.97, ("ridge-cost", 10): 0.9}, "spearman")
    bad = _rows({("auto", 10): 0.90, ("auto", 20): 0.92, ("transfer", 10): 0.90, ("ridge-cost", 10): 0.8}, "spearman")
    res = {"help-protocol/gold_6240": good, "help-protocol/essential_ph_1": bad}
    groups = dict.fromkeys(res, "help-protocol")
    lines = "\n".join(standard_summary(res, groups, None, {"essential_ph_1": (0.9, 0.878, 0.93)}))
    assert "| **mean of 2** | | **0.942** |" in lines and "target >= 0.972: NOT met" in lines
    assert "essential_ph_1: 0.902 < 0.95 (integer-ms phone table, noise ceiling 0.937: out of reach" in lines
    assert "- `auto` @20: mean 0.957; 1 of 2 devices >= 0.95 (`transfer` alone: mean nan)." in lines
    assert "  - essential_ph_1: 0.922 < 0.95" in lines  # the 20-sample shortfall is listed too
    assert "mean noise ceiling of the 1 devices: 0.937" in lines
    assert "linear ceiling 0.930: no linear model on the prior and structure features reaches 0.95" in lines
    assert "| essential_ph_1 | eval | 0.902 | 0.922 | 0.902 | nan | 0.802 | nan | nan | 0.937 | 0.930 |  |" in lines
    assert "| mean of 1 dev | | 0.982 |" in lines and "| mean of 1 eval | | 0.902 |" in lines  # gold_6240 is a dev device
    # 0.937 - 0.902 > 0.02 and `auto` ties `transfer` there: no method in the suite gets closer
    assert ("devices more than 0.02 below their noise ceiling with `auto` @10: 1 of 2: essential_ph_1 0.9020 vs "
            "ceiling 0.937 (best other method in the suite: `transfer` 0.9020, not closer at the table's three "
            "decimals)") in lines and "closer: met)" in lines
    assert ("`auto` @10 against its best member chosen on the test set: `transfer` 0.937, `auto` 0.942 "
            "(gap -0.005, at most 0.005: met)") in lines


def test_pixel3_is_not_called_an_integer_ms_table():
    """pixel3's column in the shared HELP table holds fractional ms; the other phones whole ms."""
    bad = _rows({("auto", 10): 0.85, ("auto", 20): 0.90}, "spearman")
    res = {"help-protocol/pixel3": bad}
    lines = "\n".join(standard_summary(res, dict.fromkeys(res, "help-protocol"), None, {"pixel3": (0.95, 0.962, 0.97)}))
    assert "pixel3: 0.852 < 0.95 (phone, noise ceiling 0.981: table noise does not explain" in lines
    assert "linear ceiling 0.970: 0.118 above `auto`, the cost of fitting on 10 samples" in lines
    assert "integer-ms" not in lines


def test_help_prior_excludes_the_same_chip_at_other_batch_sizes(tmp_path):
    f = tmp_path / "t.csv"
    pd.DataFrame(columns=["arch_idx", "arch_str", "titanxp_1", "titanxp_256", "pixel3", "gold_6240"]).to_csv(f, index=False)
    assert hardware("titanxp_256") == "titanxp" and hardware("pixel3") == "pixel3"
    assert prior_for(f, "titanxp_1") == (f"{f}:pixel3", f"{f}:gold_6240")
    assert Experiment("x", "latency", "nb201", "t:c", ("auto",)).seeds is None


def test_protocol_flags_a_device_where_a_member_gets_closer_to_the_ceiling():
    far = _rows({("auto", 10): 0.90, ("auto", 20): 0.92, ("meta-gp", 10): 0.93, ("transfer", 10): 0.91}, "spearman")
    res = {"help-protocol/pixel3": far}
    lines = "\n".join(standard_summary(res, dict.fromkeys(res, "help-protocol"), None, {"pixel3": (0.95, 0.962, 0.97)}))
    assert "pixel3 0.9020 vs ceiling 0.981 (best other method in the suite: `meta-gp` 0.9320, closer)" in lines
    assert "closer: NOT met)" in lines
    assert "`meta-gp` 0.932, `auto` 0.902 (gap +0.030, at most 0.005: NOT met)" in lines

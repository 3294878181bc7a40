"""The experiments of the standard predictor comparison (`make predictors`), as records.

Each `Experiment` is one call of the evaluation engine (bench/engine/predictors.py) into
`results/predictors/<name>/`; `standard_experiments` lists them. The report
(bench/reports/predictor_report.py) reads the results back by `group`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hwnas.core.paths import ACCURACIES_DIR
from hwnas.predictors.transfer import chip_of

from ..engine.predictors import ACCURACY_PREDICTORS

# Subsets keep `make predictors` within about half an hour on a shared 2-core machine; every
# accuracy predictor runs on the 200-epoch table with 5 seeds.
LOWFI_PREDICTORS = ("auto", "bilinear-struct", "gcn-struct", "xgb", "xgb-struct", "xgb-graf", "xgb-graf-struct",
                    "rf-graf", "ridge-struct")
LATENCY_PREDICTORS = ("auto", "ridge", "ridge-ops", "ridge-cost", "ridge-struct", "bilinear", "lut-sum", "xgb",
                      "transfer")
# `auto` fits 5 folds x 4 candidates: on the latency tables it runs at 20 and 100 archs only (at
# 1000 it took 0.5-3 min per fit here), and not on FBNet (chain-space encodings are computed per
# arch: minutes per fit); this keeps `make predictors` near half an hour
FBNET_PREDICTORS = tuple(n for n in LATENCY_PREDICTORS if n != "auto")
# `auto` and its small-sample members (shown so that the average can be read against them)
PROTOCOL_PREDICTORS = ("auto", "transfer", "transfer-nearest", "ridge-cost", "meta-gp")

HELP_NB201_DEVICES = ("1080ti_1", "2080ti_32", "titanxp_256", "gold_6240", "silver_4114", "pixel3",
                      "samsung_a50", "essential_ph_1")
HELP_FBNET_DEVICES = ("1080ti_32", "gold_6240", "pixel3")
#: The 21 devices of the shared HELP NB201 table split BEFORE any new method was run on
#: them. Every choice of the prior-informed `auto` rule and of the non-linear few-shot member was made
#: on DEVELOPMENT_DEVICES with DEVELOPMENT_SEEDS only; EVALUATION_DEVICES (and the reported sample seeds
#: 0-4 on every device) were run once, afterwards. Split by chip (a chip's batch-size variants stay on
#: one side, as the same-chip prior rule keeps them together) and stratified by kind, so each side holds
#: GPUs, a server CPU and phones of both table formats: GPUs 1080ti and titanx for development,
#: 2080ti, titan_rtx and titanxp for evaluation; CPUs gold_6240 / silver_4114 and silver_4210r;
#: phones pixel3 (fractional ms) and samsung_a50 (integer ms) / essential_ph_1 and samsung_s7.
DEVELOPMENT_DEVICES = ("1080ti_1", "1080ti_256", "1080ti_32", "titanx_1", "titanx_256", "titanx_32",
                       "gold_6240", "pixel3", "samsung_a50")
EVALUATION_DEVICES = ("2080ti_1", "2080ti_256", "2080ti_32", "titan_rtx_1", "titan_rtx_32", "titanxp_1",
                      "titanxp_256", "titanxp_32", "silver_4114", "silver_4210r", "essential_ph_1", "samsung_s7")
#: sample seeds of the development draws (the reported figures use seeds 0-4)
DEVELOPMENT_SEEDS = tuple(range(100, 110))
SAMPLES = ACCURACIES_DIR / "mbv3-fmnist" / "supernet-samples.parquet"
ARCH_COLUMNS = ("arch_idx", "arch_str", "op_idx_list")


@dataclass(frozen=True)
class Experiment:
    """One comparison: predictors x train sizes x seeds on one table column."""

    name: str
    group: str  # "accuracy", "accuracy-lowfi", "latency", "help-protocol", "supernet"
    space: str
    table: str  # PATH:COLUMN
    predictors: tuple[str, ...]
    train_sizes: tuple[int, ...] = (10, 100, 1000)
    mode: str = "auto"
    seeds: int | None = None  # None: the run's --seeds
    prior_tables: tuple[str, ...] = field(default_factory=tuple)
    size_limits: tuple[tuple[str, int], ...] = ()  # (predictor, largest train size it runs at)


def hardware(col: str) -> str:
    """'titanxp_256' -> 'titanxp': a device's batch-size variants share one chip."""
    return chip_of(col)


def device_columns(table: Path) -> list[str]:
    return [c for c in pd.read_csv(table, nrows=1).columns if c not in ARCH_COLUMNS]


def prior_columns(columns: list[str], dev: str) -> list[str]:
    """HELP's prior for `dev` among a table's device `columns`: every other device except the
    same chip at other batch sizes (those would leak the target through a near copy)."""
    return [c for c in columns if hardware(c) != hardware(dev)]


def prior_for(table: Path, dev: str) -> tuple[str, ...]:
    """`prior_columns` of `dev` as table specs of `table`."""
    return tuple(f"{table}:{c}" for c in prior_columns(device_columns(table), dev))


def standard_experiments(data: Path) -> list[Experiment]:
    acc200 = data / "nb201-acc-200ep/nb201_cifar10_200ep.csv"
    acc12 = data / "nb201-acc-12ep-minibench/nb201_cifar10_12ep.csv"
    help201 = data / "help-latency/help_nasbench201_latency_ms.csv"
    helpfb = data / "help-latency/help_fbnet_latency_ms.csv"
    for f in (acc200, acc12, help201, helpfb):
        if not f.exists():
            raise FileNotFoundError(f"{f}: benchmark table missing; set HWNAS_DATA_DIR to the shared data folder")
    exps = [
        Experiment("nb201-c10-200ep", "accuracy", "nb201", f"{acc200}:cifar10_test_acc", ACCURACY_PREDICTORS),
        Experiment("nb201-c10-12ep", "accuracy-lowfi", "nb201", f"{acc12}:cifar10-test", LOWFI_PREDICTORS, seeds=3),
    ]
    for family, space, table, devices, names in (("nb201", "nb201", help201, HELP_NB201_DEVICES, LATENCY_PREDICTORS),
                                                 ("fbnet", "fbnet", helpfb, HELP_FBNET_DEVICES, FBNET_PREDICTORS)):
        for dev in devices:
            exps.append(Experiment(f"help-{family}-{dev}", "latency", space, f"{table}:{dev}", names,
                                   train_sizes=(20, 100, 1000), mode="cost", prior_tables=prior_for(table, dev),
                                   size_limits=(("auto", 100),)))
    # HELP's protocol: every device of the NB201 table, 10 and 20 samples of it, the others as prior
    for dev in device_columns(help201):
        exps.append(Experiment(f"help-protocol/{dev}", "help-protocol", "nb201", f"{help201}:{dev}",
                               PROTOCOL_PREDICTORS, train_sizes=(10, 20), mode="cost",
                               prior_tables=prior_for(help201, dev)))
    if SAMPLES.exists():
        exps.append(Experiment("mbv3-fmnist-supernet", "supernet", "mbv3-fmnist", f"{SAMPLES}:val_acc",
                               ACCURACY_PREDICTORS, mode="accuracy"))
    return exps

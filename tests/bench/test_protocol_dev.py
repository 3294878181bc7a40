"""The development runner: the rules it scores are `auto`'s own, on development seeds only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.bench.experiments import protocol_dev
from hwnas.search.spaces import create_space


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """600 NB201 cells, six devices (three chips at two batch sizes each) made of op costs."""
    sp = create_space("nb201")
    archs = sp.sample_many(600, np.random.default_rng(0))
    ops = np.array([[list(a).count(o) for o in range(5)] for a in archs], dtype=float)
    rng = np.random.default_rng(1)
    cols = {f"{chip}_{b}": 1.0 + ops @ rng.uniform(0.1, 1.0, 5) + 0.05 * rng.random(600)
            for chip in ("gpu", "cpu", "npu") for b in (1, 32)}
    f = tmp_path_factory.mktemp("t") / "help.csv"
    pd.DataFrame({"arch_idx": range(600), "arch_str": [sp.to_str(a) for a in archs], **cols}).to_csv(f, index=False)
    return f


def test_rule_table_scores_auto_rule_and_members(small_table):
    draws = protocol_dev.member_draws(small_table, ["gpu_1"], k=8, seeds=[100], n_test=200,
                                      members=("transfer", "ridge-cost", "meta-gp"))
    d = draws[0]
    assert set(d["prior"]) == {"transfer", "ridge-cost", "meta-gp"}  # each cpu device with the npu ones as prior, and back
    from hwnas.predictors.base import create_predictor
    from hwnas.predictors.transfer import PriorTables

    # the combined prediction is what `auto` with the same rule predicts on those cells
    df = pd.read_csv(small_table)
    sp = create_space("nb201")
    archs = [sp.from_str(s) for s in df.arch_str]
    tr, te = protocol_dev.split(600, 8, 100)
    te = np.sort(np.random.default_rng(100 + 999).choice(te, 200, replace=False))
    cols = ["cpu_1", "cpu_32", "npu_1", "npu_32"]
    prior = PriorTables(list(df.arch_str), [f"help:{c}" for c in cols], df[cols].to_numpy())
    auto = create_predictor("auto", space=sp, seed=100, target="cost", candidates=("transfer", "ridge-cost", "meta-gp"),
                            prior_strength=10).fit([archs[i] for i in tr], df.gpu_1.to_numpy()[tr], prior=prior)
    np.testing.assert_allclose(protocol_dev.combine(d, list(d["preds"]), 10, 4), auto.predict([archs[i] for i in te]),
                               rtol=1e-9)
    table = protocol_dev.rule_table(draws, strengths=(0, 10), powers=(4,))
    assert {"transfer", "meta-gp", "k0 = 10, p = 4", "previous rule (3 members, LOO ** 4)"} <= set(table.index)
    assert table["mean spearman"].between(-1, 1).all()


def test_dev_command_refuses_reported_seeds():
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    r = CliRunner().invoke(cli, ["dev", "predictors", "--seeds", "0-4"])
    assert r.exit_code != 0 and "development seeds only" in r.output

"""The uniform final-validation rule (`search(..., final_reads=k)`): every method ranks its own
candidates, records its own top-1 pick (k = 0, unread) and returns the best of its top k read
once each; k = 0 returns the top-1 itself and reads nothing."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from hwnas.search.methods import FunctionAccuracy, create_method

from tests.search.chain_tiny import tiny_space, tiny_table
from tests.search.test_pool_search import ONE_SHOT_TINY


def _acc():
    """A deterministic score that does not follow any method's ranking (so the best read is not
    always the first)."""
    return FunctionAccuracy(lambda archs: np.array([float(zlib.crc32(str(a).encode()) % 1000) for a in archs]))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    sp = tiny_space()
    _, _, cons = tiny_table(sp, tmp_path_factory.mktemp("t") / "lat_ms.csv")
    return sp, cons


@pytest.mark.parametrize("method", ["mgas", "bayesnas", "dinas"])
def test_one_shot_methods_read_their_top_k_and_report_their_top_1(chain, method):
    sp, cons = chain
    acc = _acc()
    r = create_method(method, **ONE_SHOT_TINY[method]).search(sp, acc, cons, budget=10, seed=0, final_reads=3)
    read = acc.history()
    assert 1 <= r.queries == len(read) <= 3  # k reads, never the method's own larger default
    assert r.model_arch is not None and sp.to_str(r.model_arch) == read[0][0]  # its top-1 is read first
    assert r.arch_str == max(read, key=lambda t: t[1])[0] and r.feasible
    assert r.final_rank == 1 + [a for a, _ in read].index(r.arch_str)  # its place in the method's own ranking
    acc0 = _acc()
    r0 = create_method(method, **ONE_SHOT_TINY[method]).search(sp, acc0, cons, budget=10, seed=0, final_reads=0)
    assert r0.queries == 0 and acc0.history() == [] and r0.final_rank == 1
    assert r0.arch_str == sp.to_str(r0.model_arch) == sp.to_str(r.model_arch)  # same seed, same top-1
    assert r0.feasible


def test_query_methods_top_1_is_their_best_read_and_k_adds_no_budget_to_the_search(chain):
    sp, cons = chain
    acc = _acc()
    r = create_method("random").search(sp, acc, cons, budget=6, seed=0, final_reads=2)
    read = acc.history()
    best = max(read, key=lambda t: t[1])[0]
    assert r.queries == 6 and r.arch_str == best == sp.to_str(r.model_arch)
    r0 = create_method("random").search(sp, _acc(), cons, budget=6, seed=0, final_reads=0)
    assert r0.arch_str == best and r0.queries == 6


def test_final_reads_beyond_the_budget_is_one_clear_error(chain):
    sp, cons = chain
    with pytest.raises(ValueError, match="final_reads"):
        create_method("random").search(sp, _acc(), cons, budget=4, seed=0, final_reads=5)


def test_search_runs_record_both_picks_and_refuse_to_mix_another_k(nb201_tables, tmp_path):
    from hwnas.bench.engine import search

    acc, lat, _, _ = nb201_tables
    c = f"latency_ms<=6@table:{lat}:dev"
    df = search.run("nb201", ["random"], f"table:{acc}:acc", [c], (12,), 2, tmp_path, progress=False, final_reads=3)
    assert (df.final_reads == 3).all() and df.model_arch_str.notna().all() and df.model_cost.notna().all()
    assert (df.model_arch_str == df.arch_str).all() and (df.final_rank == 1).all()  # random's top-1 is its best
    # read: the k reads add nothing
    assert (df.queries == 12).all()
    with pytest.raises(Exception, match="final_reads"):
        search.run("nb201", ["random"], f"table:{acc}:acc", [c], (12,), 2, tmp_path, progress=False, final_reads=5)


def test_runs_made_under_another_rule_are_set_aside_and_run_again(nb201_tables, tmp_path):
    """A folder of runs made by each method's own rule (no final_reads) is not resumed as if they
    were made under k: those rows move to superseded-runs.csv and run again (the provenance alone
    cannot tell, since the older folder recorded no such fact)."""
    from hwnas.bench.engine import search

    acc, lat, _, _ = nb201_tables
    c = f"latency_ms<=6@table:{lat}:dev"
    old = search.run("nb201", ["random"], f"table:{acc}:acc", [c], (12,), 2, tmp_path, progress=False)
    assert "final_reads" not in old
    new = search.run("nb201", ["random"], f"table:{acc}:acc", [c], (12,), 2, tmp_path, progress=False, final_reads=3)
    assert len(new) == 2 and (new.final_reads == 3).all()
    assert len(pd.read_csv(tmp_path / "superseded-runs.csv")) == 2


class _OwnChoice(__import__("hwnas.search.methods.base", fromlist=["Searcher"]).Searcher):
    """A query method that spends its budget and returns an unread feasible arch of its own
    choosing (as GCN returns its model's argmax): the contract replaces it by the best read."""

    kind = "query"
    name = "own-choice"

    def _search(self, space, accuracy, constraints, budget, rng):
        from hwnas.search.methods.base import sample_feasible

        archs = sample_feasible(space, constraints, rng, budget + 1, key=accuracy.key)
        accuracy.query(archs[:budget])
        return archs[-1], 1.0, "own pick"


def test_a_query_methods_own_choice_is_its_top_1_and_the_k_reads_judge_it(chain):
    sp, cons = chain
    r0 = _OwnChoice().search(sp, _acc(), cons, budget=8, seed=3, final_reads=0)
    acc = _acc()
    r2 = _OwnChoice().search(sp, acc, cons, budget=8, seed=3, final_reads=2)
    own = r0.arch_str  # k = 0: the method's own (unread) choice, not the best read the contract settled on
    assert sp.to_str(r0.model_arch) == own == sp.to_str(r2.model_arch) and r0.model_predicted == 1.0
    read = dict(acc.history())
    assert own in read  # read once under k = 2, counted on top of the budget
    assert r2.queries == 9 and r2.arch_str == max(read, key=read.get)  # the best of own pick and best read
    settled = _OwnChoice().search(sp, _acc(), cons, budget=8, seed=3)  # without the rule: the contract's pick
    assert settled.model_arch is None and settled.queries == 8


def test_hwnas_search_takes_final_reads(nb201_tables, tmp_path):
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    acc, lat, _, _ = nb201_tables
    r = CliRunner().invoke(cli, ["search", "--space", "nb201", "--method", "random", "--accuracy", f"table:{acc}:acc",
                                 "--constraint", f"latency_ms<=6@table:{lat}:dev", "--budget", "10", "--seeds", "1",
                                 "--out", str(tmp_path), "--final-reads", "2"])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert (runs.final_reads == 2).all() and runs.model_arch_str.notna().all()

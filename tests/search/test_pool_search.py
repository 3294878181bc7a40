"""`hwnas search --pool`: a table's arch_str column as a finite space, searched like NB201."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.core.capabilities import Chain, is_enumerable
from hwnas.search.constraints import resolve
from hwnas.search.methods import TableAccuracy
from hwnas.search.methods.base import Searcher
from hwnas.search.spaces import ArchError, create_space
from hwnas.search.spaces.pool import pooled_space, read_pool


@pytest.fixture
def user_pool(tmp_path):
    """40 random mbv3-fmnist archs with a made-up accuracy and latency (a user's own pool)."""
    sp = create_space("mbv3-fmnist")
    rng = np.random.default_rng(3)
    archs = sp.sample_many(40, rng)
    size = np.array([sum(len(s) for s in a) for a in archs], float)
    df = pd.DataFrame({"arch_str": [sp.to_str(a) for a in archs], "val_acc": 80 + size + rng.random(40),
                       "latency_ms": size + rng.random(40)})
    p = tmp_path / "pool.csv"
    df.to_csv(p, index=False)
    return p, df


def test_a_pool_is_an_enumerable_chain_space_whose_variation_stays_inside(user_pool):
    p, df = user_pool
    sp = read_pool(create_space("mbv3-fmnist"), p)
    assert is_enumerable(sp) and isinstance(sp, Chain) and sp.name == "mbv3-fmnist" and sp.size() == 40
    assert [sp.to_str(a) for a in sp.iter_all()] == list(df["arch_str"])
    assert all(sp.from_index(sp.to_index(a)) == a for a in sp.iter_all())
    rng = np.random.default_rng(0)
    members = set(sp.iter_all())
    for _ in range(50):
        a, b = sp.sample(rng), sp.sample(rng)
        m = sp.mutate(a, rng)
        assert m in members and m != a
        assert sp.crossover(a, b, rng) in members
    assert sp.smallest() in members
    outside = create_space("mbv3-fmnist").smallest()
    assert outside not in members and not sp.in_pool(outside)
    with pytest.raises(ArchError, match="not in the pool"):
        sp.to_index(outside)


def test_bad_pools_are_one_clear_error(tmp_path):
    base = create_space("mbv3-fmnist")
    pd.DataFrame({"arch": ["k3e1|k3e1|k3e1"]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(ValueError, match="no arch_str column"):
        read_pool(base, tmp_path / "a.csv")
    pd.DataFrame({"arch_str": ["k3e1|k3e1|k3e1", "k9e9|k3e1|k3e1"]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ArchError, match="row 2"):
        read_pool(base, tmp_path / "b.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pool(base, tmp_path / "none.csv")


def test_two_pools_of_one_size_do_not_share_cached_cells():
    from hwnas.predictors.cells import cells

    base = create_space("mbv3-fmnist")
    rng = np.random.default_rng(0)
    a, b = (pooled_space(base, base.sample_many(5, rng)) for _ in range(2))
    assert cells(a).archs == list(a.iter_all()) and cells(b).archs == list(b.iter_all())


@pytest.mark.parametrize("method, params", [("random", []), ("evolution", ["--param", "evolution.population=6"]),
                                             ("binas", []), ("gcn", ["--param", "gcn.epochs=20"])])
def test_search_reads_and_returns_only_pool_archs_with_exact_regret(user_pool, tmp_path, method, params):
    p, df = user_pool
    bound = float(np.median(df["latency_ms"]))
    r = CliRunner().invoke(cli, ["search", "--space", "mbv3-fmnist", "--pool", str(p), "--method", method,
                                 "--accuracy", f"table:{p}:val_acc", "--constraint",
                                 f"latency_ms<={bound}@table:{p}:latency_ms", "--budget", "12", "--seeds", "2",
                                 "--out", str(tmp_path / "out"), *params])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert set(runs["arch_str"]) <= set(df["arch_str"]) and runs["feasible"].all()
    best = df.loc[df["latency_ms"] <= bound, "val_acc"].max()
    assert runs["optimum_accuracy"].to_numpy() == pytest.approx([best] * 2)
    assert (runs["regret"] >= -1e-9).all() and (runs["queries"] <= 12).all()


def test_a_pick_outside_the_pool_becomes_the_nearest_member(user_pool):
    p, df = user_pool
    base = create_space("mbv3-fmnist")
    sp = read_pool(base, p)

    class Outside(Searcher):  # a method that decodes archs of the whole base space
        def _search(self, space, accuracy, constraints, budget, rng):
            return base.smallest(), None, ""

    acc = TableAccuracy(sp, f"table:{p}:val_acc")
    bc = resolve(sp, [f"latency_ms<=1000@table:{p}:latency_ms"])
    r = Outside().search(sp, acc, bc, budget=3)
    assert sp.in_pool(r.arch) and "outside the pool" in r.notes


def test_a_pool_reads_the_base_spaces_device_tables_by_name(user_pool, tmp_path):
    """`latency_ms<=X@cpu-t1` resolves to the committed mbv3-fmnist block table for a pool too."""
    from hwnas.core.paths import TABLES_DIR

    if not (TABLES_DIR / "mbv3-fmnist" / "cpu-t1.parquet").exists():
        pytest.skip("no committed cpu-t1 table")
    p, df = user_pool
    sp = read_pool(create_space("mbv3-fmnist"), p)
    (bc,) = resolve(sp, ["latency_ms<=1000@cpu-t1"], TABLES_DIR)
    v = bc.values(list(sp.iter_all()))
    assert v.shape == (40,) and (v > 0).all()
    assert v == pytest.approx(resolve(create_space("mbv3-fmnist"), ["latency_ms<=1000@cpu-t1"], TABLES_DIR)[0]
                              .values(list(sp.iter_all())))


ONE_SHOT_TINY = {"mgas": dict(data="digits", n_train=128, epochs=2, batch_size=16, n_val=64),
                 "bayesnas": dict(data="digits", n_images=128, epochs=2, batch_size=16, hessian_samples=2, n_val=64),
                 "dinas": dict(data="digits", epochs=1, train_per_epoch=16, batch_size=16, threads=1, generations=5,
                               check_isometry=False, score_batches=2, n_val=64)}


@pytest.mark.parametrize("method", ["mgas", "bayesnas", "dinas"])
def test_one_shot_methods_read_only_pool_archs(tmp_path, method):
    """A one-shot method on a pool ranks the pool's feasible members by its own block scores and
    reads only those (the accuracy source here refuses any other arch)."""
    from hwnas.search.methods import FunctionAccuracy, create_method

    from tests.search.chain_tiny import tiny_space, tiny_table

    base = tiny_space()
    _, _, cons = tiny_table(base, tmp_path / "lat_ms.csv")
    sp = pooled_space(base, base.sample_many(30, np.random.default_rng(1)))

    def acc(archs):
        assert all(sp.in_pool(a) for a in archs), "read an arch outside the pool"
        return np.array([sum(len(b) for b in a) for a in archs], dtype=float)

    r = create_method(method, **ONE_SHOT_TINY[method]).search(sp, FunctionAccuracy(acc), cons, budget=3, seed=0)
    assert sp.in_pool(r.arch) and r.queries <= 3

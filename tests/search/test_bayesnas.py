"""BayesNAS: the Laplace update by hand, pruning, the Gauss-Newton diagonal against brute force,
the cost fit, the repair, and a tiny end-to-end search on the synthetic NB201 problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hwnas.search.constraints import resolve
from hwnas.search.methods import TableAccuracy, create_method
from hwnas.search.methods.bayesnas import (
    PRUNE_GAMMA,
    additive_costs,
    entropy_scores,
    laplace_update,
    pick_arch,
    repair,
    variants,
)
from hwnas.search.spaces import create_space

TINY = dict(data="digits", n_images=256, epochs=1, C=4, batch_size=64)


def _problem(nb201_tables, bound: float = 6.0):
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    return sp, TableAccuracy(sp, f"table:{acc_path}:acc"), resolve(sp, [f"latency_ms<={bound}@table:{lat_path}:dev"])


@pytest.fixture(scope="module")
def problem(nb201_tables):
    """Reading the two 15,625-row tables takes seconds: once per module."""
    return _problem(nb201_tables)


# ---- the Laplace update --------------------------------------------------------------------------
def test_laplace_update_matches_the_formulas_by_hand():
    # 2 cells, 1 edge, origin + 2 children; gamma = lam = H = 1 -> C = 1/2, w = sqrt(2 * 1/2) = 1
    s = np.array([[[1.0, 0.5, 0.1]], [[1.0, 0.5, 0.1]]])
    gamma, w, C = laplace_update(s, np.ones_like(s), np.ones((1, 3)), np.ones((1, 3)))
    assert C == pytest.approx(np.full_like(s, 0.5))
    assert w == pytest.approx(np.ones((1, 3)))
    g_origin = math.sqrt(2)  # ||(1, 1)|| / 1
    assert gamma[0, 0] == pytest.approx(g_origin)
    assert gamma[0, 1] == pytest.approx(1 / (1 / math.sqrt(0.5) + 1 / g_origin))  # = sqrt(2)/3
    assert gamma[0, 2] == pytest.approx(1 / (1 / math.sqrt(0.02) + 1 / g_origin))  # = 1/(5.5 sqrt 2)
    assert gamma[0, 1] == pytest.approx(math.sqrt(2) / 3) and gamma[0, 2] == pytest.approx(1 / (5.5 * math.sqrt(2)))


def test_laplace_update_per_cell_hessian_and_lambda():
    # H = (2, 0) over cells, lam = 2, gamma = 1: C = (1/2, 1), w = sqrt(|1 - 1/2| + 0) = sqrt(1/2)
    s = np.array([[[3.0, 4.0]], [[4.0, 3.0]]])
    H = np.array([[[2.0, 2.0]], [[0.0, 0.0]]])
    gamma, w, C = laplace_update(s, H, np.ones((1, 2)), np.full((1, 2), 2.0))
    assert C[:, 0, 0] == pytest.approx([0.5, 1.0])
    assert w[0, 0] == pytest.approx(math.sqrt(0.5))
    assert gamma[0, 0] == pytest.approx(5.0 / math.sqrt(0.5))  # ||(3, 4)|| / w
    assert gamma[0, 1] == pytest.approx(1 / (math.sqrt(0.5) / 5.0 + 1 / gamma[0, 0]))


def test_a_child_never_exceeds_its_parent():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = rng.normal(size=(3, 6, 5)) * rng.uniform(0, 3)
        H = rng.exponential(size=(3, 6, 5)) * 10 ** rng.uniform(-4, 1)
        gamma, _, _ = laplace_update(s, H, rng.uniform(0.01, 5, (6, 5)), rng.uniform(1e-3, 1, (6, 5)))
        assert (gamma[:, 1:] <= gamma[:, :1] + 1e-12).all() and (gamma >= 0).all()


def test_negative_hessian_entries_are_clipped():
    s = np.ones((2, 1, 2))
    g_neg, _, C = laplace_update(s, -np.ones_like(s), np.ones((1, 2)), np.ones((1, 2)))
    assert np.isfinite(C).all() and C == pytest.approx(np.ones_like(s))  # as if H = 0


# ---- pruning and the final architecture -----------------------------------------------------------
def test_switches_with_a_tiny_norm_are_pruned():
    s = np.ones((3, 2, 5))
    s[:, 0, 3] = 1e-4  # edge 0, conv 3x3: its switch has shrunk to almost nothing
    s[:, 1, 0] = 1e-4  # edge 1: the origin switch has shrunk: the whole edge goes
    H = np.full_like(s, 0.05)
    gamma, _, _ = laplace_update(s, H, np.ones((2, 5)), np.full((2, 5), 0.01))
    pruned = gamma < PRUNE_GAMMA
    assert pruned[0, 3] and not pruned[0, [0, 1, 2, 4]].any()
    assert pruned[1].all()  # a pruned origin takes every child with it (child <= parent)
    arch = pick_arch(entropy_scores(np.vstack([gamma, np.ones((4, 5))])))
    assert arch[1] == 0 and arch[0] != 3  # edge 1 is `none`; edge 0 never picks the pruned op


def test_prune_threshold_is_zero_entropy():
    for g in (0.5 * PRUNE_GAMMA, 2 * PRUNE_GAMMA):
        assert (0.5 * math.log(2 * math.pi * math.e * g) < 0) == (g < PRUNE_GAMMA)


def test_zero_norm_gives_zero_gamma():
    s = np.zeros((2, 1, 3))
    gamma, _, _ = laplace_update(s, np.ones_like(s), np.ones((1, 3)), np.ones((1, 3)))
    assert (gamma == 0).all()


def test_pick_arch_takes_the_largest_entropy_per_edge():
    gamma = np.full((6, 5), 2 * PRUNE_GAMMA)
    gamma[:, 2] = 10 * PRUNE_GAMMA
    gamma[3, 0] = 0.1 * PRUNE_GAMMA  # origin of edge 3 pruned
    gamma[3, 1:] = 0.05 * PRUNE_GAMMA
    assert pick_arch(entropy_scores(gamma)) == (2, 2, 2, 0, 2, 2)


# ---- costs, repair, variants ---------------------------------------------------------------------
def test_additive_costs_recover_the_synthetic_latency_model(problem):
    sp, _, cons = problem
    c = additive_costs(sp, cons)
    lat_w = np.array([0.0, 0.1, 1.0, 2.5, 0.4])  # conftest's per-op latency, mean over ops 1.0
    assert c == pytest.approx(np.tile(lat_w / lat_w[1:].mean(), (6, 1)), abs=0.02)


def test_repair_makes_the_pick_feasible_dropping_the_least_valuable_op(problem):
    sp, _, cons = problem
    scores = np.zeros((6, 5))
    scores[:, 3] = 2.0  # conv 3x3 best everywhere (latency ~16 ms > 6)
    scores[:, 2] = 1.5
    scores[0, 3] = 5.0  # edge 0's conv 3x3 is worth keeping most
    picked = pick_arch(scores)
    assert not cons[0].feasible([picked])[0]
    arch, swaps = repair(picked, scores, cons, sp)
    assert cons[0].feasible([arch])[0] and swaps > 0
    assert arch[0] == 3  # the most valuable op survives the repair


def test_variants_are_ranked_by_score_and_start_with_the_arch():
    scores = np.zeros((6, 5))
    scores[:, 2] = 1.0
    arch = (2, 2, 2, 2, 2, 1)
    v = variants(arch, scores, 5)
    assert v[0] == (2,) * 6  # one change up: score 6 beats the arch's 5
    assert v[1] == arch and len(v) == 1 + 6 * 4 + 15 * 16 and len(set(v)) == len(v)


# ---- curvature ---------------------------------------------------------------------------------
def test_ggn_diagonal_matches_brute_force_per_sample_jacobians():
    torch = pytest.importorskip("torch")
    from hwnas.search.methods.bayesnas import _switch_network, ggn_diag

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs: threads only fight other jobs
    try:
        _check_ggn(torch, _switch_network, ggn_diag)
    finally:
        torch.set_num_threads(threads)


def _check_ggn(torch, _switch_network, ggn_diag):
    torch.manual_seed(0)
    net = _switch_network(create_space("nb201"), 2, 1, 1, 3)
    with torch.no_grad():
        net.switches.uniform_(0.5, 1.5)
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    alive = np.ones((6, 5), dtype=bool)
    alive[2, 3] = False
    x, y = torch.randn(3, 1, 8, 8), torch.tensor([0, 2, 1])
    d = ggn_diag(net, x, y, alive)
    assert net.training  # restored
    net.eval()
    want = torch.zeros_like(net.switches)
    for n in range(3):
        def f(S, n=n):
            return net(x[n:n + 1], alive, switches=S.unsqueeze(0))[0]
        J = torch.autograd.functional.jacobian(f, net.switches.detach().clone()).reshape(3, -1)
        p = torch.softmax(f(net.switches.detach()), 0)
        A = torch.diag(p) - torch.outer(p, p)
        want += torch.einsum("ki,kl,li->i", J, A, J).reshape(want.shape) / 3
    want[:, 2, 3] = 0.0
    assert torch.allclose(d, want, atol=1e-6, rtol=1e-4) and (d >= -1e-9).all()


def test_exact_hessian_diag_by_double_backprop():
    torch = pytest.importorskip("torch")
    from hwnas.search.methods.bayesnas import exact_hessian_diag

    S = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]], requires_grad=True)  # (1 cell, 2 edges, 2)
    loss = (S**3).sum() + S[0, 0, 0] * S[0, 1, 1]  # the cross term is off the diagonal
    alive = np.array([[True, True], [False, True]])
    H = exact_hessian_diag(loss, S, alive)
    assert torch.allclose(H, torch.tensor([[[6.0, -12.0], [0.0, 18.0]]]))


# ---- end to end ---------------------------------------------------------------------------------
def test_default_construction_and_bad_hessian(problem):
    from hwnas.search.methods import method_meta

    m = create_method("bayesnas")
    assert set(method_meta("bayesnas")["supports"]) == {"enumerable+cell-graph", "chain"}
    assert m.data == "fashion-mnist" and m.hessian == "ggn"
    sp, acc, cons = problem
    with pytest.raises(ValueError, match="hessian must be"):
        create_method("bayesnas", hessian="hutchinson").search(sp, acc, cons, budget=5)


def test_tiny_search_is_feasible_within_budget_and_reproducible(problem):
    sp, acc, cons = problem
    m = create_method("bayesnas", **TINY, k=6)
    r = m.search(sp, acc, cons, budget=40, seed=3)
    assert r.feasible and r.queries <= 6 and r.method == "bayesnas"
    assert m.gamma_.shape == (6, 5) and (m.gamma_[:, 1:] <= m.gamma_[:, :1] + 1e-12).all()
    assert len(m.history_) == 1 and cons[0].feasible([m.final_])[0]
    assert r.accuracy == pytest.approx(max(v for _, v in acc.history()))  # the best queried arch is returned
    r2 = create_method("bayesnas", **TINY, k=6).search(sp, acc, cons, budget=40, seed=3)
    assert r2.arch_str == r.arch_str


def test_budget_smaller_than_k_and_a_tight_bound(nb201_tables):
    sp, acc, cons = _problem(nb201_tables, bound=2.0)  # only cheap cells fit
    r = create_method("bayesnas", **TINY, k=10).search(sp, acc, cons, budget=2, seed=0)
    assert r.feasible and r.queries <= 2 and all(v <= 2.0 for v in r.costs.values())


# ---- chain spaces ------------------------------------------------------------------------------
def test_tree_laplace_update_by_hand():
    from hwnas.search.methods.bayesnas import laplace_update_tree

    # origin of block 1 (root), origin of block 2 (its child: depth chain), a kernel of block 2
    s = np.array([1.0, 0.5, 0.1])
    parent = [-1, 0, 1]
    gamma, w, C = laplace_update_tree(s, np.ones(3), np.ones(3), np.ones(3), parent)
    assert C == pytest.approx([0.5] * 3) and w == pytest.approx([math.sqrt(0.5)] * 3)  # sqrt(|1 - 1/2|)
    r2 = math.sqrt(2)
    assert gamma == pytest.approx([r2, r2 / 3, r2 / 13])  # own = |s| sqrt 2; 1/(1/own + 1/parent)
    # H = 3, lam = 1, gamma = 1/2: C = 1/(2 + 3) = 0.2, w = sqrt(|2 - 0.8|)
    g2, w2, _ = laplace_update_tree([0.3], [3.0], [0.5], [1.0], [-1])
    assert w2[0] == pytest.approx(math.sqrt(1.2)) and g2[0] == pytest.approx(0.3 / math.sqrt(1.2))
    with pytest.raises(ValueError, match="parent"):
        laplace_update_tree(s, np.ones(3), np.ones(3), np.ones(3), [-1, 2, 1])


def test_chain_switches_keep_depth_contiguous():
    torch = pytest.importorskip("torch")
    from hwnas.search.methods.bayesnas import ChainSwitches
    from hwnas.search.spaces.mbv3 import MBV3Space
    from hwnas.search.supernet.mixed_chain import build_mixed_net

    sp = MBV3Space("mbv3-fmnist", input_shape=(1, 8, 8), stem_channels=8, stem_stride=1, widths=(8,),
                   strides=(1,), se=(False,), acts=("relu",), head_expand=16, depths=(1, 3))
    sw = ChainSwitches(build_mixed_net(sp))
    o1, o2 = sw.origin[1], sw.origin[2]
    assert sw.origin[0] == -1 and sw.parent[o1] == -1 and sw.parent[o2] == o1  # the depth chain
    assert all(sw.parent[g] == o2 for g in sw.kernel[2] + sw.expand[2])
    assert all(sw.parent[g] == -1 for g in sw.kernel[0])  # a mandatory block's children are roots
    alive = np.ones(sw.G, dtype=bool)
    alive[o1] = False
    alive[sw.kernel[0]] = False
    alive = sw.protect(sw.cascade(alive), np.arange(sw.G, dtype=float))
    assert not alive[o2] and not alive[sw.kernel[2]].any()  # block 2 goes with block 1
    assert alive[sw.kernel[0]].sum() == 1 and alive[sw.kernel[0][-1]]  # the best kernel is kept
    score = np.where(alive, 1.0, -1.0)
    assert [len(b) for b in sw.decode(sp, alive, score)] == [1]
    gates = sw.gates(torch.ones(sw.G), alive)
    assert gates[1][2] == 0 and gates[1][3] == []  # pruned origin: the block is skipped
    net = build_mixed_net(sp)
    assert net(torch.randn(2, 1, 8, 8), gates).shape == (2, 10)


def test_tiny_chain_search_prunes_reports_and_is_feasible(tmp_path):
    from hwnas.search.methods import FunctionAccuracy

    from tests.search.chain_tiny import tiny_space, tiny_table

    sp = tiny_space()
    path, bound, cons = tiny_table(sp, tmp_path / "lat_ms.csv")
    acc = FunctionAccuracy(lambda archs: np.array([sum(len(b) for b in a) for a in archs], dtype=float))
    m = create_method("bayesnas", data="digits", n_images=128, epochs=2, batch_size=16, hessian_samples=2,
                      n_val=64, lambda_origin=1.0, lambda_child=1.0, switch_lr=0.5)
    r = m.search(sp, acc, cons, budget=3, seed=0)
    assert r.feasible and r.costs[f"latency_ms@table:{path}"] <= bound and r.queries <= 3
    st = r.stats
    assert st["pruned"] == st["pruned_origin"] + st["pruned_kernel"] + st["pruned_expand"] == int((~m.alive_).sum())
    assert st["switches"] == len(m.gamma_) and len(m.history_) == 2
    assert f"{st['pruned']}/{st['switches']} switches pruned" in r.notes
    assert r.search_cpu_s > 0 and r.supernet_train_acc is not None and r.supernet_val_acc is not None
    # a pruned origin takes its block's children with it, and a child's gamma never exceeds its parent's
    for g, p in enumerate(m.switch_net_.parent):
        if p >= 0:
            assert m.gamma_[g] <= m.gamma_[p] + 1e-12
            assert m.alive_[p] or not m.alive_[g]


def test_the_bound_enters_chain_training(tmp_path):
    """Two bounds, the same seeds: the switches BayesNAS trains see the bound, so the arch it
    decodes from them (before any repair) differs for some seed, and each returned pick is
    feasible. Version 1 normalised the cost away: the same decoded arch at every bound."""
    from hwnas.search.methods import FunctionAccuracy

    from tests.search.chain_tiny import tiny_space, tiny_table

    sp = tiny_space()
    path, _, _ = tiny_table(sp, tmp_path / "lat_ms.csv")
    rng = np.random.default_rng(1)
    lat = resolve(sp, [f"latency_ms<=1000@table:{path}"])[0].values([sp.sample(rng) for _ in range(300)])
    bounds = [float(np.quantile(lat, q)) for q in (0.25, 0.75)]
    decoded = {}
    for seed in (0, 1):
        for b in bounds:
            cons = resolve(sp, [f"latency_ms<={b}@table:{path}"])
            m = create_method("bayesnas", data="digits", n_images=128, epochs=2, batch_size=16, hessian_samples=2,
                              n_val=64, lambda_origin=1.0, lambda_child=1.0, switch_lr=0.5)
            r = m.search(sp, FunctionAccuracy(lambda archs: np.array([sum(len(x) for x in a) for a in archs], float)),
                         cons, budget=3, seed=seed)
            assert r.feasible and r.costs[f"latency_ms@table:{path}"] <= b
            decoded[seed, b] = sp.to_str(m.picked_)
    assert any(decoded[s, bounds[0]] != decoded[s, bounds[1]] for s in (0, 1)), decoded

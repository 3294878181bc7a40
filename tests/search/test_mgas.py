"""MGAS: the Step surrogate, the keep-last rule, the cost term, the repair and a tiny search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hwnas.search.constraints import resolve
from hwnas.search.methods import FunctionAccuracy, TableAccuracy, create_method
from hwnas.search.methods.mgas import (
    _build_net,
    connected,
    fit_op_costs,
    gated_ops,
    keep_last,
    op_gates,
    repair,
    step,
    unit_penalty,
)
from hwnas.search.spaces import create_space
from hwnas.search.supernet.gated_cell import node_edges

NB201 = create_space("nb201")
GATED = gated_ops(NB201)  # skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3

TINY = dict(data="digits", n_train=256, epochs=2, batch_size=64, C=4)


@pytest.fixture(scope="module")
def problem(nb201_tables):
    acc_path, lat_path, acc, lat = nb201_tables
    sp = create_space("nb201")
    return sp, TableAccuracy(sp, f"table:{acc_path}:acc"), lat_path, acc, lat


def test_step_forward_and_surrogate_gradient():
    x = torch.tensor([-1.5, -1.0, -0.7, -0.4, -0.1, 0.0, 0.2, 0.4, 0.5, 1.0, 1.2], requires_grad=True)
    y = step(x)
    assert y.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    y.backward(torch.full_like(x, 2.0))  # the upstream gradient is multiplied through
    expected = [0.0, 0.4, 0.4, 0.4, 1.6, 2.0, 1.2, 0.4, 0.4, 0.4, 0.0]
    assert x.grad.tolist() == pytest.approx([2 * g for g in expected], abs=1e-6)


def test_a_nodes_last_op_is_never_pruned():
    net = _build_net(NB201, 1, 10, 2, 1, 1)
    with torch.no_grad():
        net.alpha.fill_(-5.0)  # w ~ 0.007 everywhere
        net.alpha[3, GATED.index(3)] = -4.0  # node 3's best op: conv3x3 on edge 3<-0
        net.t_op.fill_(0.5)  # every op below its threshold: all raw masks are 0
    w, m = op_gates(net)
    raw = step(w - net.t_op[:, None])
    assert raw.sum() == 0
    # one op per node survives: node 1 (edge 0), node 2 (edges 1, 2), node 3 (edges 3, 4, 5)
    assert m[0].sum() == 1 and m[1:3].sum() == 1 and m[3:].sum() == 1
    assert m[3, GATED.index(3)] == 1  # the largest w into node 3 is the one kept
    # the kept op still gets the surrogate gradient, so it can move
    m[3, GATED.index(3)].backward()
    assert net.alpha.grad[3, GATED.index(3)] != 0
    # the decoding forces one real op per edge: the survivor, else the edge's largest w
    from hwnas.search.methods.mgas import MGAS

    arch = MGAS.decode(MGAS._scores(net))
    assert arch[3] == 3 and all(o != 0 for o in arch) and connected(np.asarray([arch]), NB201.edges)[0]


def test_keep_last_leaves_live_nodes_alone():
    w = torch.rand(6, 4)
    m = torch.ones(6, 4)
    m[0] = 0  # node 1 dead: forced; the others have survivors
    out = keep_last(w, m, node_edges(NB201.edges))
    assert out[0].sum() == 1 and torch.equal(out[1:], m[1:])


def test_cost_term_pushes_weight_away_from_expensive_ops():
    cost = torch.tensor([[0.0, 0.3, 0.6, 1.0]])

    def train(mu):
        alpha = torch.zeros(1, 4, requires_grad=True)
        t = torch.zeros(1, 1)
        opt = torch.optim.SGD([alpha], lr=1.0)
        for _ in range(20):
            w = torch.sigmoid(alpha)
            loss = unit_penalty(w, step(w - t), cost, mu)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.sigmoid(alpha).detach()[0]

    w = train(mu=2.0)
    assert (w[1:] < w[:-1]).all()  # more cost -> lower w
    assert w[0] - w[3] > 0.05
    flat = train(mu=0.0)  # no cost: the four ops stay tied
    assert torch.allclose(flat, flat[0].expand(4))


def test_cost_fit_recovers_the_additive_latency(problem):
    sp, _, lat_path, _, _ = problem
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    P, values = fit_op_costs(sp, cons)
    # conftest: latency = 1 + sum of (skip .1, conv1x1 1, conv3x3 2.5, pool .4) + noise; bound 6
    share = np.array([0.1, 1.0, 2.5, 0.4]) / (6 - 1)
    assert P == pytest.approx(np.tile(share, (6, 1)), abs=0.01)
    assert len(values) == 1 and len(values[0]) == 15_625


def test_repair_makes_an_expensive_cell_feasible(problem):
    sp, _, lat_path, _, lat = problem
    cons = resolve(sp, [f"latency_ms<=3@table:{lat_path}:dev"])
    scores = np.zeros((6, 5))
    scores[:, 3] = 1.9  # conv3x3 first, then conv1x1, skip, pool, none
    scores[:, 2], scores[:, 1], scores[:, 4], scores[:, 0] = 1.5, 1.2, 1.1, 0.5
    arch = (3,) * 6
    fixed, note = repair(sp, cons, arch, scores)
    assert "greedy" in note
    assert cons[0].feasible([fixed])[0] and connected(np.asarray([fixed]), sp.edges)[0]
    assert lat[sp.to_index(fixed)] <= 3
    # a conv3x3 (2.5 of the 2 ms left) cannot stay; cheap score losses go first
    assert 3 not in fixed


def test_tiny_search_is_feasible_and_within_budget(problem):
    sp, acc, lat_path, accs, lat = problem
    cons = resolve(sp, [f"latency_ms<=4@table:{lat_path}:dev"])
    m = create_method("mgas", **TINY)
    r = m.search(sp, acc, cons, budget=8, seed=3)
    assert r.feasible and r.queries <= 8 and lat[sp.to_index(r.arch)] <= 4
    assert "read 8 cells" in r.notes and r.predicted_accuracy is None
    assert r.accuracy == pytest.approx(accs[sp.to_index(r.arch)])
    # the search state: gates in (0, 1), one history row per lam/mu check, costs as budget shares
    assert m.w_.shape == (6, 4) and ((m.w_ > 0) & (m.w_ < 1)).all()
    assert m.history_ and {"lam", "mu", "pruned_ops", "decoded", "feasible"} <= set(m.history_[-1])
    assert m.costs_.shape == (6, 4) and m.costs_[0, GATED.index(3)] > m.costs_[0, GATED.index(1)]


def test_budget_of_one_reads_only_the_decoded_cell(problem):
    sp, acc, lat_path, _, _ = problem
    cons = resolve(sp, [f"latency_ms<=6@table:{lat_path}:dev"])
    m = create_method("mgas", **TINY)
    r = m.search(sp, acc, cons, budget=1, seed=0)
    assert r.queries == 1 and r.feasible
    decoded = m.decode(m.scores_)
    if cons[0].feasible([decoded])[0]:
        assert r.arch == decoded


# ---- chain spaces -----------------------------------------------------------------------------
CHAIN_TINY = dict(data="digits", n_train=128, epochs=3, batch_size=16, n_val=64)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from tests.search.chain_tiny import tiny_space, tiny_table

    sp = tiny_space()
    return (sp, *tiny_table(sp, tmp_path_factory.mktemp("mgas") / "lat_ms.csv"))


def test_registered_for_nb201_and_chains():
    from hwnas.search.methods import method_meta

    meta = method_meta("mgas")
    assert set(meta["supports"]) == {"enumerable+cell-graph", "chain"} and meta["kind"] == "one-shot"


def test_regrowth_restores_the_requested_share_by_importance():
    from hwnas.search.methods.mgas import importance, regrow

    alive = np.ones(100, dtype=bool)
    alive[:50] = False  # 50 pruned units
    imp = np.zeros(100)
    imp[:10] = 1.0  # only 10 of them matter
    new, picked = regrow(alive, np.ones(100, dtype=bool), imp, 0.2, np.random.default_rng(0))
    assert len(picked) == 10 and new.sum() == 60  # 20% of the 50 pruned units
    assert set(picked) == set(range(10))  # drawn by importance
    assert not (alive & ~new).any()  # nothing alive was pruned
    # only pruned units among the candidates can regrow; share 0 regrows nothing
    cand = np.zeros(100, dtype=bool)
    cand[40:] = True
    _, picked = regrow(alive, cand, np.ones(100), 0.5, np.random.default_rng(1))
    assert len(picked) == 5 and all(40 <= i < 50 for i in picked)
    assert len(regrow(alive, cand, np.ones(100), 0.0, np.random.default_rng(1))[1]) == 0
    # 0.5 |momentum| + 0.5 sigmoid(alpha), each normalised
    w = importance(np.zeros(4), np.array([0.0, 0.0, 0.0, 2.0]))
    assert w == pytest.approx([0.125, 0.125, 0.125, 0.625]) and w.sum() == pytest.approx(1.0)


def test_chain_gates_units_costs_and_decoding(chain):
    from hwnas.search.methods.mgas import _ChainGates
    from hwnas.search.methods.oneshot import chain_costs
    from hwnas.search.supernet.mixed_chain import build_mixed_net

    sp, _, _, cons = chain
    net = build_mixed_net(sp)
    g = _ChainGates(net, chain_costs(sp, cons).share(), 0.0)
    blocks = g.blocks
    assert [b.factorised for b in blocks] == [True] * 4 and [b.optional for b in blocks] == [False, True] * 2
    assert all(b.n_ops == 3 and b.mids == sorted(b.mids) and b.mid == b.mids[-1] for b in blocks)
    # a kernel's unit cost grows with its size (the table: latency ~ k^2 e), the cheapest is 0
    assert all(p[0] == 0 and p[0] < p[1] < p[2] for p in g.P_op)
    x = torch.randn(2, 1, 8, 8)
    assert net(x, g.gates(set(range(4)), set())).shape == (2, 10)
    # everything on (thresholds 0): deepest, the best op, the widest width
    widest = [b.index[(b.kernels[0], b.expansions[-1])] for b in blocks]  # op ties: the first kernel
    assert g.decode(sp) == ((widest[0], widest[1]), (widest[2], widest[3]))
    with torch.no_grad():
        g.t_d[1].fill_(0.9)  # stage 0's optional block pruned
        g.t_f[0].fill_(0.9)
        g.beta[0][: blocks[0].mids[0]].fill_(5.0)  # block 0 keeps exactly the narrowest width
        g.alpha[0][2] = 3.0  # and prefers k7
    arch = g.decode(sp)
    assert arch[0] == (blocks[0].index[(blocks[0].kernels[-1], blocks[0].expansions[0])],)
    g.prune([0, 1])
    assert float(g.alive_d[1]) == 0 and g.alive_f[0].sum() == blocks[0].mids[0]
    assert len(g.decode(sp)[0]) == 1


def test_tiny_chain_search_is_feasible_and_reports_its_cost(chain):
    sp, path, bound, cons = chain
    acc = FunctionAccuracy(lambda archs: np.array([sum(len(b) for b in a) for a in archs], dtype=float))
    m = create_method("mgas", **CHAIN_TINY)
    r = m.search(sp, acc, cons, budget=3, seed=0)
    assert r.feasible and r.costs[f"latency_ms@table:{path}"] <= bound and r.queries <= 3
    assert r.search_cpu_s > 0 and r.supernet_cpu_s > 0 and r.supernet_train_acc is not None
    assert 0 <= r.supernet_val_acc <= 100 and r.stats["steps"] >= 9
    assert {"substage", "lam", "mu", "pruned_ops", "pruned_filters", "pruned_depth"} <= set(m.history_[-1])
    assert {h["substage"] for h in m.history_} == {0, 1}  # two stages in the tiny space: two sub-nets
    assert len(m.regrown_) == 1  # one regrowth, before the second sub-net stage
    row = r.row()
    assert "stat_pruned_ops" in row and "search_cpu_s" in row

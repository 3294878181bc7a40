"""MGAS (docs/methods.md section 3): multi-granularity differentiable search, NB201 track.

One compact NB201 network is trained once with learned, thresholded gates at three levels:
- operation: every edge outputs `sum_o w_o m_o op_o(x)`, `w = sigmoid(alpha)` (alpha shared by
  all cells, as the NB201 cell is), `m = Step(w - t_op)` with one learned threshold per edge;
  a node's last operation is never pruned (if every op into a node is masked, the one with the
  largest w is kept, its surrogate gradient intact so it can still move);
- filter: each conv op's output channels are scaled by `sigmoid(beta_f) m_f`,
  `m_f = Step(sigmoid(beta_f) - t_f)` (one threshold per conv op);
- weight: `m_w = Step(|W| - t_w)` masks each conv's weights (one threshold per conv).
`Step` is a hard 0/1 step whose backward is the paper's surrogate `2 - 4|x|` for `|x| <= 0.4`,
0.4 up to `|x| = 1`, 0 beyond (`step`). Loss = CE + lam * (op term + filter term + threshold
term): a level's term is `sum over active units of log(1 + n w_u / sum w) (1 + mu P_u)` over each
group of n units (the 4 ops of an edge, the C filters of a conv op); the threshold term is
`sum exp(-t)`. P_o is the op's measured cost (`fit_op_costs`): an additive per-(edge, op) cost
fitted by least squares over all 15,625 cells of the constraint's own cost model (look-ups are
free), relative to `none` on the same edge, normalised as a share of what the bound leaves above
the all-`none` cell. One SGD step per batch for everything (weights lr 0.01, wd 3e-4; alpha/beta
lr 1; op/filter thresholds lr 0.1; weight thresholds lr 0.001; momentum 0.9; gradient norm
clipped to 5).

Decoding (NB201): one op is forced on every edge: the argmax of w among the ops that survive
the mask, or among all gated ops where every op of the edge was pruned (so the decoded cell is
connected, and `none`, which only ever zeroes an edge, comes in only through the repair). If
that cell violates a constraint under the constraint's own cost model it
is repaired greedily: among single-edge swaps that keep the cell connected and reduce the
constraint excess, take the one with the smallest (score lost / excess removed), until feasible
(if no swap helps, the best-scoring feasible cell of the enumerated space is taken).

Accuracy budget: MGAS reads no accuracy while it searches. To compete on the same terms as the
query-based methods it then reads the accuracy of the decoded (repaired) cell and of the
next-best feasible, connected cells by the same score (sum over edges; survivors above pruned
ops, by w, above `none`), `min(budget, k)` cells in all (k=None: the whole budget), and
returns the best one read. A board's uniform rule (`search(..., final_reads=k)`) replaces that count
by k and records the top-ranked candidate as the method's own top-1 pick (k = 0: returned unread;
base.Searcher.validate_ranked). `predicted_accuracy` is None: the search network's accuracy is on
another task than the accuracy source's.

Weight-level sparsity does not speed up dense hardware, so it is never counted against latency
(nor against any NB201 constraint: the cell tables are dense); filter masks cannot change an
NB201 cell either (widths are fixed by the benchmark). Both act only as the paper's regularisers
of the shared weights during the search; their pruned fractions are reported in the note.

Reconstructions (details the paper does not give, or scaled down for a CPU):
- the compact network (stem, `stages` stages of `cells_per_stage` cells of width C, 2C, 4C with
  NB201's residual reduction blocks between, head), trained on `n_train` images for `epochs`,
  the first `warmup` of the steps on the shared weights only (gates fixed, no regulariser);
- `none` is not a gated candidate (it would only scale a zero); the keep-last rule still lets
  the search prune whole edges, but the decoding forces one real op per edge, as above;
- each level's sums are divided by the level's number of units (so one lam fits every level);
  a filter carries the cost P_o of its op; weights carry no cost term, only their threshold's;
- lam adapts every `lam_every` epochs (the paper's 2 epochs, scaled to a search this short)
  against a linear schedule of pruned op units that reaches `prune_target` at `prune_by` of the
  post-warm-up steps: ahead of it (many pruned) lam halves, behind it (few) lam doubles;
- mu (the cost weight) adapts at the same checks: it doubles while the current decoding violates
  a constraint and halves while it uses less than `slack` of the bound (the paper's mu is fixed;
  this is what lets the search see the bound, not only the relative costs);
- NB201 runs the single-stage search (thresholds start at 0); the multi-stage schedule is the
  chain search's (below).

Chain spaces (mbv3-*, fbnet; `isinstance(space, Chain)`), on the gated chain supernet of
search/supernet/mixed_chain.py (`build_one_shot(space, "mixed")`, generic Chain API only):
- operation units: per block the kernel candidates as gated parallel ops (`sum_k w_k m_k dw_k`,
  a superkernel: one depthwise conv of the gated sum of the zero-padded kernels, one shared BN;
  reconstruction for CPU), or every choice as a parallel candidate module where the choices are
  not a kernel x expansion grid; a block's last op is never pruned;
- filter units: a gate per channel of the expanded (largest) width, `sigmoid(beta_f) m_f`; at the
  end the kept channel count is snapped to the nearest allowed width (`snap_width`);
- depth units: a gate `sigmoid(delta) m_d` on the residual branch of every block beyond the
  stage's minimum depth, multiplied by the masks of the stage's earlier optional blocks (depth
  stays contiguous);
- weight units: `Step(|W| - t_w)` on every dense 1x1 conv of the mixed blocks (a
  parametrisation). Weight sparsity does not speed up dense hardware: it carries no cost term
  and only its pruned share is reported (`stats_["weight_sparsity"]`, memory/size only);
- unit costs P from the constraint's own block table (`chain_costs`: each block's measured cost
  as a share of what the bound leaves above the cheapest arch): a kernel its mean cost over the
  widths minus the cheapest kernel's, a filter the block's cost span from the narrowest to the
  widest width (the cost of keeping all of the block's channels), a depth unit the block's mean
  cost;
- multi-stage memory schedule: the space's stages are split into `substages` (3) sub-nets, run in
  turn over equal shares of the steps. Sub-net i: (i > 0) re-train a `retrain` share of its steps
  with every mask frozen (weights only), then regrow `regrow` (20%) of the pruned units of the
  earlier sub-nets, per level, drawn by importance `0.5 |momentum of alpha| + 0.5 sigmoid(alpha)`
  (each term normalised; `regrow`), and reset every threshold to 0; warm up (`warmup` share,
  weights only); search jointly with the regulariser over sub-nets 0..i (earlier ones are
  re-pruned); at its end prune (the hard masks become the alive states). Sub-nets not reached
  yet run plain (every op at weight 1/n, full width, full depth, no arch parameters). lam is
  checked >= 8 times per search phase against a pruning schedule of the op units that can be
  pruned (`prune_target` of them by `prune_by` of the phase); mu as on NB201;
- the regulariser sums, over groups (a block's ops, a block's filters, a stage's optional
  blocks), the group's mean unit term, plus `sum exp(-t)` over the thresholds, so that a
  threshold sees a gradient of order lam whatever its group's size (reconstruction);
- decoding: depth = the leading kept optional blocks of each stage, per block the best surviving
  kernel and the allowed width nearest the kept channels; if that breaks a constraint, greedy
  repair with the table (`chain_repair`: one-block moves, smallest score lost per excess
  removed); then the decoded arch and its best-scored feasible neighbours are read
  (`min(budget, k)`), the best read returned;
- after the last sub-net's prune, a `retrain` share of all steps re-trains the weights with
  every mask frozen (the masks the decoding reads); recorded (`OneShotResult`): the
  supernet's train accuracy over those steps, its val accuracy on `n_val` held-out images (the
  same masks, BN recalibrated), CPU seconds, pruned shares per level, regrown units.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
from hwnas.core.capabilities import CellGraph, Chain, is_enumerable

from .base import feasible_mask, register_method
from .edge_costs import fit_edge_costs
from .oneshot import OneShotSearcher


def gated_ops(space) -> tuple[int, ...]:
    """Indices of the ops MGAS gates on a cell space: every op but `none` (NB201: skip_connect,
    nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)."""
    return tuple(o for o, name in enumerate(space.ops) if name != "none")


# ---- torch parts (imported lazily: the registry imports this module) -------------------------
def _torch():
    import torch

    return torch


@lru_cache(maxsize=1)
def _step_fn():
    torch = _torch()

    class StepFn(torch.autograd.Function):
        """Hard step forward; MGAS's piecewise-linear surrogate gradient backward."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            a = x.abs()
            g = torch.where(a <= 0.4, 2 - 4 * a, torch.where(a <= 1, torch.full_like(a, 0.4), torch.zeros_like(a)))
            return grad * g

    return StepFn


def step(x):
    """`Step(x)` = 1 where x > 0 else 0, with the surrogate gradient `2 - 4|x|` / 0.4 / 0."""
    return _step_fn().apply(x)


def _gate_keeping_one(logits, threshold, alive):
    """`w = sigmoid(logits)` and its mask `Step(w - threshold) * alive`; when every unit is masked
    the strongest alive one is switched on (value 1, gradient of the mask kept)."""
    torch = _torch()
    w = torch.sigmoid(logits)
    m = step(w - threshold) * alive
    if float(m.detach().sum()) == 0:
        j = int(torch.argmax(w.detach() + alive * 10))
        force = torch.zeros_like(m)
        force[j] = 1.0
        m = m + force * (1 - m).detach()
    return w, m


def keep_last(w, m, nodes):
    """Masks `m` [edges, gated ops] with every node's last op kept: if every gated op on a
    node's incoming edges (`nodes[j]`, the edge indices into node j + 1) is masked, the one with
    the largest `w` is switched on (value 1, gradient of m kept)."""
    torch = _torch()
    force = torch.zeros_like(m)
    with torch.no_grad():
        for edges in nodes:
            idx = list(edges)
            if m[idx].sum() == 0:
                flat = int(torch.argmax(w[idx]))
                force[idx[flat // m.shape[1]], flat % m.shape[1]] = 1.0
    return m + force * (1 - m).detach()


def unit_penalty(w, m, cost, mu: float):
    """`sum_u m_u log(1 + n w_u / sum w) (1 + mu P_u)` over groups (last dim = the n units)."""
    torch = _torch()
    n = w.shape[-1]
    share = n * w / w.sum(-1, keepdim=True)
    return (m * torch.log1p(share) * (1 + mu * cost)).sum()


def op_gates(net):
    """(w, m) of the gated cell net: `w = sigmoid(alpha)`, `m = Step(w - t_op)` with every
    node's last op kept."""
    torch = _torch()
    w = torch.sigmoid(net.alpha)
    return w, keep_last(w, step(w - net.t_op[:, None]), net.nodes)


def gates_of(net):
    """The gate tensor `w * m` every cell of the net runs with."""
    w, m = op_gates(net)
    return w * m


def regulariser(net, P, conv_cost, mu: float):
    """The bracket of MGAS's loss (times lam): op term + filter term + threshold term, each
    level's sum divided by its number of units. `conv_cost[i]` is the cost P of the op that
    `net.gated_convs()[i]` belongs to."""
    torch = _torch()
    w, m = op_gates(net)
    convs = net.gated_convs()
    r_op = unit_penalty(w, m, P, mu) / w.numel()
    r_f = sum(unit_penalty(*c.filter_gates(), cc, mu) for c, cc in zip(convs, conv_cost, strict=True))
    r_f = r_f / sum(c.beta.numel() for c in convs)
    t = torch.cat([net.t_op, torch.stack([c.t_f for c in convs]), torch.stack([c.t_w for c in convs])])
    return r_op + r_f + torch.exp(-t).mean()


def _build_net(space, in_channels: int, num_classes: int, C: int, cells_per_stage: int, stages: int,
               beta_init: float = 0.0):
    """The gated cell supernet of `space` (`search.supernet.gated_cell`), gated by `step`."""
    from hwnas.search.supernet.one_shot import build_one_shot

    return build_one_shot(space, "gated", in_channels=in_channels, num_classes=num_classes, C=C,
                          cells_per_stage=cells_per_stage, stages=stages, beta_init=beta_init, mask=step)


def connected(archs: np.ndarray, edges) -> np.ndarray:
    """[n] bool: the cell's output is reachable from its input through non-`none` ops
    (a vectorised `is_degenerate`, negated; `edges` as `CellGraph.edges`)."""
    nz = np.asarray(archs) != 0
    reach = {0: np.ones(len(nz), dtype=bool)}
    for e, (to, frm) in enumerate(edges):  # sorted by `to`: a node's inputs are known before it
        r = nz[:, e] & reach.get(frm, False)
        reach[to] = reach[to] | r if to in reach else r
    return reach[max(to for to, _ in edges)]


# ---- costs ---------------------------------------------------------------------------------
def fit_op_costs(space, constraints) -> tuple[np.ndarray, list[np.ndarray]]:
    """(P [6, 4] per-(edge, gated op) cost as a share of the budget, every constraint's values
    on all cells of the space).

    Additive least-squares fit per constraint over every cell (look-ups are free):
    cost ~ c0 + sum_e d[e, op_e] with d[e, none] = 0 (deltas below 0, noise, are clipped to 0);
    an op's share is d / (bound - c0), the part of what the bound leaves above the all-`none`
    cell that the op takes (at least 5% of the bound is taken as left); with several
    constraints the largest share counts.
    """
    gated = list(gated_ops(space))
    P = np.zeros((len(space.edges), len(gated)))
    values = []
    for c in constraints:
        fit = fit_edge_costs(space, c)
        d = np.clip(fit.d[:, gated], 0.0, None)
        left = max(c.constraint.bound - fit.c0, 0.05 * c.constraint.bound)
        P = np.maximum(P, d / left)
        values.append(fit.values)
    return P, values


def _excess(constraints, values: list[np.ndarray]) -> np.ndarray:
    """Relative constraint excess per row (0 = feasible), a tiny positive for a strict equality."""
    out = np.zeros(len(values[0]) if values else 0)
    for c, v in zip(constraints, values, strict=True):
        bad = ~np.asarray(c.constraint.satisfied(v), dtype=bool)
        out += np.where(bad, np.maximum(v - c.constraint.bound, 0.0) / c.constraint.bound + 1e-9, 0.0)
    return out


def repair(space, constraints, arch, scores: np.ndarray, archs: np.ndarray | None = None,
           values: list[np.ndarray] | None = None) -> tuple[tuple[int, ...], str]:
    """A feasible, connected cell of `space` from `arch`: greedy single-edge swaps, each the one
    with the smallest (score lost / constraint excess removed), until feasible under every
    constraint's own cost model; if no swap helps, the best-scoring feasible cell of the space
    (`archs`, every cell, with `values`, the constraints' values on them). Returns (cell, note)."""
    a = list(arch)
    swaps = 0
    while not feasible_mask(constraints, [tuple(a)])[0]:
        cands, lost = [], []
        for e in range(len(space.edges)):
            for o in range(len(space.ops)):
                b = a.copy()
                b[e] = o
                if o != a[e] and connected(np.asarray([b]), space.edges)[0]:
                    cands.append(tuple(b))
                    lost.append(max(scores[e, a[e]] - scores[e, o], 0.0))
        ex = _excess(constraints, [c.values(cands + [tuple(a)]) for c in constraints])
        saved = ex[-1] - ex[:-1]
        good = saved > 0
        if not good.any():
            break
        ratio = np.where(good, np.asarray(lost) / np.where(good, saved, 1.0), np.inf)
        a = list(cands[int(np.argmin(ratio))])
        swaps += 1
    if feasible_mask(constraints, [tuple(a)])[0]:
        return tuple(a), f"decoded cell infeasible: repaired by {swaps} greedy swap(s)"
    if archs is None or values is None:
        archs = np.asarray(list(space.iter_all()))
        values = [np.asarray(c.values(list(map(tuple, archs))), dtype=np.float64) for c in constraints]
    ok = _excess(constraints, values) == 0
    total = scores[np.arange(len(space.edges)), archs].sum(1)
    pick = np.where(ok & connected(archs, space.edges), total, -np.inf)
    if not np.isfinite(pick).any():
        pick = np.where(ok, total, -np.inf)
    if not np.isfinite(pick).any():
        return tuple(a), "no feasible cell in the space"
    best = tuple(int(o) for o in archs[int(np.argmax(pick))])
    return best, f"greedy repair stuck after {swaps} swap(s): best-scoring feasible cell taken"


@lru_cache(maxsize=2)
def _dataset(spec: str, resolution: int | None):
    from hwnas.search.data import load_dataset

    shape = None
    if resolution is not None:
        from hwnas.search.data import parse_spec

        c = 1 if parse_spec(spec)[0] in ("fashion-mnist", "digits") else 3
        shape = (c, resolution, resolution)
    return load_dataset(spec, shape=shape, seed=0)


@register_method("mgas", supports=("enumerable+cell-graph", "chain"), kind="one-shot")
class MGAS(OneShotSearcher):
    """Multi-granularity differentiable search on NB201 and chain spaces (see the module docstring).

    Defaults: 3000 Fashion-MNIST images (28x28), 4 epochs at batch 64 (188 steps). NB201: half of
    it warm-up, 3 cells of width 8/16/32, about two minutes on one loaded CPU core. Chain spaces
    (mbv3-fmnist): 3 sub-net stages of ~63 steps each; at 2 epochs it took 60 CPU seconds (the
    supernet reached 67% train / 70% val accuracy), so about 2 CPU minutes; the chain-track board
    (results/leaderboards/mbv3-fmnist.md) has the measured figures.
    `threads` (torch intra-op threads during training; None leaves torch's setting): one is
    fastest for convs this small and does not fight other jobs' threads.
    """

    def __init__(self, data: str = "fashion-mnist", n_train: int = 3000, epochs: float = 4,
                 batch_size: int = 64, resolution: int | None = None, C: int = 8,
                 cells_per_stage: int = 1, stages: int = 3, lam: float = 0.02, mu: float = 1.0,
                 mu_min: float = 1 / 16, mu_max: float = 16.0, slack: float = 0.9,
                 lam_every: float = 0.25, prune_target: float = 0.75, prune_by: float = 0.8,
                 lr: float = 0.01, weight_decay: float = 3e-4, arch_lr: float = 1.0,
                 threshold_lr: float = 0.1, weight_threshold_lr: float = 0.001,
                 momentum: float = 0.9, grad_clip: float = 5.0, warmup: float = 0.5,
                 beta_init: float = 0.0, k: int | None = None, threads: int | None = 1,
                 substages: int = 3, retrain: float = 0.2, regrow: float = 0.2, n_val: int = 2000):
        self.data, self.n_train, self.epochs, self.batch_size = data, n_train, epochs, batch_size
        self.resolution, self.C, self.cells_per_stage, self.stages = resolution, C, cells_per_stage, stages
        self.lam, self.mu, self.mu_min, self.mu_max, self.slack = lam, mu, mu_min, mu_max, slack
        self.lam_every = lam_every
        self.prune_target, self.prune_by = prune_target, prune_by
        self.lr, self.weight_decay, self.arch_lr = lr, weight_decay, arch_lr
        self.threshold_lr, self.weight_threshold_lr = threshold_lr, weight_threshold_lr
        self.momentum, self.grad_clip, self.warmup, self.beta_init = momentum, grad_clip, warmup, beta_init
        self.k, self.threads = k, threads
        self.substages, self.retrain, self.regrow, self.n_val = substages, retrain, regrow, n_val

    # ---- the Searcher entry point ------------------------------------------------------------
    def _search(self, space, accuracy, constraints, budget, rng):
        if isinstance(space, Chain):
            return _search_chain(self, space, accuracy, constraints, budget, rng)
        if not (isinstance(space, CellGraph) and is_enumerable(space)):
            raise ValueError(f"mgas runs on NB201-like cell spaces and chain spaces, not {space.name!r}")
        P, values = fit_op_costs(space, constraints)
        archs = np.asarray(list(space.iter_all()))
        excess_all = _excess(constraints, values) if constraints else np.zeros(len(archs))
        self.costs_ = P
        torch = _torch()
        threads = torch.get_num_threads()
        if self.threads:  # tiny convs: one thread is fastest, and 2+ fight other jobs' threads
            torch.set_num_threads(self.threads)
        try:
            self._train(space, constraints, P, rng)
        finally:
            torch.set_num_threads(threads)
        scores = self.scores_
        arch = self.decode(scores)
        note = [self.summary_]
        if not feasible_mask(constraints, [arch])[0]:
            arch, how = repair(space, constraints, arch, scores, archs, values)
            note.append(how)
        # candidates: the repaired decoding first, then the next-best feasible connected cells
        total = scores[np.arange(len(space.edges)), archs].sum(1)
        live = connected(archs, space.edges)
        order = np.argsort(-total, kind="stable")
        order = order[(excess_all[order] == 0) & live[order]]
        cands = [arch] + [tuple(int(o) for o in archs[i]) for i in order if tuple(archs[i]) != arch]
        k = self.final_count(max(1, budget if self.k is None else min(budget, self.k)))
        cands = cands[:max(1, k)]
        ok = feasible_mask(constraints, cands)
        cands = [a for a, good in zip(cands, ok, strict=True) if good]
        if not cands:  # nothing feasible in the whole space: return the decoding, flagged infeasible
            return arch, None, "; ".join(note + ["no feasible cell in the space"])
        pick, best, n = self.validate_ranked(accuracy, cands, k)
        note.append(f"read {n} cells (decoded + next-best by w); best is #{best + 1}" if n else
                    "k = 0: the decoded cell, unread")
        return pick, None, "; ".join(note)

    # ---- decoding ------------------------------------------------------------------------------
    @staticmethod
    def decode(scores: np.ndarray) -> tuple[int, ...]:
        """One op per edge: the argmax of the [6, 5] score (see `_scores`)."""
        return tuple(int(o) for o in np.argmax(scores, axis=1))

    # ---- training --------------------------------------------------------------------------------
    def _train(self, space, constraints, P: np.ndarray, rng: np.random.Generator) -> None:
        torch = _torch()
        from hwnas.search.data import batches
        from torch.nn import functional as F

        from .oneshot import cpu_seconds

        t0, c0 = time.perf_counter(), cpu_seconds()
        ds = _dataset(self.data, self.resolution)
        train = ds.train.subset(self.n_train, seed=int(rng.integers(2**31)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            net = _build_net(space, ds.input_shape[0], ds.num_classes, self.C, self.cells_per_stage, self.stages,
                             self.beta_init)
            convs = net.gated_convs()
            arch_ids = {id(net.alpha)} | {id(c.beta) for c in convs}
            thr_ids = {id(net.t_op)} | {id(c.t_f) for c in convs}
            wthr_ids = {id(c.t_w) for c in convs}
            special = arch_ids | thr_ids | wthr_ids
            params = list(net.parameters())
            opt = torch.optim.SGD([
                {"params": [p for p in params if id(p) not in special], "lr": self.lr,
                 "weight_decay": self.weight_decay},
                {"params": [p for p in params if id(p) in arch_ids], "lr": self.arch_lr},
                {"params": [p for p in params if id(p) in thr_ids], "lr": self.threshold_lr},
                {"params": [p for p in params if id(p) in wthr_ids], "lr": self.weight_threshold_lr},
            ], momentum=self.momentum)
            P_t = torch.as_tensor(P, dtype=torch.float32)
            conv_cost = [P_t[c.edge, net.gated.index(c.op)] for c in convs]
            steps_per_epoch = max(1, -(-len(train) // self.batch_size))
            total = max(1, int(round(self.epochs * steps_per_epoch)))
            every = max(1, int(round(self.lam_every * steps_per_epoch)))
            n_warm = min(int(round(self.warmup * total)), total - 1)
            lam, mu = float(self.lam), float(self.mu)
            history, step_i, correct, seen = [], 0, 0, 0
            net.train()
            while step_i < total:
                for x, y in batches(train, self.batch_size, rng=rng):
                    out = net(x, gates_of(net))
                    correct += int((out.argmax(1) == y).sum())
                    seen += len(y)
                    if step_i < n_warm:  # warm-up: the shared weights only, every gate fixed
                        opt.zero_grad(set_to_none=True)
                        F.cross_entropy(out, y).backward()
                        for p in params:
                            if id(p) in special:
                                p.grad = None
                        torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                        opt.step()
                        step_i += 1
                        continue
                    reg = regulariser(net, P_t, conv_cost, mu)
                    loss = F.cross_entropy(out, y) + lam * reg
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    opt.step()
                    step_i += 1
                    if (step_i - n_warm) % every == 0 or step_i == total:
                        pruned = self._pruned(net)
                        frac = (step_i - n_warm) / max(1.0, self.prune_by * (total - n_warm))
                        target = self.prune_target * min(1.0, frac)
                        arch = self.decode(self._scores(net))
                        load = max((float(c.values([arch])[0]) / c.constraint.bound for c in constraints),
                                   default=0.0)
                        feasible = bool(feasible_mask(constraints, [arch])[0])
                        history.append({"step": step_i, "lam": lam, "mu": mu, "pruned_ops": pruned[0],
                                        "pruned_filters": pruned[1], "weight_sparsity": pruned[2],
                                        "target": target, "decoded": space.to_str(arch), "load": load,
                                        "feasible": feasible})
                        if step_i < total:
                            tol = 0.5 / net.alpha.numel()  # half an op unit
                            if pruned[0] > target + tol:
                                lam /= 2
                            elif pruned[0] < target - tol:
                                lam *= 2
                            if not feasible:
                                mu = min(mu * 2, self.mu_max)
                            elif load < self.slack:
                                mu = max(mu / 2, self.mu_min)
                    if step_i >= total:
                        break
            net.eval()
        self.net_, self.history_ = net, history
        self.scores_ = self._scores(net)
        with torch.no_grad():
            self.w_ = torch.sigmoid(net.alpha).numpy().copy()
        from .oneshot import accuracy_of, cpu_seconds, recalibrate_bn

        with torch.random.fork_rng(devices=[]):
            recalibrate_bn(net, lambda x: net(x, gates_of(net)), train)
            self.val_acc_ = accuracy_of(lambda x: net(x, gates_of(net)), ds.val, n=self.n_val)
        self.train_acc_ = 100 * correct / max(seen, 1)
        self.train_cpu_s_ = cpu_seconds() - c0
        h = history[-1]
        self.stats_ = {"steps": total, "pruned_ops": h["pruned_ops"], "pruned_filters": h["pruned_filters"],
                       "weight_sparsity": h["weight_sparsity"], "lam": h["lam"], "mu": h["mu"]}
        self.summary_ = (f"{time.perf_counter() - t0:.1f} s, {total} steps on {len(train)} {self.data} images, "
                         f"supernet train acc {self.train_acc_:.1f}% (all steps) / val {self.val_acc_:.1f}%; pruned ops {h['pruned_ops']:.2f}, filters {h['pruned_filters']:.2f}, weight sparsity "
                         f"{h['weight_sparsity']:.2f} (not counted against latency); lam {h['lam']:.3g}, mu {h['mu']:.3g}")

    @staticmethod
    def _pruned(net) -> tuple[float, float, float]:
        """Fractions of op units, filters and conv weights masked off."""
        torch = _torch()
        with torch.no_grad():
            _, m = op_gates(net)
            convs = net.gated_convs()
            f = torch.cat([c.filter_gates()[1] for c in convs])
            wm = [c.weight_mask() for c in convs]
            ws = 1 - sum(float(x.sum()) for x in wm) / sum(x.numel() for x in wm)
            return 1 - float(m.mean()), 1 - float(f.mean()), ws

    @staticmethod
    def _scores(net) -> np.ndarray:
        """[6, 5] decoding score: surviving ops 1 + w, pruned ops w, `none` 0; so the argmax is
        the best survivor, or the best op of an edge whose ops were all pruned."""
        torch = _torch()
        with torch.no_grad():
            w, m = op_gates(net)
            w, m = w.numpy(), m.numpy()
        s = np.zeros((w.shape[0], len(net.ops)))
        s[:, list(net.gated)] = w + (m > 0.5)
        return s


# ---- chain spaces ------------------------------------------------------------------------------
def regrow(alive: np.ndarray, candidates: np.ndarray, importance: np.ndarray, share: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MGAS regrowth: switch `round(share * n)` of the n pruned units among `candidates` back on,
    drawn without replacement with probability proportional to `importance` (a unit with zero
    importance only when nothing else is left). Returns (new alive mask, regrown indices)."""
    alive = np.asarray(alive, dtype=bool).copy()
    pool = np.flatnonzero(np.asarray(candidates, dtype=bool) & ~alive)
    n = int(round(share * len(pool)))
    if n == 0:
        return alive, np.zeros(0, dtype=np.int64)
    p = np.clip(np.asarray(importance, dtype=np.float64)[pool], 0.0, None) + 1e-12
    pick = rng.choice(pool, size=n, replace=False, p=p / p.sum())
    alive[pick] = True
    return alive, np.sort(pick)


def importance(alpha: np.ndarray, momentum: np.ndarray | None) -> np.ndarray:
    """MGAS's regrowth importance `0.5 |momentum of alpha| + 0.5 sigmoid(alpha)`, each term
    normalised to sum 1 over the units given."""
    sig = 1.0 / (1.0 + np.exp(-np.asarray(alpha, dtype=np.float64)))
    mom = np.abs(np.zeros_like(sig) if momentum is None else np.asarray(momentum, dtype=np.float64))

    def norm(v):
        s = v.sum()
        return v / s if s > 0 else np.full_like(v, 1.0 / max(len(v), 1))

    return 0.5 * norm(mom) + 0.5 * norm(sig)


class _ChainGates:
    """MGAS's gates of a MixedChainNet, flat over the block positions: op units (alpha, t_op),
    filter units (beta, t_f, factorised blocks), depth units (delta, t_d, optional blocks), weight
    masks on every dense conv of the mixed blocks (t_w); `alive_*` are the hard 0/1 prune states
    that the multi-stage schedule sets and regrows."""

    def __init__(self, net, costs_share, beta_init: float):
        torch = _torch()
        from hwnas.search.supernet.gated_cell import WeightMask
        from torch import nn
        from torch.nn.utils import parametrize

        self.net = net
        self.blocks = list(net.blocks)
        n = len(self.blocks)
        self.n_ops = [b.n_ops for b in self.blocks]
        self.alpha = [nn.Parameter(torch.zeros(k)) for k in self.n_ops]
        self.t_op = [nn.Parameter(torch.zeros(())) for _ in range(n)]
        self.beta = [nn.Parameter(torch.full((b.mid,), float(beta_init))) if b.factorised else None
                     for b in self.blocks]
        self.t_f = [nn.Parameter(torch.zeros(())) if b.factorised else None for b in self.blocks]
        self.delta = [nn.Parameter(torch.zeros(())) if b.optional else None for b in self.blocks]
        self.t_d = [nn.Parameter(torch.zeros(())) if b.optional else None for b in self.blocks]
        self.alive_op = [torch.ones(k) for k in self.n_ops]
        self.alive_f = [torch.ones(b.mid) if b.factorised else None for b in self.blocks]
        self.alive_d = [torch.ones(()) if b.optional else None for b in self.blocks]
        self.wmasks: list[list] = []
        for blk in self.blocks:
            convs = [m for m in blk.modules() if isinstance(m, nn.Conv2d) and m.groups == 1
                     and m.kernel_size == (1, 1) and m.out_channels * m.in_channels > 64]
            masks = []
            for c in convs:
                wm = WeightMask(step)
                parametrize.register_parametrization(c, "weight", wm)
                masks.append((c, wm))
            self.wmasks.append(masks)
        # unit costs P (share of what the bound leaves above the cheapest arch)
        self.P_op, self.P_f, self.P_d = [], [], []
        for blk in self.blocks:
            T = None if costs_share is None else costs_share[blk.s][blk.b]
            if T is None:
                self.P_op.append(torch.zeros(blk.n_ops))
                self.P_f.append(0.0)
                self.P_d.append(0.0)
                continue
            if blk.factorised:
                G = np.array([[T[blk.index[(k, e)]] for e in blk.expansions] for k in blk.kernels])
                per_k = G.mean(1)
                self.P_op.append(torch.as_tensor(per_k - per_k.min(), dtype=torch.float32))
                span = max(blk.mids[-1] - blk.mids[0], 1)
                self.P_f.append(float(max(G[:, -1].mean() - G[:, 0].mean(), 0.0) * blk.mid / span))
                self.P_d.append(float(G.mean()))
            else:
                self.P_op.append(torch.as_tensor(T - T.min(), dtype=torch.float32))
                self.P_f.append(0.0)
                self.P_d.append(float(T.mean()))

    # parameter groups ------------------------------------------------------------------------
    def arch_params(self, idx):
        return [p for i in idx for p in (self.alpha[i], self.beta[i], self.delta[i]) if p is not None]

    def threshold_params(self, idx):
        return [p for i in idx for p in (self.t_op[i], self.t_f[i], self.t_d[i]) if p is not None]

    def weight_threshold_params(self, idx):
        return [wm.t for i in idx for _, wm in self.wmasks[i]]

    def reset_thresholds(self, idx):
        with _torch().no_grad():
            for p in self.threshold_params(idx) + self.weight_threshold_params(idx):
                p.zero_()

    # masks ---------------------------------------------------------------------------------------
    def op_mask(self, i):
        return _gate_keeping_one(self.alpha[i], self.t_op[i], self.alive_op[i])  # the last op is never pruned

    def filter_mask(self, i):
        if self.beta[i] is None:
            return None, None
        return _gate_keeping_one(self.beta[i], self.t_f[i], self.alive_f[i])

    def depth_mask(self, i):
        torch = _torch()
        if self.delta[i] is None:
            return None, None
        w = torch.sigmoid(self.delta[i])
        return w, step(w - self.t_d[i]) * self.alive_d[i]

    def gates(self, searched: set, plain: set, frozen: bool = False):
        """Per block (op_gate, ch_gate, depth_gate, live). `plain` blocks (sub-nets not searched
        yet) run every op at weight 1/n, full width, present; the rest use their masks (detached
        when `frozen`). A block's depth gate also carries the masks of the stage's earlier
        optional blocks (depth stays contiguous)."""
        torch = _torch()
        out, chain = [], None
        for i, blk in enumerate(self.blocks):
            if blk.b == 0:
                chain = None
            if i in plain:
                out.append((torch.full((blk.n_ops,), 1.0 / blk.n_ops), None, None, None))
                continue
            w, m = self.op_mask(i)
            g = w * m
            live = [k for k in range(blk.n_ops) if float(self.alive_op[i][k]) > 0]
            wf, mf = self.filter_mask(i)
            ch = None if wf is None else wf * mf
            d = None
            if blk.optional:
                wd, md = self.depth_mask(i)
                chain = md if chain is None else chain * md
                d = wd * chain
            if frozen or i not in searched:
                g = g.detach()
                ch = None if ch is None else ch.detach()
                d = None if d is None else d.detach()
            out.append((g, ch, d, live))
        return out

    def regulariser(self, idx, mu: float):
        """Op + filter + depth terms + threshold term `sum exp(-t)`. A level's term sums, over
        its groups (a block's ops, a block's filters, a stage's optional blocks), the group's
        mean of `m log(1 + n w / sum w) (1 + mu P)`: every threshold sees a gradient of order
        lam whatever the group's size (reconstruction: the paper sums over units)."""
        torch = _torch()
        r = torch.zeros(())
        stages: dict[int, list] = {}
        for i in idx:
            blk = self.blocks[i]
            w, m = self.op_mask(i)
            r = r + unit_penalty(w, m, self.P_op[i], mu) / w.numel()
            wf, mf = self.filter_mask(i)
            if wf is not None:
                r = r + unit_penalty(wf, mf, torch.as_tensor(self.P_f[i]), mu) / wf.numel()
            if blk.optional:
                stages.setdefault(blk.s, []).append(i)
        for blocks in stages.values():
            ws, ms = zip(*(self.depth_mask(i) for i in blocks), strict=True)
            P = torch.as_tensor([self.P_d[i] for i in blocks], dtype=torch.float32)
            r = r + unit_penalty(torch.stack(ws), torch.stack(ms), P, mu) / len(blocks)
        t = torch.stack([p.reshape(()) for p in self.threshold_params(idx) + self.weight_threshold_params(idx)])
        return r + torch.exp(-t).sum()

    # pruning state -----------------------------------------------------------------------------------
    def hard(self):
        """Current effective 0/1 masks (op, filter, depth) per block, as numpy."""
        with _torch().no_grad():
            ops = [self.op_mask(i)[1].numpy() > 0.5 for i in range(len(self.blocks))]
            fil = [None if self.beta[i] is None else self.filter_mask(i)[1].numpy() > 0.5
                   for i in range(len(self.blocks))]
            dep = [None if self.delta[i] is None else bool(self.depth_mask(i)[1] > 0.5)
                   for i in range(len(self.blocks))]
        return ops, fil, dep

    def prune(self, idx) -> None:
        """alive &= the current masks, for the blocks in idx (the last op/filter is kept)."""
        torch = _torch()
        ops, fil, dep = self.hard()
        for i in idx:
            self.alive_op[i] = torch.as_tensor(ops[i], dtype=torch.float32)
            if fil[i] is not None:
                self.alive_f[i] = torch.as_tensor(fil[i], dtype=torch.float32)
            if dep[i] is not None:
                self.alive_d[i] = torch.as_tensor(float(dep[i]))

    def pruned_fraction(self, idx) -> tuple[float, float, float, float]:
        """(ops, filters, depth units, conv weights) masked off among blocks idx."""
        torch = _torch()
        ops, fil, dep = self.hard()
        o = [1 - ops[i].mean() for i in idx]
        f = [1 - fil[i].mean() for i in idx if fil[i] is not None]
        d = [1 - float(dep[i]) for i in idx if dep[i] is not None]
        with torch.no_grad():
            kept = tot = 0
            for i in idx:
                for conv, wm in self.wmasks[i]:
                    m = conv.parametrizations.weight.original.abs() > wm.t
                    kept += float(m.sum())
                    tot += m.numel()
        return (float(np.mean(o)) if o else 0.0, float(np.mean(f)) if f else 0.0,
                float(np.mean(d)) if d else 0.0, 1 - kept / tot if tot else 0.0)

    def regrow_units(self, idx, share: float, momentum: dict, rng) -> dict:
        """Regrow `share` of the pruned units of blocks idx, per level, by importance."""
        torch = _torch()
        counts = {}
        levels = [
            ("op", self.alive_op, self.alpha),
            ("filter", self.alive_f, self.beta),
            ("depth", self.alive_d, self.delta),
        ]
        for name, alive, param in levels:
            items = [i for i in idx if alive[i] is not None]
            if not items:
                continue
            a = np.concatenate([alive[i].numpy().reshape(-1) > 0.5 for i in items])
            logits = np.concatenate([param[i].detach().numpy().reshape(-1) for i in items])
            mom = np.concatenate([momentum.get(id(param[i]), np.zeros(param[i].numel())).reshape(-1)
                                  for i in items])
            new, picked = regrow(a, np.ones_like(a), importance(logits, mom), share, rng)
            counts[name] = (int((~a).sum()), len(picked))
            off = 0
            for i in items:
                k = alive[i].numel()
                alive[i] = torch.as_tensor(new[off:off + k].reshape(alive[i].shape), dtype=torch.float32)
                off += k
        return counts

    # decoding --------------------------------------------------------------------------------------------
    def block_scores(self, space) -> list[np.ndarray]:
        """[stage] -> [max_depth, n_choices] score: op (1 + w for a surviving op, w otherwise),
        width (1 - distance of the allowed width to the kept channels, over the full width),
        depth (1 + w for a kept optional block, w otherwise)."""
        torch = _torch()
        ops, fil, dep = self.hard()
        S = [np.zeros((st.max_depth, len(st.choices))) for st in space.stages]
        with torch.no_grad():
            for i, blk in enumerate(self.blocks):
                w = torch.sigmoid(self.alpha[i]).numpy()
                op_score = w + ops[i]
                depth = 0.0
                if blk.optional:
                    depth = float(torch.sigmoid(self.delta[i])) + float(dep[i])
                for c in range(len(space.stages[blk.s].choices)):
                    if blk.factorised:
                        k, e = next(ke for ke, cc in blk.index.items() if cc == c)
                        n_act = float(fil[i].sum())
                        width = 1 - abs(blk.mids[blk.expansions.index(e)] - n_act) / blk.mid
                        S[blk.s][blk.b, c] = op_score[blk.kernels.index(k)] + width + depth
                    else:
                        S[blk.s][blk.b, c] = op_score[c] + depth
        return S

    def decode(self, space):
        """Depth: the leading kept optional blocks; per block the best surviving op and the
        allowed width nearest the kept channels."""
        from .oneshot import snap_width

        ops, fil, dep = self.hard()
        torch = _torch()
        arch: list[list[int]] = [[] for _ in space.stages]
        stopped: set[int] = set()
        with torch.no_grad():
            for i, blk in enumerate(self.blocks):
                if blk.optional and (blk.s in stopped or not dep[i]):
                    stopped.add(blk.s)
                    continue
                w = torch.sigmoid(self.alpha[i]).numpy()
                op = int(np.argmax(w + ops[i]))
                width = snap_width(blk.mids, float(fil[i].sum())) if blk.factorised else None
                arch[blk.s].append(blk.choice(op, width))
        return tuple(tuple(b) for b in arch)


def _substage_groups(space, n: int) -> list[list[int]]:
    """Block-position indices of each sub-net stage: the space's stages split into n runs."""
    from .oneshot import block_positions

    pos = block_positions(space)
    parts = np.array_split(np.arange(len(space.stages)), min(n, len(space.stages)))
    return [[i for i, (s, _) in enumerate(pos) if s in set(p.tolist())] for p in parts]


def _train_chain(self, space, constraints, rng: np.random.Generator):
    """MGAS on a chain space (the multi-stage schedule); sets the fitted `*_` attributes."""
    torch = _torch()
    from hwnas.search.supernet.one_shot import build_one_shot
    from torch.nn import functional as F

    from .oneshot import (
        accuracy_of,
        chain_costs,
        cpu_seconds,
        dataset,
        recalibrate_bn,
    )

    c0 = cpu_seconds()
    costs = chain_costs(space, constraints)
    share = costs.share() if costs is not None else None
    ds = dataset(self.data, space.input_shape)
    train = ds.train.subset(self.n_train, seed=int(rng.integers(2**31)))
    torch.manual_seed(int(rng.integers(2**31)))
    net = build_one_shot(space, "mixed")
    gates = _ChainGates(net, share, self.beta_init)
    groups = _substage_groups(space, self.substages)
    all_idx = [i for g in groups for i in g]
    weights = [p for p in net.parameters() if not any(p is t for t in gates.weight_threshold_params(all_idx))]
    opt = torch.optim.SGD([
        {"params": weights, "lr": self.lr, "weight_decay": self.weight_decay},
        {"params": gates.arch_params(all_idx), "lr": self.arch_lr},
        {"params": gates.threshold_params(all_idx), "lr": self.threshold_lr},
        {"params": gates.weight_threshold_params(all_idx), "lr": self.weight_threshold_lr},
    ], momentum=self.momentum)
    everything = [p for g in opt.param_groups for p in g["params"]]
    spe = max(1, -(-len(train) // self.batch_size))
    total = max(len(groups) * 3, int(round(self.epochs * spe)))
    every = max(1, int(round(self.lam_every * spe)))  # capped below: >= 8 checks per search phase
    n_ops_all = sum(gates.n_ops)
    prunable = 1 - len(gates.blocks) / n_ops_all  # keep-last: one op per block always stays

    def stream():
        from hwnas.search.data import batches

        while True:
            yield from batches(train, self.batch_size, rng=rng, drop_last=True)

    data = stream()
    lam, mu = float(self.lam), float(self.mu)
    history, regrown = [], []
    step_i = 0
    net.train()
    for gi in range(len(groups)):
        searched = {i for g in groups[:gi + 1] for i in g}
        plain = {i for g in groups[gi + 1:] for i in g}
        idx = sorted(searched)
        n_steps = total // len(groups) + (total % len(groups) if gi == len(groups) - 1 else 0)
        n_re = int(round(self.retrain * n_steps)) if gi > 0 else 0
        n_warm = int(round(self.warmup * (n_steps - n_re)))
        n_search = max(1, n_steps - n_re - n_warm)
        phases = [("retrain", n_re), ("warmup", n_warm), ("search", n_search)]
        for phase, n in phases:
            if phase == "warmup" and gi > 0:
                mom = {id(p): opt.state.get(p, {}).get("momentum_buffer", torch.zeros_like(p)).numpy()
                       for p in gates.arch_params(idx)}
                prev = sorted(i for g in groups[:gi] for i in g)
                regrown.append(gates.regrow_units(prev, self.regrow, mom, rng))
                gates.reset_thresholds(idx)
            for k in range(n):
                x, y = next(data)
                search = phase == "search"
                g = gates.gates(searched if search else set(), plain, frozen=not search)
                out = net(x, g)
                loss = F.cross_entropy(out, y)
                if search:
                    loss = loss + lam * gates.regulariser(idx, mu)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if not search:  # warm-up and re-training: the shared weights only
                    for p in gates.weight_threshold_params(all_idx):
                        p.grad = None
                torch.nn.utils.clip_grad_norm_(everything, self.grad_clip)
                opt.step()
                step_i += 1
                if search and ((k + 1) % max(1, min(every, n // 8)) == 0 or k == n - 1):
                    pr = gates.pruned_fraction(idx)
                    frac = (k + 1) / max(1.0, self.prune_by * n)
                    target = self.prune_target * prunable * min(1.0, frac)
                    arch = gates.decode(space)
                    load = max((float(c.values([arch])[0]) / c.constraint.bound for c in constraints), default=0.0)
                    feas = bool(feasible_mask(constraints, [arch])[0])
                    history.append({"step": step_i, "substage": gi, "lam": lam, "mu": mu, "pruned_ops": pr[0],
                                    "pruned_filters": pr[1], "pruned_depth": pr[2], "weight_sparsity": pr[3],
                                    "target": target, "decoded": space.to_str(arch), "load": load,
                                    "feasible": feas})
                    if k < n - 1:
                        tol = 0.5 / n_ops_all
                        lam = lam / 2 if pr[0] > target + tol else (lam * 2 if pr[0] < target - tol else lam)
                        if not feas:
                            mu = min(mu * 2, self.mu_max)
                        elif load < self.slack:
                            mu = max(mu / 2, self.mu_min)
        gates.prune(idx)
    # the final prune switches masks off that the weights never trained without: re-train with
    # every mask frozen (as before a later sub-net stage), and report the train accuracy there
    n_final = max(1, int(round(self.retrain * total)))  # 12 steps (a sub-net's share) recovered 29% / 51%
    tail = [0, 0]
    frozen = gates.gates(set(), set(), frozen=True)
    for _ in range(n_final):
        x, y = next(data)
        out = net(x, frozen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(out, y).backward()
        for p in gates.weight_threshold_params(all_idx):
            p.grad = None
        torch.nn.utils.clip_grad_norm_(everything, self.grad_clip)
        opt.step()
        tail[0] += int((out.argmax(1) == y).sum())
        tail[1] += len(y)
    net.eval()
    final = gates.gates(set(), set(), frozen=True)
    with torch.no_grad():
        recalibrate_bn(net, lambda x: net(x, final), train)
        self.val_acc_ = accuracy_of(lambda x: net(x, final), ds.val, n=self.n_val)
    self.train_acc_ = 100.0 * tail[0] / max(tail[1], 1)
    self.train_cpu_s_ = cpu_seconds() - c0
    self.net_, self.gates_, self.history_, self.regrown_ = net, gates, history, regrown
    pr = gates.pruned_fraction(all_idx)
    n_units = {"ops": n_ops_all, "filters": sum(b.mid for b in gates.blocks if b.factorised),
               "depth": sum(1 for b in gates.blocks if b.optional)}
    self.stats_ = {"steps": total, "pruned_ops": pr[0], "pruned_filters": pr[1], "pruned_depth": pr[2],
                   "weight_sparsity": pr[3], "lam": lam, "mu": mu, "units_ops": n_units["ops"],
                   "units_filters": n_units["filters"], "units_depth": n_units["depth"],
                   "regrown": sum(v[1] for r in regrown for v in r.values())}
    self.summary_ = (f"{total} steps in {len(groups)} sub-net stages on {len(train)} {self.data} images; "
                     f"supernet train {self.train_acc_:.1f}% / val {self.val_acc_:.1f}%; pruned ops {pr[0]:.2f}, "
                     f"filters {pr[1]:.2f}, depth units {pr[2]:.2f}, weight sparsity {pr[3]:.2f} (memory only, "
                     f"not latency); regrown {self.stats_['regrown']} units; lam {lam:.3g}, mu {mu:.3g}")


def _search_chain(self, space, accuracy, constraints, budget, rng):
    from .oneshot import chain_repair, ranked_candidates

    torch = _torch()
    threads = torch.get_num_threads()
    if self.threads:
        torch.set_num_threads(self.threads)
    try:
        _train_chain(self, space, constraints, rng)
    finally:
        torch.set_num_threads(threads)
    S = self.gates_.block_scores(space)
    arch = self.decoded_ = self.gates_.decode(space)
    note = [self.summary_, f"decoded {space.to_str(arch)}"]
    if not feasible_mask(constraints, [arch])[0]:
        arch, how = chain_repair(space, constraints, arch, S)
        note.append(how)
    k = self.final_count(max(1, budget if self.k is None else min(budget, self.k)))
    cands = ranked_candidates(space, constraints, arch, S, max(1, k))
    cands = [a for a, ok in zip(cands, feasible_mask(constraints, cands), strict=True) if ok]
    if not cands:
        return arch, None, "; ".join(note + ["nothing feasible found: the repaired arch is returned"])
    pick, best, n = self.validate_ranked(accuracy, cands, k)
    note.append(f"read {n} archs (decoded + best-scored neighbours); best is #{best + 1}" if n else
                "k = 0: the decoded arch, unread")
    return pick, None, "; ".join(note)

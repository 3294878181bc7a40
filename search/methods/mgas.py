"""MGAS (METHODS.md section 3): multi-granularity differentiable search, NB201 track.

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
returns the best one read. `predicted_accuracy` is None: the search network's accuracy is on
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
- not done: the 3-stage memory schedule (sub-net stages, re-training with frozen masks, regrowing
  20% of the pruned units by importance): this is the single-stage search, thresholds start at 0.
Chain spaces (mbv3, fbnet) are out of scope for now: `spaces = ("nb201",)`.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from search.spaces.nb201 import EDGES, N_EDGES, N_OPS

from .base import Searcher, feasible_mask, register_method
from .edge_costs import fit_edge_costs

#: gated ops (indices into NB201 OPS): skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
GATED = (1, 2, 3, 4)
_NODES = tuple(tuple(e for e, (to, _) in enumerate(EDGES) if to == j) for j in (1, 2, 3))


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


def keep_last(w, m):
    """Masks `m` [6, 4] with every node's last op kept: if every gated op on a node's incoming
    edges is masked, the one with the largest `w` is switched on (value 1, gradient of m kept)."""
    torch = _torch()
    force = torch.zeros_like(m)
    with torch.no_grad():
        for edges in _NODES:
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


def regulariser(net, P, conv_cost, mu: float):
    """The bracket of MGAS's loss (times lam): op term + filter term + threshold term, each
    level's sum divided by its number of units. `conv_cost[i]` is the cost P of the op that
    `net.gated_convs()[i]` belongs to."""
    torch = _torch()
    w, m = net.op_gates()
    convs = net.gated_convs()
    r_op = unit_penalty(w, m, P, mu) / w.numel()
    r_f = sum(unit_penalty(*c.filter_gates(), cc, mu) for c, cc in zip(convs, conv_cost, strict=True))
    r_f = r_f / sum(c.beta.numel() for c in convs)
    t = torch.cat([net.t_op, torch.stack([c.t_f for c in convs]), torch.stack([c.t_w for c in convs])])
    return r_op + r_f + torch.exp(-t).mean()


def _build_net(in_channels: int, num_classes: int, C: int, cells_per_stage: int, stages: int,
               beta_init: float = 0.0):
    torch = _torch()
    from torch import nn
    from torch.nn import functional as F

    from search.spaces.nb201_net import Head, ResNetBasicBlock, Stem

    class GatedConv(nn.Module):
        """ReLU-conv-BN with a weight mask (`Step(|W| - t_w)`) and filter gates on its output."""

        def __init__(self, c: int, k: int):
            super().__init__()
            self.conv = nn.Conv2d(c, c, k, padding=k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.beta = nn.Parameter(torch.full((c,), float(beta_init)))
            self.t_f = nn.Parameter(torch.zeros(()))
            self.t_w = nn.Parameter(torch.zeros(()))

        def filter_gates(self):
            w = torch.sigmoid(self.beta)
            return w, step(w - self.t_f)

        def weight_mask(self):
            return step(self.conv.weight.abs() - self.t_w)

        def forward(self, x):
            y = self.bn(F.conv2d(F.relu(x), self.conv.weight * self.weight_mask(), padding=self.conv.padding))
            w, m = self.filter_gates()
            return y * (w * m).view(1, -1, 1, 1)

    class AvgPool3(nn.Module):
        """avg_pool_3x3 (stride 1, padding not counted) as a depthwise conv of ones over the
        window count: the same numbers, several times faster than avg_pool2d's CPU kernel."""

        def __init__(self, c: int):
            super().__init__()
            self.register_buffer("ones", torch.ones(c, 1, 3, 3), persistent=False)
            self._count = None

        def forward(self, x):
            if self._count is None or self._count.shape[-2:] != x.shape[-2:]:
                one = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype)
                self._count = F.conv2d(one, self.ones[:1], padding=1)
            return F.conv2d(x, self.ones, padding=1, groups=x.shape[1]) / self._count

    class GatedCell(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.edges = nn.ModuleList(
                nn.ModuleList([nn.Identity(), GatedConv(c, 1), GatedConv(c, 3), AvgPool3(c)])
                for _ in range(N_EDGES))

        def forward(self, x, gates):
            nodes = [x]
            for edges in _NODES:
                nodes.append(sum(gates[e, k] * op(nodes[EDGES[e][1]])
                                 for e in edges for k, op in enumerate(self.edges[e])))
            return nodes[-1]

    class MGASNet(nn.Module):
        """Compact NB201 network whose cells share one gated cell structure (alpha, t_op)."""

        def __init__(self):
            super().__init__()
            self.alpha = nn.Parameter(torch.zeros(N_EDGES, len(GATED)))
            self.t_op = nn.Parameter(torch.zeros(N_EDGES))
            self.stem = Stem(in_channels, C)
            layers: list[nn.Module] = []
            for s in range(stages):
                c = C * 2 ** s
                if s > 0:
                    layers.append(ResNetBasicBlock(c // 2, c, 2))
                layers.extend(GatedCell(c) for _ in range(cells_per_stage))
            self.cells = nn.ModuleList(layers)
            self.head = Head(C * 2 ** (stages - 1), num_classes)

        def op_gates(self):
            w = torch.sigmoid(self.alpha)
            return w, keep_last(w, step(w - self.t_op[:, None]))

        def gated_convs(self):
            return [m for m in self.modules() if isinstance(m, GatedConv)]

        def forward(self, x):
            w, m = self.op_gates()
            gates = w * m
            x = self.stem(x)
            for cell in self.cells:
                x = cell(x, gates) if isinstance(cell, GatedCell) else cell(x)
            return self.head(x)

    return MGASNet()


def connected(archs: np.ndarray) -> np.ndarray:
    """[n] bool: the cell's output is reachable from its input through non-`none` ops
    (vectorised `NB201Space.is_degenerate`, negated)."""
    nz = np.asarray(archs) != 0
    n1 = nz[:, 0]
    n2 = nz[:, 1] | (nz[:, 2] & n1)
    return nz[:, 3] | (nz[:, 4] & n1) | (nz[:, 5] & n2)


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
    P = np.zeros((N_EDGES, len(GATED)))
    values = []
    for c in constraints:
        fit = fit_edge_costs(space, c)
        d = np.clip(fit.d[:, list(GATED)], 0.0, None)
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


def repair(constraints, arch, scores: np.ndarray, archs: np.ndarray | None = None,
           values: list[np.ndarray] | None = None) -> tuple[tuple[int, ...], str]:
    """A feasible, connected NB201 cell from `arch`: greedy single-edge swaps, each the one
    with the smallest (score lost / constraint excess removed), until feasible under every
    constraint's own cost model; if no swap helps, the best-scoring feasible cell of the space
    (`archs`, every cell, with `values`, the constraints' values on them). Returns (cell, note)."""
    a = list(arch)
    swaps = 0
    while not feasible_mask(constraints, [tuple(a)])[0]:
        cands, lost = [], []
        for e in range(N_EDGES):
            for o in range(N_OPS):
                b = a.copy()
                b[e] = o
                if o != a[e] and connected(np.asarray([b]))[0]:
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
        from search.spaces.nb201 import NB201Space

        archs = np.asarray(list(NB201Space().iter_all()))
        values = [np.asarray(c.values(list(map(tuple, archs))), dtype=np.float64) for c in constraints]
    ok = _excess(constraints, values) == 0
    total = scores[np.arange(N_EDGES), archs].sum(1)
    pick = np.where(ok & connected(archs), total, -np.inf)
    if not np.isfinite(pick).any():
        pick = np.where(ok, total, -np.inf)
    if not np.isfinite(pick).any():
        return tuple(a), "no feasible cell in the space"
    best = tuple(int(o) for o in archs[int(np.argmax(pick))])
    return best, f"greedy repair stuck after {swaps} swap(s): best-scoring feasible cell taken"


@lru_cache(maxsize=2)
def _dataset(spec: str, resolution: int | None):
    from search.data import load_dataset

    shape = None
    if resolution is not None:
        from search.data import parse_spec

        c = 1 if parse_spec(spec)[0] in ("fashion-mnist", "digits") else 3
        shape = (c, resolution, resolution)
    return load_dataset(spec, shape=shape, seed=0)


@register_method("mgas")
class MGAS(Searcher):
    """Multi-granularity differentiable search on NB201 (see the module docstring).

    Defaults: 3000 Fashion-MNIST images (28x28), 2 epochs (half of it warm-up), 3 cells of
    width 8/16/32, about a minute on one loaded CPU core, nearly all of it training. `threads`
    (torch intra-op threads during training; None leaves torch's setting): one is fastest for
    convs this small and does not fight other jobs' threads.
    """

    spaces = ("nb201",)

    def __init__(self, data: str = "fashion-mnist", n_train: int = 3000, epochs: float = 2,
                 batch_size: int = 64, resolution: int | None = None, C: int = 8,
                 cells_per_stage: int = 1, stages: int = 3, lam: float = 0.02, mu: float = 1.0,
                 mu_min: float = 1 / 16, mu_max: float = 16.0, slack: float = 0.9,
                 lam_every: float = 0.25, prune_target: float = 0.75, prune_by: float = 0.8,
                 lr: float = 0.01, weight_decay: float = 3e-4, arch_lr: float = 1.0,
                 threshold_lr: float = 0.1, weight_threshold_lr: float = 0.001,
                 momentum: float = 0.9, grad_clip: float = 5.0, warmup: float = 0.5,
                 beta_init: float = 0.0, k: int | None = None, threads: int | None = 1):
        self.data, self.n_train, self.epochs, self.batch_size = data, n_train, epochs, batch_size
        self.resolution, self.C, self.cells_per_stage, self.stages = resolution, C, cells_per_stage, stages
        self.lam, self.mu, self.mu_min, self.mu_max, self.slack = lam, mu, mu_min, mu_max, slack
        self.lam_every = lam_every
        self.prune_target, self.prune_by = prune_target, prune_by
        self.lr, self.weight_decay, self.arch_lr = lr, weight_decay, arch_lr
        self.threshold_lr, self.weight_threshold_lr = threshold_lr, weight_threshold_lr
        self.momentum, self.grad_clip, self.warmup, self.beta_init = momentum, grad_clip, warmup, beta_init
        self.k, self.threads = k, threads

    # ---- the Searcher entry point ------------------------------------------------------------
    def _search(self, space, accuracy, constraints, budget, rng):
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
            arch, how = repair(constraints, arch, scores, archs, values)
            note.append(how)
        # candidates: the repaired decoding first, then the next-best feasible connected cells
        total = scores[np.arange(N_EDGES), archs].sum(1)
        live = connected(archs)
        order = np.argsort(-total, kind="stable")
        order = order[(excess_all[order] == 0) & live[order]]
        cands = [arch] + [tuple(int(o) for o in archs[i]) for i in order if tuple(archs[i]) != arch]
        cands = cands[:max(1, budget if self.k is None else min(budget, self.k))]
        ok = feasible_mask(constraints, cands)
        cands = [a for a, good in zip(cands, ok, strict=True) if good]
        if not cands:  # nothing feasible in the whole space: return the decoding, flagged infeasible
            return arch, None, "; ".join(note + ["no feasible cell in the space"])
        acc = accuracy.query(cands)
        best = int(np.argmax(acc))
        note.append(f"read {len(cands)} cells (decoded + next-best by w); best is #{best + 1}")
        return cands[best], None, "; ".join(note)

    # ---- decoding ------------------------------------------------------------------------------
    @staticmethod
    def decode(scores: np.ndarray) -> tuple[int, ...]:
        """One op per edge: the argmax of the [6, 5] score (see `_scores`)."""
        return tuple(int(o) for o in np.argmax(scores, axis=1))

    # ---- training --------------------------------------------------------------------------------
    def _train(self, space, constraints, P: np.ndarray, rng: np.random.Generator) -> None:
        torch = _torch()
        from torch.nn import functional as F

        from search.data import batches

        t0 = time.perf_counter()
        ds = _dataset(self.data, self.resolution)
        train = ds.train.subset(self.n_train, seed=int(rng.integers(2**31)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            net = _build_net(ds.input_shape[0], ds.num_classes, self.C, self.cells_per_stage, self.stages,
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
            conv_cost = [P_t[e, GATED.index(o)] for cell in net.cells if hasattr(cell, "edges")
                         for e in range(N_EDGES) for o in (2, 3)]  # order of gated_convs()
            steps_per_epoch = max(1, -(-len(train) // self.batch_size))
            total = max(1, int(round(self.epochs * steps_per_epoch)))
            every = max(1, int(round(self.lam_every * steps_per_epoch)))
            n_warm = min(int(round(self.warmup * total)), total - 1)
            lam, mu = float(self.lam), float(self.mu)
            history, step_i, correct, seen = [], 0, 0, 0
            net.train()
            while step_i < total:
                for x, y in batches(train, self.batch_size, rng=rng):
                    out = net(x)
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
        h = history[-1]
        self.summary_ = (f"{time.perf_counter() - t0:.1f} s, {total} steps on {len(train)} {self.data} images, "
                         f"train acc {100 * correct / max(seen, 1):.1f}%; pruned ops {h['pruned_ops']:.2f}, filters {h['pruned_filters']:.2f}, weight sparsity "
                         f"{h['weight_sparsity']:.2f} (not counted against latency); lam {h['lam']:.3g}, mu {h['mu']:.3g}")

    @staticmethod
    def _pruned(net) -> tuple[float, float, float]:
        """Fractions of op units, filters and conv weights masked off."""
        torch = _torch()
        with torch.no_grad():
            _, m = net.op_gates()
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
            w, m = net.op_gates()
            w, m = w.numpy(), m.numpy()
        s = np.zeros((N_EDGES, N_OPS))
        s[:, list(GATED)] = w + (m > 0.5)
        return s

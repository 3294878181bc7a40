"""BayesNAS (Zhou et al., ICML 2019): hierarchical ARD priors on switches (docs/methods.md section 4).

Every op output on NB201 edge e is scaled by a child switch `s[e, o]` (o = 1..4: skip, conv 1x1,
conv 3x3, avg pool); an origin switch `s[e, 0]` scales the edge's input and plays the `none` op
(column 0 of the switch tensor is the origin, so switch columns and op indices coincide). Each
group g = (e, column) holds that switch in every cell of the network (all NB201 cells share one
genotype), as the official code groups a switch over the cells of one type.

One step (one epoch), as in the official `search/main.py` + `lib.train_switch`:
1. train the weights alone on `warmup_fraction` (~10%) of the images;
2. train weights and switches on the rest with `NLL + sum_g lam_g w_g ||s_g||_2` (w_g from the
   last update, 1 before the first);
3. on the last batch take the diagonal curvature H of the NLL w.r.t. every live switch: by
   default the exact diagonal of the Gauss-Newton matrix (`ggn_diag`, one backward pass per
   class), or `hessian="exact"`: the true Hessian diagonal by double backprop (one backward
   pass per switch, ~90, slow), clipped at 0;
4. Laplace update (`laplace_update`): `C = (1/gamma + H/lam)^-1`,
   `w = sqrt(sum_cells |1/gamma - C/gamma^2|)`, `gamma_origin = ||s|| / w`,
   `gamma_child = (w_c/||s_c|| + 1/gamma_origin)^-1`, so a child never exceeds its parent;
5. prune every switch with gamma below `prune_gamma` (default 1/(2 pi e): the entropy
   `0.5 log(2 pi e gamma)` below zero); a pruned switch is set to 0 and frozen.

Resource-aware: a child's lam in the penalty is `lambda_child * (1 + resource_weight * c[e, o])`,
where `c[e, o]` is op o's cost on edge e relative to `none`, from an additive model fitted by
least squares over all 15,625 cells of each constraint's own cost model (free look-ups), clipped
at 0 and normalised to mean 1 over the (edge, op) pairs, averaged over the constraints. The
Laplace update keeps the unscaled lam (the likelihood's noise variance): since
`gamma ~ ||s|| sqrt(lam / H)` for small H, scaling it there would raise a costly switch's gamma,
the opposite of the intent; in the penalty it shrinks costly switches (measured: on digits, 3
epochs, 1,200 images, seed 0, conv 3x3 gammas fall from 0.37-0.50 at resource_weight 0 to
0.008-0.057 at 5).

Final architecture, automated (the paper picked it by hand, a user complaint): score each
(edge, op) by its entropy relative to the threshold, `0.5 log(gamma / prune_gamma)`, and `none`
by 0 (the threshold itself); per edge take the best, so a pruned origin or all-pruned children
give `none`. If the cell breaks a constraint (re-checked with the constraint's own cost model),
repair greedily: swap the (edge, op) whose score lost / normalised cost saved is smallest, until
feasible.

Budget: BayesNAS reads no accuracy during its search (its cost is training compute). To compete
on the leaderboard's terms it then queries the final cell and its closest feasible variants (all
cells within two edge changes, ranked by the same entropy score) up to `min(budget, k)` archs
and returns the best queried one. A board's uniform rule (`search(..., final_reads=k)`) replaces
that count by k and records the top-ranked candidate as the method's own top-1 pick (k = 0: returned
unread; base.Searcher.validate_ranked).

Reconstructions (the paper or code does not give them, or they do not fit NB201 / CPU scale):
- the network is a small NB201 skeleton (stem, `N` switch cells per stage, NB201's reduction
  blocks, width `C`) trained for `epochs` steps on `n_images` images, instead of DARTS's space;
- the official code derives H by its own layer-wise backward recursion, a non-negative
  Gauss-Newton-like diagonal (softmax curvature at the output, squared weights backwards); here
  the exact Gauss-Newton diagonal, taken with BN on running statistics so that per-sample
  Jacobians exist. The true Hessian diagonal is often negative away from a minimum; clipped at
  0 it makes `w` vanish and gamma explode (1e12 seen), hence not the default;
- gamma starts at 1 (the official code draws it uniformly in (0, 1)), switches at 1;
- the resource scaling `1 + resource_weight * c` and its additive least-squares cost model;
- the origin switch scales the edge input as in the paper and code; NB201's convs are
  ReLU-conv-BN, so in training (batch statistics) they are invariant to its scale and its
  gradient comes from the skip and pool paths;
- a cell whose `none` ops cut input from output is queried only when no live variant fits;
- the query-budget step (top-k variants by entropy score) and the greedy repair.

Chain spaces (`isinstance(space, Chain)`), on the gated chain supernet of oneshot.py:
- switches (`ChainSwitches`), one scalar each: an origin switch per block beyond the stage's
  minimum depth, scaling its residual branch (the zero op is the block being absent); its parent
  is the previous optional block's origin, so a child never outlives its parent and depth stays
  contiguous; child switches for the kernel candidates (scaling the gated parallel depthwise
  kernels) and for the expansion (one per nested channel segment between allowed widths),
  children of the block's origin (roots in mandatory blocks);
- the same step as on NB201 (weights alone on `warmup_fraction` of the `n_images`, then weights
  and switches with `NLL + sum_g lam_g w_g |s_g|`), then the curvature H: the exact diagonal of
  the Gauss-Newton matrix on `hessian_samples` images of the last batch (`ggn_diag_chain`: batch
  of one, BN on running statistics, one backward per class), then the Laplace update over the
  switch tree (`laplace_update_tree`, the formulas above with the parent's gamma), pruning
  (gamma below `prune_gamma`), the cascade to children, and what a network needs kept (a
  mandatory block's best kernel, every live block's narrowest width segment: reconstruction);
  a pruned switch is zeroed and frozen. `stats_` counts the pruned switches per kind;
- resource-aware lam: `lam (1 + resource_weight c_g)`, c_g from the constraint's block table
  (a kernel's cost over the block's cheapest, a width segment's over the next narrower width, an
  origin's the block's mean cost), each a share of what the bound leaves above the cheapest arch,
  in units where the mean switch costs 1 when the bound leaves the space's whole cost span
  (`ChainCosts.tightness`: span / left). So the bound enters training: a tighter bound weighs
  every cost more, as the constrained formulation's multiplier would. (Version 1 normalised c_g
  to mean 1 whatever the bound, which removed the bound from training: every seed returned the
  same arch at both bounds of the chain board.) Reconstruction;
- the origin scales the branch's output, not its input as on NB201: the branch starts with a BN
  in training mode, which would cancel an input scale (reconstruction);
- automatic derivation: score every switch by its entropy relative to the threshold; depth =
  the leading live origins, per block the best live kernel and the width of its leading live
  segments; greedy repair with the table if a constraint breaks; then the best-scored feasible
  neighbours are read (`min(budget, k)`) and the best read returned.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
from hwnas.core.capabilities import CellGraph, Chain, is_enumerable

from .base import feasible_mask, register_method
from .edge_costs import fit_edge_costs
from .oneshot import OneShotSearcher

#: gamma below this = entropy 0.5 log(2 pi e gamma) below zero: the paper's pruning rule
PRUNE_GAMMA = 1.0 / (2.0 * math.pi * math.e)


# ---- the Bayesian update (pure numpy, tested by hand) ----------------------------------------
def laplace_update(s, H, gamma, lam, eps: float = 1e-12):
    """One Laplace-approximation update of the hierarchical ARD prior.

    `s`, `H`: (n_cells, E, K) switch values and diagonal NLL Hessian, column 0 the origin switch,
    columns 1.. its children; `gamma`, `lam`: (E, K) (broadcast over cells). Returns
    (gamma (E, K), w (E, K), C (n_cells, E, K)). A zero switch norm gives gamma 0 (pruned).
    """
    s = np.asarray(s, dtype=np.float64)
    H = np.clip(np.asarray(H, dtype=np.float64), 0.0, None)  # see the module docstring
    gamma = np.maximum(np.asarray(gamma, dtype=np.float64), eps)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), gamma.shape)
    C = 1.0 / (1.0 / gamma + H / lam)
    w = np.sqrt(np.abs(1.0 / gamma - C / gamma**2).sum(axis=0))
    norm = np.sqrt((s**2).sum(axis=0))
    own = norm / np.maximum(w, eps)  # ||s|| / w: the origin's gamma; a child's before its parent
    out = np.empty_like(own)
    out[:, 0] = own[:, 0]
    with np.errstate(divide="ignore"):
        out[:, 1:] = 1.0 / (1.0 / own[:, 1:] + 1.0 / own[:, :1])  # 1/0 = inf -> child gamma 0
    return out, w, C


def entropy_scores(gamma, prune_gamma: float = PRUNE_GAMMA) -> np.ndarray:
    """(E, K) -> per-(edge, op) score: children `0.5 log(gamma / prune_gamma)`, `none` 0."""
    g = np.maximum(np.asarray(gamma, dtype=np.float64), 1e-300)
    sc = 0.5 * np.log(g / prune_gamma)
    sc[:, 0] = 0.0
    # a child cannot outlive its origin: with the origin pruned the edge is `none`
    sc[g[:, 0] < prune_gamma, 1:] = np.minimum(sc[g[:, 0] < prune_gamma, 1:], -1e-9)
    return sc


def pick_arch(scores: np.ndarray) -> tuple[int, ...]:
    """Per edge the op with the largest score (`none` wins ties: it is the cheaper choice)."""
    return tuple(int(np.argmax(row)) for row in scores)


def additive_costs(space, constraints) -> np.ndarray:
    """(E, K) normalised per-(edge, op) cost over `none`, averaged over the constraints: each
    constraint's additive fit (edge_costs.py), clipped at 0 and scaled to mean 1 (all-zero
    costs stay zero)."""
    out = np.zeros((len(space.edges), len(space.ops)))
    for c in constraints:
        cost = np.clip(fit_edge_costs(space, c).d, 0.0, None)
        m = cost[:, 1:].mean()
        out += cost / m if m > 0 else cost
    return out / max(len(constraints), 1)


def repair(arch, scores: np.ndarray, constraints, space) -> tuple[tuple[int, ...], int]:
    """Greedy: while a constraint is broken, make the single-edge swap with the smallest
    score lost per normalised cost saved (exact costs). Returns (arch, swaps); the arch may still
    be infeasible when no swap lowers the violated costs (or, with several constraints, swaps
    trade one violation for another past `max_swaps`)."""
    arch = tuple(int(o) for o in arch)
    swaps, max_swaps = 0, 4 * len(arch) * len(space.ops)
    while swaps < max_swaps and not feasible_mask(constraints, [arch])[0]:
        cands = [arch[:e] + (o,) + arch[e + 1:] for e in range(len(arch)) for o in range(len(space.ops))
                 if o != arch[e]]
        saved = np.zeros(len(cands))
        for c in constraints:
            cur = float(c.values([arch])[0])
            if c.constraint.satisfied(cur):
                continue
            saved += (cur - c.values(cands)) / c.constraint.bound
        lost = np.array([max(scores[e, arch[e]] - scores[e, a[e]], 0.0)
                         for a in cands for e in range(len(arch)) if a[e] != arch[e]])
        good = saved > 1e-12
        if not good.any():
            break
        ratio = np.where(good, lost / np.where(good, saved, 1.0), np.inf)
        best = min(np.flatnonzero(good), key=lambda i: (ratio[i], -saved[i]))
        arch = cands[best]
        swaps += 1
    return arch, swaps


def variants(arch, scores: np.ndarray, n_ops: int, radius: int = 2) -> list[tuple[int, ...]]:
    """`arch` and every cell within `radius` edge changes, best entropy score first."""
    arch = tuple(arch)
    out = {arch}
    for r in range(1, radius + 1):
        for edges in itertools.combinations(range(len(arch)), r):
            for ops in itertools.product(*[[o for o in range(n_ops) if o != arch[e]] for e in edges]):
                a = list(arch)
                for e, o in zip(edges, ops, strict=True):
                    a[e] = o
                out.add(tuple(a))
    total = {a: sum(scores[e, o] for e, o in enumerate(a)) for a in out}
    return sorted(out, key=lambda a: (-total[a], a != arch, a))


# ---- the switch network (torch; `search.supernet.switch_cell`) -----------------------------------
def _switch_network(space, C: int, N: int, in_channels: int, num_classes: int):
    """The switch network of a cell space, imported lazily so the registry imports without torch."""
    from hwnas.search.supernet.one_shot import build_one_shot

    return build_one_shot(space, "switch", C=C, N=N, in_channels=in_channels, num_classes=num_classes)


def ggn_diag(net, x, y, alive):
    """Diagonal of the Gauss-Newton matrix `J^T (diag p - p p^T) J` of the mean NLL w.r.t. the
    switches (n_cells, E, K), exact, with BN on its running statistics (eval mode) so samples do
    not interact: per-sample switch copies give every sample's logit Jacobian in one backward
    pass per class. Non-negative, like the official code's layer-wise recursion."""
    import torch

    was_training = net.training
    net.eval()
    try:
        Sb = net.switches.detach().unsqueeze(0).repeat(len(y), 1, 1, 1).requires_grad_(True)
        logits = net(x, alive, switches=Sb)
        p = torch.softmax(logits.detach(), dim=1)
        J = torch.stack([torch.autograd.grad(logits[:, k].sum(), Sb, retain_graph=k < logits.shape[1] - 1)[0]
                         for k in range(logits.shape[1])], dim=1)  # (B, classes, n_cells, E, K)
    finally:
        net.train(was_training)
    pj = torch.einsum("bk,bk...->b...", p, J)
    d = torch.einsum("bk,bk...->b...", p, J**2) - pj**2
    return (d.mean(0) * torch.from_numpy(np.broadcast_to(alive, d.shape[1:]).copy())).detach()


def exact_hessian_diag(loss, S, alive):
    """Diagonal of d2 loss / dS2 for the live entries of S by double backprop (one backward per
    switch; slow) -- the true Hessian, which can be negative away from a minimum."""
    import torch

    (g,) = torch.autograd.grad(loss, S, create_graph=True)
    mask = np.broadcast_to(alive, S.shape).reshape(-1)
    out = torch.zeros(S.numel())
    flat = g.reshape(-1)
    for i in np.flatnonzero(mask):
        (row,) = torch.autograd.grad(flat[int(i)], S, retain_graph=True)
        out[int(i)] = row.reshape(-1)[int(i)]
    return out.reshape(S.shape).detach()


@lru_cache(maxsize=1)  # Fashion-MNIST is ~190 MB as float32: keep one
def _dataset(spec: str, seed: int):
    from hwnas.search.data import load_dataset

    return load_dataset(spec, seed=seed)


# ---- the method --------------------------------------------------------------------------------
@register_method("bayesnas", supports=("enumerable+cell-graph", "chain"), kind="one-shot", version={"chain": 2})
class BayesNAS(OneShotSearcher):
    """Switch network + Laplace-updated hierarchical ARD prior, then top-k queried variants.

    Defaults: 4 epochs (4 Laplace updates) of 1,500 Fashion-MNIST training images at 28x28,
    lam 0.05 and switch lr 0.1 (at lam 0.01 / lr 0.05 / 2 epochs no switch was ever pruned),
    NB201: 3 cells of width 8, one torch thread, about a minute on a shared 2-core machine. On chain spaces each epoch ends with
    a Gauss-Newton diagonal on `hessian_samples` images and a prune; measured figures are on the
    chain-track board (results/leaderboards/mbv3-fmnist.md). `data="digits"` with a few hundred images is the test scale (seconds).
    """

    def __init__(self, data: str = "fashion-mnist", n_images: int = 1500, resolution: int | None = None,
                 epochs: int = 4, batch_size: int = 64, C: int = 8, N: int = 1, lr: float = 0.05,
                 switch_lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-4,
                 warmup_fraction: float = 0.1, lambda_origin: float = 0.05, lambda_child: float = 0.05,
                 resource_weight: float = 1.0, prune_gamma: float = PRUNE_GAMMA, hessian: str = "ggn",
                 k: int = 10, data_seed: int = 0, threads: int | None = 1, hessian_samples: int = 8,
                 n_val: int = 2000):
        self.data, self.n_images, self.resolution, self.epochs = data, n_images, resolution, epochs
        self.batch_size, self.C, self.N, self.lr, self.switch_lr = batch_size, C, N, lr, switch_lr
        self.momentum, self.weight_decay, self.warmup_fraction = momentum, weight_decay, warmup_fraction
        self.lambda_origin, self.lambda_child, self.resource_weight = lambda_origin, lambda_child, resource_weight
        self.prune_gamma, self.hessian, self.k, self.data_seed = prune_gamma, hessian, k, data_seed
        self.threads, self.hessian_samples, self.n_val = threads, hessian_samples, n_val

    def _search(self, space, accuracy, constraints, budget, rng):
        if self.hessian not in ("ggn", "exact"):
            raise ValueError(f"bayesnas: hessian must be 'ggn' or 'exact', got {self.hessian!r}")
        if isinstance(space, Chain):
            return _search_chain(self, space, accuracy, constraints, budget, rng)
        if not (isinstance(space, CellGraph) and is_enumerable(space)):
            raise ValueError(f"bayesnas runs on NB201-like cell spaces and chain spaces, not {space.name!r}")
        K = len(space.ops)
        cost = additive_costs(space, constraints) if constraints else np.zeros((len(space.edges), K))
        lam = np.full(cost.shape, float(self.lambda_child))  # the likelihood's lambda (update)
        lam[:, 0] = self.lambda_origin
        penalty = lam * (1.0 + self.resource_weight * cost)  # cost is 0 in the origin column
        self.cost_coef_, self.lam_, self.penalty_ = cost, lam, penalty
        import torch

        threads = torch.get_num_threads()
        if self.threads:  # tiny convs: one thread is fastest, and 2+ fight other jobs' threads
            torch.set_num_threads(self.threads)
        try:
            self._train(space, lam, penalty, int(rng.integers(2**31 - 1)))
        finally:
            torch.set_num_threads(threads)

        scores = entropy_scores(self.gamma_, self.prune_gamma)
        picked = pick_arch(scores)
        arch, swaps = repair(picked, scores, constraints, space)
        if not feasible_mask(constraints, [arch])[0]:  # greedy stuck: best-scored feasible cell
            archs = np.asarray(list(space.iter_all()))
            ok = np.flatnonzero(feasible_mask(constraints, [tuple(a) for a in archs]))
            if len(ok) == 0:
                return arch, None, "no feasible cell exists under the constraints; returned the repaired pick"
            total = scores[np.arange(archs.shape[1]), archs[ok]].sum(1)
            arch = tuple(int(o) for o in archs[ok[int(np.argmax(total))]])
        self.picked_, self.final_ = picked, arch

        near = variants(arch, scores, K)
        cands = [a for a, good in zip(near, feasible_mask(constraints, near), strict=True) if good]
        live = [a for a in cands if not space.is_degenerate(a)]
        k = self.final_count(max(1, min(budget, self.k)))
        cands = (live or cands or [arch])[:max(1, k)]
        pick, best, n = self.validate_ranked(accuracy, cands, k)
        note = (f"supernet train {self.train_acc_:.1f}% (images it trained on, final switches) / val "
                f"{self.val_acc_:.1f}%; BayesNAS pick {space.to_str(picked)}; {swaps} repair swaps; "
                f"{int((~self.alive_).sum())}/{self.alive_.size} switches pruned; "
                + (f"best of {n} queried variants (#{best} by entropy score)" if n else "k = 0: the top variant, unread"))
        return pick, None, note

    # ---- training + Bayesian updates ---------------------------------------------------------
    def _train(self, space, lam: np.ndarray, penalty: np.ndarray, seed: int) -> None:
        """Train the switch network for `epochs` steps; sets gamma_, w_, alive_, history_."""
        import torch
        import torch.nn.functional as F

        from .oneshot import cpu_seconds

        c0 = cpu_seconds()
        ds = _dataset(self.data, self.data_seed)
        rs = np.random.default_rng(seed)
        idx = rs.permutation(len(ds.train))[:self.n_images]
        x = torch.from_numpy(ds.train.x[np.sort(idx)])
        y = torch.from_numpy(ds.train.y[np.sort(idx)])
        if self.resolution and tuple(x.shape[2:]) != (self.resolution,) * 2:
            x = F.interpolate(x, size=(self.resolution,) * 2, mode="bilinear", align_corners=False)
        n, bs = len(y), self.batch_size
        E, K = lam.shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _switch_network(space, self.C, self.N, x.shape[1], ds.num_classes)
            S = net.switches
            opt_w = torch.optim.SGD(net.weights(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
            opt_s = torch.optim.SGD([S], lr=self.switch_lr, momentum=self.momentum, weight_decay=0.0)
            alive = np.ones((E, K), dtype=bool)
            gamma, w = np.ones((E, K)), np.ones((E, K))
            pen_t = torch.as_tensor(penalty, dtype=S.dtype)
            history = []
            net.train()
            for _ in range(self.epochs):
                order = torch.from_numpy(rs.permutation(n))
                n_warm = min(max(bs, int(round(self.warmup_fraction * n))), n - 1)
                for i in range(0, n_warm, bs):
                    b = order[i:min(i + bs, n_warm)]
                    opt_w.zero_grad()
                    F.cross_entropy(net(x[b], alive), y[b]).backward()
                    opt_w.step()
                w_t = torch.as_tensor(w, dtype=S.dtype)
                mask = torch.from_numpy(alive).to(S.dtype)
                last = None
                for i in range(n_warm, n, bs):
                    b = order[i:i + bs]
                    opt_w.zero_grad()
                    opt_s.zero_grad()
                    nll = F.cross_entropy(net(x[b], alive), y[b])
                    norms = torch.sqrt((S**2).sum(0) + 1e-12)
                    (nll + (pen_t * w_t * norms * mask).sum()).backward()
                    S.grad.mul_(mask)
                    opt_w.step()
                    opt_s.step()
                    with torch.no_grad():
                        S.mul_(mask)
                    last = b
                if self.hessian == "ggn":
                    H = ggn_diag(net, x[last], y[last], alive)
                else:
                    nll = F.cross_entropy(net(x[last], alive), y[last])
                    H = exact_hessian_diag(nll, S, alive)
                s_np = S.detach().numpy().astype(np.float64)
                gamma, w, _ = laplace_update(s_np, H.numpy(), gamma, lam)
                alive &= gamma >= self.prune_gamma
                alive[~alive[:, 0]] = False  # a pruned origin takes its children with it
                with torch.no_grad():
                    S.mul_(torch.from_numpy(alive).to(S.dtype))
                history.append(dict(nll=float(nll.detach()), gamma=gamma.copy(), H=H.numpy().copy(),
                                    pruned=int((~alive).sum())))
        self.gamma_, self.w_, self.alive_, self.history_ = gamma, w, alive, history
        self.switches_ = S.detach().numpy().copy()
        from hwnas.search.data import Split

        from .oneshot import accuracy_of, cpu_seconds, recalibrate_bn

        vx = ds.val.x[:self.n_val]
        if self.resolution and tuple(vx.shape[2:]) != (self.resolution,) * 2:
            vx = F.interpolate(torch.from_numpy(vx), size=(self.resolution,) * 2, mode="bilinear",
                               align_corners=False).numpy()
        with torch.no_grad():
            recalibrate_bn(net, lambda xb: net(xb, alive), Split(x.numpy(), y.numpy()))
            self.val_acc_ = accuracy_of(lambda xb: net(xb, alive), Split(vx, ds.val.y[:self.n_val]), n=None)
            self.train_acc_ = accuracy_of(lambda xb: net(xb, alive), Split(x.numpy(), y.numpy()), n=self.n_val)
        self.train_cpu_s_ = cpu_seconds() - c0
        kinds = np.where(np.arange(alive.shape[1]) == 0, "origin", "child")
        self.stats_ = {"switches": int(alive.size), "pruned": int((~alive).sum()),
                       "pruned_origin": int((~alive[:, kinds == "origin"]).sum()),
                       "pruned_child": int((~alive[:, kinds == "child"]).sum()), "epochs": self.epochs}


# ---- chain spaces ------------------------------------------------------------------------------
def laplace_update_tree(s, H, gamma, lam, parent, eps: float = 1e-12):
    """The Laplace update of a hierarchical ARD prior over scalar switches in a tree (or chain).

    `s`, `H`, `gamma`, `lam`: (G,) switch values, diagonal NLL curvature, previous gamma and lam;
    `parent[g]`: index of g's parent switch or -1 (a root); parents come before their children.
    `C = (1/gamma + H/lam)^-1`, `w = sqrt(|1/gamma - C/gamma^2|)`, own = `|s| / w`; a root's
    gamma is its own, a child's `(1/own + 1/gamma_parent)^-1` (never above its parent's).
    Returns (gamma, w, C).
    """
    s = np.asarray(s, dtype=np.float64)
    H = np.clip(np.asarray(H, dtype=np.float64), 0.0, None)
    gamma = np.maximum(np.asarray(gamma, dtype=np.float64), eps)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), gamma.shape)
    C = 1.0 / (1.0 / gamma + H / lam)
    w = np.sqrt(np.abs(1.0 / gamma - C / gamma**2))
    own = np.abs(s) / np.maximum(w, eps)
    out = np.empty_like(own)
    for g, p in enumerate(parent):
        if p >= g:
            raise ValueError(f"switch {g}'s parent {p} does not come before it")
        if p < 0:
            out[g] = own[g]
        else:
            with np.errstate(divide="ignore"):
                out[g] = 1.0 / (1.0 / own[g] + 1.0 / out[p]) if own[g] > 0 and out[p] > 0 else 0.0
    return out, w, C


class ChainSwitches:
    """The switches of a MixedChainNet, flat: per block position an origin switch (optional
    blocks only; its parent is the previous optional block's origin in the stage, so depth stays
    contiguous), kernel child switches (the gated parallel depthwise kernels, or one per choice
    for a non-factorised block) and expansion child switches (one per nested channel segment
    between allowed widths)."""

    def __init__(self, net):
        self.blocks = list(net.blocks)
        kinds, parent, owner, index = [], [], [], []
        self.origin, self.kernel, self.expand = [], [], []
        last_origin: dict[int, int] = {}

        def switch(kind: str, par: int, blk_i: int, idx: int) -> int:
            kinds.append(kind)
            parent.append(par)
            owner.append(blk_i)
            index.append(idx)
            return len(kinds) - 1

        for i, blk in enumerate(self.blocks):
            o = -1
            if blk.optional:
                o = switch("origin", last_origin.get(blk.s, -1), i, 0)
                last_origin[blk.s] = o
            self.origin.append(o)
            self.kernel.append([switch("kernel", o, i, k) for k in range(blk.n_ops)])
            self.expand.append([switch("expand", o, i, g) for g in range(len(blk.mids) if blk.factorised else 0)])
        self.kinds, self.parent, self.owner, self.index = kinds, np.array(parent), owner, index
        self.G = len(kinds)
        # protected: a mandatory block's last kernel, every block's narrowest width segment
        self.segments = []
        for blk in self.blocks:
            if blk.factorised:
                edges = [0] + list(blk.mids)
                seg = np.zeros(blk.mid, dtype=np.int64)
                for g in range(len(blk.mids)):
                    seg[edges[g]:edges[g + 1]] = g
                self.segments.append(seg)
            else:
                self.segments.append(None)

    def gates(self, S, alive):
        """Per block (op_gate, ch_gate, depth_gate, live) from the switch vector S (torch)."""
        torch = __import__("torch")
        a = torch.as_tensor(alive, dtype=S.dtype)
        Sa = S * a
        out = []
        for i, blk in enumerate(self.blocks):
            op = Sa[self.kernel[i]]
            live = [k for k, g in enumerate(self.kernel[i]) if alive[g]]
            ch = None
            if blk.factorised:
                ch = Sa[self.expand[i]][torch.from_numpy(self.segments[i])]
            d = Sa[self.origin[i]] if self.origin[i] >= 0 else None
            out.append((op, ch, d, live))
        return out

    def cascade(self, alive):
        """A pruned parent prunes its children (parents come first)."""
        alive = alive.copy()
        for g, p in enumerate(self.parent):
            if p >= 0 and not alive[p]:
                alive[g] = False
        return alive

    def protect(self, alive, gamma):
        """Keep what a network needs: a mandatory block's best kernel, every block's narrowest
        width segment (while its block is alive)."""
        alive = alive.copy()
        for i in range(len(self.blocks)):
            block_on = self.origin[i] < 0 or alive[self.origin[i]]
            if not block_on:
                continue
            ks = self.kernel[i]
            if not alive[ks].any():
                alive[ks[int(np.argmax(gamma[ks]))]] = True
            if self.expand[i]:
                alive[self.expand[i][0]] = True
        return alive

    def block_scores(self, space, score):
        """[stage] -> [max_depth, n_choices]: kernel score + the scores of the width segments up
        to the choice's width + the origin's score (optional blocks)."""
        S = [np.zeros((st.max_depth, len(st.choices))) for st in space.stages]
        for i, blk in enumerate(self.blocks):
            o = score[self.origin[i]] if self.origin[i] >= 0 else 0.0
            for c in range(len(space.stages[blk.s].choices)):
                if blk.factorised:
                    k, e = next(ke for ke, cc in blk.index.items() if cc == c)
                    ki, ei = blk.kernels.index(k), blk.expansions.index(e)
                    S[blk.s][blk.b, c] = score[self.kernel[i][ki]] + sum(score[g] for g in self.expand[i][:ei + 1]) + o
                else:
                    S[blk.s][blk.b, c] = score[self.kernel[i][c]] + o
        return S

    def decode(self, space, alive, score):
        """Depth: the leading optional blocks with a live origin; per block the live kernel with
        the best score and the width of its leading live segments."""
        arch: list[list[int]] = [[] for _ in space.stages]
        stopped: set[int] = set()
        for i, blk in enumerate(self.blocks):
            if self.origin[i] >= 0 and (blk.s in stopped or not alive[self.origin[i]]):
                stopped.add(blk.s)
                continue
            ks = self.kernel[i]
            op = int(np.argmax([score[g] + (1e3 if alive[g] else 0.0) for g in ks]))
            width = None
            if blk.factorised:
                width = 0
                for g in self.expand[i][1:]:
                    if not alive[g]:
                        break
                    width += 1
            arch[blk.s].append(blk.choice(op, width))
        return tuple(tuple(b) for b in arch)

    def costs(self, share):
        """(G,) normalised cost of each switch (mean 1 over the non-zero ones): a kernel's cost
        over the block's cheapest kernel, a width segment's cost over the next narrower width,
        an origin's the block's mean cost; from the constraint's block table."""
        c = np.zeros(self.G)
        if share is None:
            return c
        for i, blk in enumerate(self.blocks):
            T = share[blk.s][blk.b]
            if blk.factorised:
                Gm = np.array([[T[blk.index[(k, e)]] for e in blk.expansions] for k in blk.kernels])
                per_k = Gm.mean(1)
                for ki, g in enumerate(self.kernel[i]):
                    c[g] = per_k[ki] - per_k.min()
                per_e = Gm.mean(0)
                for ei, g in enumerate(self.expand[i]):
                    c[g] = 0.0 if ei == 0 else max(per_e[ei] - per_e[ei - 1], 0.0)
                if self.origin[i] >= 0:
                    c[self.origin[i]] = Gm.mean()
            else:
                for k, g in enumerate(self.kernel[i]):
                    c[g] = T[k] - T.min()
                if self.origin[i] >= 0:
                    c[self.origin[i]] = T.mean()
        nz = c[c > 0]
        return c / nz.mean() if nz.size else c


def ggn_diag_chain(net, sw, S, alive, x, y) -> np.ndarray:
    """Exact diagonal of the Gauss-Newton matrix of the mean NLL w.r.t. the switch vector, per
    sample (batch of one, BN on running statistics): one backward pass per class."""
    import torch

    was = net.training
    net.eval()
    out = np.zeros(S.numel())
    try:
        for n in range(len(y)):
            s = S.detach().clone().requires_grad_(True)
            z = net(x[n:n + 1], sw.gates(s, alive))[0]
            p = torch.softmax(z.detach(), 0).numpy().astype(np.float64)
            J = np.stack([torch.autograd.grad(z[k], s, retain_graph=k < len(z) - 1)[0].numpy()
                          for k in range(len(z))]).astype(np.float64)
            out += (p[:, None] * J**2).sum(0) - (p @ J) ** 2
    finally:
        net.train(was)
    return out / max(len(y), 1) * alive


def _search_chain(self, space, accuracy, constraints, budget, rng):
    import torch
    import torch.nn.functional as F
    from hwnas.search.data import batches
    from hwnas.search.supernet.one_shot import build_one_shot

    from .oneshot import (
        accuracy_of,
        chain_costs,
        chain_repair,
        cpu_seconds,
        dataset,
        ranked_candidates,
        recalibrate_bn,
    )

    c0 = cpu_seconds()
    threads = torch.get_num_threads()
    if self.threads:
        torch.set_num_threads(self.threads)
    try:
        ds = dataset(self.data, space.input_shape, self.data_seed)
        seed = int(rng.integers(2**31 - 1))
        rs = np.random.default_rng(seed)
        train = ds.train.subset(self.n_images, seed=seed)
        torch.manual_seed(seed)
        net = build_one_shot(space, "mixed")
        sw = ChainSwitches(net)
        costs = chain_costs(space, constraints)
        cost = sw.costs(costs.share() if costs is not None else None)
        if costs is not None:  # mean 1 where the bound leaves the space's whole span; the bound's scale kept
            cost = cost * costs.tightness()
        lam = np.where(np.array(sw.kinds) == "origin", self.lambda_origin, self.lambda_child).astype(np.float64)
        penalty = lam * (1.0 + self.resource_weight * cost)
        S = torch.nn.Parameter(torch.ones(sw.G))
        opt_w = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        opt_s = torch.optim.SGD([S], lr=self.switch_lr, momentum=self.momentum)
        alive = np.ones(sw.G, dtype=bool)
        gamma, w = np.ones(sw.G), np.ones(sw.G)
        pen_t = torch.as_tensor(penalty, dtype=S.dtype)
        history, tail = [], [0, 0]
        n, bs = len(train), self.batch_size
        net.train()
        for ep in range(self.epochs):
            n_warm = min(max(bs, int(round(self.warmup_fraction * n))), n - bs)
            order = rs.permutation(n)
            warm = type(train)(train.x[order[:n_warm]], train.y[order[:n_warm]])
            rest = type(train)(train.x[order[n_warm:]], train.y[order[n_warm:]])
            for xb, yb in batches(warm, bs, drop_last=True):
                opt_w.zero_grad()
                F.cross_entropy(net(xb, sw.gates(S.detach(), alive)), yb).backward()
                opt_w.step()
            w_t = torch.as_tensor(w, dtype=S.dtype)
            mask = torch.from_numpy(alive).to(S.dtype)
            last = None
            for xb, yb in batches(rest, bs, drop_last=True):
                opt_w.zero_grad()
                opt_s.zero_grad()
                out = net(xb, sw.gates(S, alive))
                nll = F.cross_entropy(out, yb)
                (nll + (pen_t * w_t * S.abs() * mask).sum()).backward()
                S.grad.mul_(mask)
                opt_w.step()
                opt_s.step()
                with torch.no_grad():
                    S.mul_(mask)
                if ep == self.epochs - 1:
                    tail[0] += int((out.argmax(1) == yb).sum())
                    tail[1] += len(yb)
                last = (xb, yb)
            xb, yb = last
            k = min(self.hessian_samples, len(yb))
            H = ggn_diag_chain(net, sw, S, alive, xb[:k], yb[:k])
            gamma, w, _ = laplace_update_tree(S.detach().numpy(), H, gamma, lam, sw.parent)
            new = alive & (gamma >= self.prune_gamma)
            new = sw.protect(sw.cascade(new), gamma)
            with torch.no_grad():
                S.mul_(torch.from_numpy(new).to(S.dtype))
                S[torch.from_numpy(new & ~alive)] = 1.0  # revived by `protect`: restart it
            history.append({"epoch": ep + 1, "nll": float(nll.detach()), "pruned": int((~new).sum()),
                            "pruned_now": int((alive & ~new).sum()), "H_median": float(np.median(H[alive])),
                            "gamma_median": float(np.median(gamma[alive]))})
            alive = new
        final = sw.gates(S.detach(), alive)
        with torch.no_grad():
            recalibrate_bn(net, lambda x: net(x, final), train)
            self.val_acc_ = accuracy_of(lambda x: net(x, final), ds.val, n=self.n_val)
    finally:
        torch.set_num_threads(threads)
    self.train_acc_ = 100.0 * tail[0] / max(tail[1], 1)
    self.train_cpu_s_ = cpu_seconds() - c0
    self.net_, self.switch_net_, self.history_ = net, sw, history
    self.gamma_, self.w_, self.alive_, self.switches_ = gamma, w, alive, S.detach().numpy().copy()
    self.cost_coef_, self.lam_, self.penalty_ = cost, lam, penalty
    kinds = np.array(sw.kinds)
    self.stats_ = {"switches": sw.G, "pruned": int((~alive).sum()),
                   **{f"pruned_{k}": int((~alive[kinds == k]).sum()) for k in ("origin", "kernel", "expand")},
                   **{f"switches_{k}": int((kinds == k).sum()) for k in ("origin", "kernel", "expand")},
                   "epochs": self.epochs, "images": n}
    score = 0.5 * np.log(np.maximum(gamma, 1e-300) / self.prune_gamma)
    S_blocks = sw.block_scores(space, score)
    picked = self.picked_ = sw.decode(space, alive, score)
    arch, how = picked, "no repair needed"
    if not feasible_mask(constraints, [arch])[0]:
        arch, how = chain_repair(space, constraints, arch, S_blocks)
    self.final_ = arch
    k = self.final_count(max(1, min(budget, self.k)))
    cands = ranked_candidates(space, constraints, arch, S_blocks, max(1, k))
    cands = [a for a, ok in zip(cands, feasible_mask(constraints, cands), strict=True) if ok] or [arch]
    pick, best, n_read = self.validate_ranked(accuracy, cands, k)
    pr = ", ".join(f"{self.stats_['pruned_' + k]}/{self.stats_['switches_' + k]} {k}" for k in ("origin", "kernel", "expand"))
    note = (f"{self.epochs} epochs on {n} {self.data} images, supernet train {self.train_acc_:.1f}% / val "
            f"{self.val_acc_:.1f}%; {self.stats_['pruned']}/{sw.G} switches pruned ({pr}); BayesNAS pick "
            f"{space.to_str(picked)}; {how}; "
            + (f"best of {n_read} queried (#{best + 1} by entropy score)" if n_read else
               "k = 0: the top-scored arch, unread"))
    return pick, None, note

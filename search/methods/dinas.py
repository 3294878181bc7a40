"""DI-NAS: dynamical-isometry initialisation, fair supernet training, BN-gamma module scores,
evolution under the table constraint (METHODS.md section 5).

The paper has no public code: everything below is a reconstruction; the choices it had to make
are named here and in the docstrings.

- Supernet: FairNAS-style, every candidate of every layer is an independent module
  (`space.build_block` of its block spec), not OFA's shared slices: a per-candidate score needs
  per-candidate weights. A parameter-free candidate (FBNet's `skip`) gets a BatchNorm so it is
  scored like the others (METHODS.md); that BN is the only place the supernet's path differs from
  `space.build(arch)`.
- Dynamical-isometry init (`di_init_`): delta-orthogonal convolutions (orthogonal at the kernel
  centre, zero elsewhere; a depthwise kernel is a centre delta of 1, the identity per channel),
  gains `sigma_w` with `chi = sigma_w^2 E[phi'(z)^2] = 1` at BN's fixed point `q* = 1`
  (`chi_gain`: sqrt(2) for ReLU, ~1.66 for hard-swish), BN gamma 1 beta 0. For inverted
  bottlenecks (MBConv, FBNet blocks with expansion >= 2, no groups) the orthogonal matrices are
  sign-mirrored ("looks-linear", Balduzzi et al. 2017): expand `[Q; -Q]`, project `[P, -P]` with
  `P = R Q^T`; since `phi(x) - phi(-x) = x` holds for ReLU and hard-swish, the branch is the
  orthogonal map `R` at initialisation (R = I when the block has a residual, so the block is 2x;
  else a random semi-orthogonal R). Haar-random orthogonal matrices in the same places gave block
  condition numbers of 2.5-9 (BN as at init) and 600-2000 (BN at batch statistics), since ReLU
  zeroes a different half of every pixel's units; the mirrored matrices are still orthogonal,
  with the chi = 1 gains. Squeeze-excite
  starts as the constant gate 1/2 (expand weights 0, bias 0: its gradient is alive) and the
  projection's gain is doubled to compensate. Other modules (stem, head, grouped or e1 blocks)
  get plain delta-orthogonal convs with the gain of the activation that follows them.
- Isometry check (`jacobian_condition`): power iteration on the Jacobian's Gram matrix (J v by
  forward-mode AD, J^T u by `torch.func.vjp`), in float64, on a small input; BN either at the
  statistics of a batch of Gaussian inputs (how it runs in training, default) or as it stands in
  eval mode. A strided module's delta kernel reads one pixel in four, so its Jacobian is
  rank-deficient by construction: only stride-1 modules are checked. Measured on mbv3-fmnist, all
  90 stride-1 candidates, 3x3 inputs, exact SVD (`isometry_report(..., exact=True)`): DI init
  median 2.08 / max 2.67 with BN at batch statistics, where the default init gives median 599 /
  max 1.4e5; with BN as at init (identity) DI gives median 1.29 / max 1.79 and the default init
  1.07 / 1.44 (its residual branches start tiny, so those blocks are near the identity too).
  Not isometric: FBNet's e1 and grouped blocks (a ReLU of width c_in zeroes half the signal; no
  mirrored pair fits), and its non-residual e3/e6 blocks with BN at batch statistics (condition
  27 to rank-deficient; 1 with BN as at init): the depthwise BN re-centres the rectified halves
  and the ReLU after it zeroes both units of some pairs.
- Fair training (FairNAS rule): each step one depth per stage is drawn uniformly over the stage's
  depths (the distribution of the existing uniform sampler, but shared by the step's paths so the
  rule stays exact), then m = max choices per layer paths use a random permutation of every
  active layer's candidates, so each candidate of each active layer runs exactly once; a layer
  with fewer than m choices pads its permutation with uniform draws. The gradients of the m paths
  are accumulated and applied in one update (the existing `Trainer` does exactly this with the
  path hook `archs_fn`).
- Module score (the documented proxy for the paper's generalisation estimate): mean |gamma| of
  the candidate's last BatchNorm after fair training, i.e. how strongly its output is weighted.
  Architecture score = sum over its blocks. Depth: an absent block (beyond the stage's depth)
  adds 0, i.e. it is the residual stream's identity; a present block adds its score, so depth is
  paid for by the constraint, not by the score. Gammas start at 1 and move little in a short
  training, so then the score mostly counts blocks (the deepest network that fits the bound wins,
  choices break ties).
- Search: SPOS-style evolution ranked by the score (free): population 50, the top 10 of every arch
  scored so far are the parents, 25 mutations (p = 0.1) + 25 crossovers per generation, 20
  generations; an infeasible or already-scored child is redrawn.
- Budget: DI-NAS reads no accuracy while searching. To compete on the same terms as the other
  methods it validates the `min(budget, validate_top)` best-scored archs through
  `accuracy.query` and returns the most accurate of them.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
from torch import nn

from search.supernet.base import Supernet

from .base import Searcher, feasible_mask, register_method, sample_feasible

# ---- dynamical-isometry initialisation ---------------------------------------------------------

@contextmanager
def _one_thread():
    """Tiny QRs and Jacobian products: one thread is faster, and on a shared machine several
    intra-op threads slowed them down ~10x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Hardswish: nn.functional.hardswish,
                nn.ReLU6: nn.functional.relu6, nn.SiLU: nn.functional.silu}
#: activations with phi(x) - phi(-x) = x, which mirrored ("looks-linear") weights make linear
_MIRROR_OK = (nn.ReLU, nn.Hardswish)


@cache
def _chi_gain(act_type: type) -> float:
    z = torch.linspace(-10.0, 10.0, 200_001, dtype=torch.float64)
    pdf = torch.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    with torch.enable_grad():
        zz = z.clone().requires_grad_(True)
        (d,) = torch.autograd.grad(_ACTIVATIONS[act_type](zz).sum(), zz)
    second = float((d ** 2 * pdf).sum() * (z[1] - z[0]))
    return 1.0 / math.sqrt(second)


def chi_gain(act: nn.Module | type | None) -> float:
    """sigma_w with chi = sigma_w^2 E[phi'(z)^2] = 1 for z ~ N(0, 1) (BN's pre-activation fixed
    point); 1 for no activation. ReLU: sqrt(2)."""
    if act is None:
        return 1.0
    t = act if isinstance(act, type) else type(act)
    if t not in _ACTIVATIONS:
        raise ValueError(f"no chi gain for activation {t.__name__}; known: "
                         f"{', '.join(a.__name__ for a in _ACTIVATIONS)}")
    return _chi_gain(t)


def orthogonal(rows: int, cols: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Haar-random matrix with orthonormal columns (rows >= cols) or rows (rows < cols)."""
    a = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    return (q if rows >= cols else q.T).float()


@torch.no_grad()
def delta_orthogonal_(conv: nn.Conv2d, gain: float = 1.0, matrix: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> nn.Conv2d:
    """Zero kernel with `gain *` an orthogonal matrix (per group) at its centre; a depthwise
    kernel gets a centre delta of `gain` (the identity per channel)."""
    w = conv.weight
    out, in_g, kh, kw = w.shape
    g = conv.groups
    w.zero_()
    if in_g == 1 and g == out:
        w[:, 0, kh // 2, kw // 2] = gain
    else:
        for i in range(g):
            lo = i * (out // g)
            m = matrix if matrix is not None else orthogonal(out // g, in_g, generator)
            w[lo:lo + out // g, :, kh // 2, kw // 2] = gain * m
    if conv.bias is not None:
        conv.bias.zero_()
    return conv


def _bn_reset_(m: nn.Module) -> None:
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if mod.affine:
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
            if mod.track_running_stats:
                mod.reset_running_stats()


def _seq_parts(seq) -> tuple[nn.Conv2d | None, nn.Module | None]:
    """(conv, activation) of a ConvBN[Act] Sequential; (None, None) for Identity."""
    if not isinstance(seq, nn.Sequential):
        return None, None
    conv = next((m for m in seq if isinstance(m, nn.Conv2d)), None)
    act = next((m for m in seq if isinstance(m, tuple(_ACTIVATIONS))), None)
    return conv, act


def _di_bottleneck_(block: nn.Module, generator=None) -> bool:
    """Mirrored delta-orthogonal init of an inverted bottleneck; False if it does not apply."""
    e, act = _seq_parts(getattr(block, "expand", None))
    d, d_act = _seq_parts(getattr(block, "depthwise", None))
    p, p_act = _seq_parts(getattr(block, "project", None))
    shuffle = getattr(block, "shuffle", nn.Identity())
    if e is None or d is None or p is None or p_act is not None or not isinstance(shuffle, nn.Identity):
        return False
    if not (isinstance(act, _MIRROR_OK) and isinstance(d_act, _MIRROR_OK)):
        return False
    mid, c_in = e.out_channels, e.in_channels
    if e.groups != 1 or p.groups != 1 or d.groups != mid or mid % 2 or mid // 2 < c_in:
        return False
    c_out = p.out_channels
    q = orthogonal(mid // 2, c_in, generator)  # orthonormal columns
    s_e = chi_gain(act) / math.sqrt(2.0)  # [Q; -Q] / sqrt(2) is semi-orthogonal
    delta_orthogonal_(e, s_e, torch.cat([q, -q]))
    delta_orthogonal_(d, 1.0)
    gate = 1.0
    se = getattr(block, "se", None)
    if se is not None and not isinstance(se, nn.Identity):
        with torch.no_grad():
            r = se.reduce
            r.weight.copy_(orthogonal(r.out_channels, r.in_channels, generator)[:, :, None, None] * math.sqrt(2.0))
            r.bias.zero_()
            se.expand.weight.zero_()
            se.expand.bias.zero_()  # hard-sigmoid(0) = 1/2, a constant gate at init
        gate = 0.5
    rot = torch.eye(c_out) if getattr(block, "residual", False) else orthogonal(c_out, c_in, generator)
    pm = rot @ q.T  # c_out x mid/2
    # branch(x) = (s_p * s_e * gate) R x; s_p makes it R x (unit gain)
    delta_orthogonal_(p, 1.0 / (s_e * gate), torch.cat([pm, -pm], 1))
    return True


def _di_generic_(module: nn.Module, generator=None) -> None:
    """Delta-orthogonal convs with the chi gain of the activation that follows in their
    Sequential (1 when none), orthogonal Linear layers."""
    done: set[int] = set()
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        kids = list(seq)
        for i, m in enumerate(kids):
            if isinstance(m, nn.Conv2d):
                act = None
                for n in kids[i + 1:]:
                    if isinstance(n, nn.Conv2d | nn.Linear):
                        break
                    if isinstance(n, tuple(_ACTIVATIONS)):
                        act = n
                        break
                delta_orthogonal_(m, chi_gain(act), generator=generator)
                done.add(id(m))
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and id(m) not in done:
            delta_orthogonal_(m, 1.0, generator=generator)
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(orthogonal(m.out_features, m.in_features, generator))
                if m.bias is not None:
                    m.bias.zero_()


def di_init_(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Dynamical-isometry init of one candidate module in place (see the module docstring)."""
    _bn_reset_(module)
    if not _di_bottleneck_(module, generator):
        _di_generic_(module, generator)
    return module


# ---- isometry check ------------------------------------------------------------------------------

@torch.no_grad()
def _batch_stats_(module: nn.Module, shape, n: int, generator) -> None:
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    module(torch.randn(n, *shape, generator=generator, dtype=torch.float64))
    module.eval()


def jacobian_condition(module: nn.Module, input_shape, iters: int = 100, bn: str = "batch",
                       batch: int = 128, seed: int = 0, exact: bool = False) -> tuple[float, float, float]:
    """(condition number, largest, smallest singular value) of the module's input-output Jacobian
    at one Gaussian input of `input_shape` (C, H, W), in float64 on a copy of the module.

    Power iteration on the Gram matrix of the smaller side (J^T J or J J^T), with J v by forward-
    mode AD (`torch.autograd.forward_ad`) and J^T u by `torch.func.vjp`. The smallest eigenvalue
    comes from power iteration on (lambda_max I - G), which approaches it from above: the
    condition number returned is a lower estimate that tightens with `iters` (close for a
    well-conditioned module, far too low for an ill-conditioned one). `exact=True` builds the
    whole Jacobian instead and takes its singular values (small inputs only).

    bn="batch": BN at the statistics of `batch` Gaussian inputs (the per-sample function as it
    runs in training); bn="eval": BN as the module stands (at init, running stats (0, 1), BN is
    the identity).
    """
    if bn not in ("batch", "eval"):
        raise ValueError(f"bn must be 'batch' or 'eval', got {bn!r}")
    with _one_thread():
        return _jacobian_condition(module, input_shape, iters, bn, batch, seed, exact)


def _jacobian_condition(module, input_shape, iters, bn, batch, seed, exact):
    import torch.autograd.forward_ad as fwad

    g = torch.Generator().manual_seed(seed)
    m = copy.deepcopy(module).double()
    for mod in m.modules():  # functional transforms and in-place activations do not mix
        if hasattr(mod, "inplace"):
            mod.inplace = False
    if bn == "batch":
        _batch_stats_(m, input_shape, batch, g)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    x = torch.randn(1, *input_shape, generator=g, dtype=torch.float64)
    y, vjp_fn = torch.func.vjp(m, x)

    def jvp(v):
        with fwad.dual_level():
            return fwad.unpack_dual(m(fwad.make_dual(x, v))).tangent

    def vjp(u):
        return vjp_fn(u)[0]

    if exact:
        eye = torch.eye(y.numel(), dtype=torch.float64).reshape(-1, *y.shape)
        jac = torch.stack([vjp(e).flatten() for e in eye])
        sv = torch.linalg.svdvals(jac)[:min(jac.shape)]
        smax, smin = float(sv[0]), float(sv[-1])
        return (smax / smin if smin > 0 else math.inf), smax, smin
    if x.numel() <= y.numel():
        def gram(v):
            return vjp(jvp(v))
        shape = x.shape
    else:
        def gram(u):
            return jvp(vjp(u))
        shape = y.shape

    def top(op):
        v = torch.randn(shape, generator=g, dtype=torch.float64)
        v /= v.norm()
        lam = 0.0
        for _ in range(iters):
            w = op(v)
            lam = float((v * w).sum())
            n = w.norm()
            if n == 0:
                return 0.0
            v = w / n
        return lam

    lmax = top(gram)
    lmin = max(0.0, lmax - top(lambda v: lmax * v - gram(v)))
    smax, smin = math.sqrt(max(lmax, 0.0)), math.sqrt(lmin)
    return (smax / smin if smin > 0 else math.inf), smax, smin


# ---- fair supernet -----------------------------------------------------------------------------

class ScoredSkip(nn.Module):
    """A parameter-free candidate with a BN, so it gets a gamma and is scored like the others."""

    def __init__(self, op: nn.Module, channels: int):
        super().__init__()
        self.op = op
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.op(x))


class FairChainSupernet(Supernet):
    """Independent candidates per (stage, position, choice) of a chain space (FairNAS style).

    `candidates[s][b][c]` is `space.build_block(space.block_spec(s, b == 0, c))`, with the
    dynamical-isometry init when `di_init`. Stem and head are the space's fixed blocks.
    """

    def __init__(self, space, di_init: bool = True, seed: int = 0):
        super().__init__()
        with _one_thread():
            self._build(space, di_init, seed)

    def _build(self, space, di_init: bool, seed: int) -> None:
        self.space, self.di_init, self.seed = space, di_init, seed
        gen = torch.Generator().manual_seed(seed)
        stem, head = space.fixed_blocks()
        self.stem, self.head = space.build_block(stem), space.build_block(head)
        stages = []
        for s, st in enumerate(space.stages):
            positions = []
            for b in range(st.max_depth):
                cands = []
                for c in range(len(st.choices)):
                    spec = space.block_spec(s, b == 0, c)
                    mod = space.build_block(spec)
                    if not any(True for _ in mod.parameters()):
                        mod = ScoredSkip(mod, st.width)
                    if di_init:
                        di_init_(mod, gen)
                    cands.append(mod)
                positions.append(nn.ModuleList(cands))
            stages.append(nn.ModuleList(positions))
        self.candidates = nn.ModuleList(stages)

    def config(self) -> dict:
        return {"di_init": self.di_init, "seed": self.seed}

    def _params(self, s: int, c: int) -> int:
        return sum(p.numel() for p in self.candidates[s][0][c].parameters())

    def largest(self):
        return tuple((max(range(len(st.choices)), key=lambda c, s=s: self._params(s, c)),) * st.max_depth
                     for s, st in enumerate(self.space.stages))

    def smallest(self):
        return tuple((min(range(len(st.choices)), key=lambda c, s=s: self._params(s, c)),) * st.min_depth
                     for s, st in enumerate(self.space.stages))

    def forward(self, x, arch=None):
        arch = self.largest() if arch is None else arch
        x = self.stem(x)
        for s, blocks in enumerate(arch):
            for b, c in enumerate(blocks):
                x = self.candidates[s][b][c](x)
        return self.head(x)

    def candidate_scores(self) -> list[np.ndarray]:
        """Per stage, [max_depth, n_choices]: mean |gamma| of each candidate's last BN."""
        out = []
        for positions in self.candidates:
            rows = []
            for cands in positions:
                row = []
                for mod in cands:
                    bns = [m for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]
                    row.append(float(bns[-1].weight.detach().abs().mean()) if bns else 0.0)
                rows.append(row)
            out.append(np.asarray(rows, dtype=np.float64))
        return out


def fair_paths(space, rng: np.random.Generator) -> list:
    """The m paths of one fair step: one depth per stage (uniform over its depths, shared by the
    paths); every active layer's candidates permuted so each runs exactly once (a layer with fewer
    than m = max choices pads with uniform draws)."""
    depths = [int(rng.integers(st.min_depth, st.max_depth + 1)) for st in space.stages]
    m = max(len(st.choices) for st in space.stages)
    cols = []
    for st, d in zip(space.stages, depths, strict=True):
        n = len(st.choices)
        stage = []
        for _ in range(d):
            perm = rng.permutation(n)
            if n < m:
                perm = np.concatenate([perm, rng.integers(0, n, size=m - n)])
            stage.append(perm)
        cols.append(stage)
    return [tuple(tuple(int(p[j]) for p in stage) for stage in cols) for j in range(m)]


def train_fair_supernet(space, data, epochs: int = 5, batch_size: int = 64, lr: float = 0.05,
                        train_per_epoch: int | None = None, seed: int = 0, threads: int = 2,
                        di_init: bool = True, progress: bool = False,
                        net: FairChainSupernet | None = None) -> FairChainSupernet:
    """Build the fair supernet of `space` (DI init; or take `net`) and train it with `fair_paths`
    on `data.train` through the shared `Trainer` (gradients of the m paths accumulated, one
    update per step)."""
    from search.supernet.train import TrainConfig, Trainer

    torch.manual_seed(seed)
    net = net if net is not None else FairChainSupernet(space, di_init=di_init, seed=seed)
    n = len(data.train) if train_per_epoch is None else min(train_per_epoch, len(data.train))
    total = max(1, n // batch_size) * epochs
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, train_per_epoch=train_per_epoch,
                      seed=seed, threads=threads, monitor_val=0, warmup_steps=max(1, min(50, total // 10)))
    tr = Trainer(net, cfg, lambda rng: fair_paths(space, rng), progress=progress).fit(data)
    net.history_ = tr.history_
    return net


# ---- search ---------------------------------------------------------------------------------

def arch_score(scores: list[np.ndarray], arch) -> float:
    """Sum of the arch's block scores; absent blocks add 0."""
    return float(sum(scores[s][b, c] for s, blocks in enumerate(arch) for b, c in enumerate(blocks)))


def evolve(space, score_fn, constraints, rng: np.random.Generator, population: int = 50,
           top_k: int = 10, mutations: int = 25, crossovers: int = 25, mutation_p: float = 0.1,
           generations: int = 20, max_redraws: int = 50) -> list[tuple[float, object]]:
    """SPOS-style evolution maximising a free `score_fn(archs) -> array` over feasible archs.

    Returns every (score, arch) scored, best first.
    """
    scored: dict[str, tuple[float, object]] = {}

    def add(archs):
        if archs:
            for a, v in zip(archs, score_fn(archs), strict=True):
                scored[space.to_str(a)] = (float(v), a)

    def pick(top):
        return top[int(rng.integers(len(top)))]

    def children(top, n, make):
        out, keys = [], set()
        for _ in range(n):
            for _ in range(max_redraws):
                a = make(top)
                k = space.to_str(a)
                if k not in scored and k not in keys and feasible_mask(constraints, [a])[0]:
                    keys.add(k)
                    out.append(a)
                    break
        return out

    def mutant(top):
        return space.mutate(pick(top), rng, p=mutation_p)

    def cross(top):
        return space.crossover(pick(top), pick(top), rng)

    add(sample_feasible(space, constraints, rng, population))
    for _ in range(generations):
        if not scored:
            break
        top = [a for _, a in sorted(scored.values(), key=lambda t: -t[0])[:top_k]]
        kids = children(top, mutations, mutant)
        kids += children(top, crossovers, cross)
        add(kids)
    return sorted(scored.values(), key=lambda t: -t[0])


@register_method("dinas")
class DINAS(Searcher):
    """DI-NAS on chain spaces (reconstruction; see the module docstring).

    `supernet`: a trained `FairChainSupernet`; when None, one is built with DI init and trained
    fairly on `data` (`digits` by default so the method runs anywhere in seconds; pass
    `data="fashion-mnist"` and more epochs for a real run). The trained supernet is kept in
    `supernet_` and reused by later searches of the same space; `scores_` holds the candidate
    scores, `isometry_` the Jacobian check of the stride-1 candidates after init (when
    `check_isometry`).
    """

    spaces = ("mbv3-fmnist", "mbv3-imagenet", "fbnet")

    def __init__(self, supernet: FairChainSupernet | None = None, data: str = "digits", epochs: int = 2,
                 batch_size: int = 64, lr: float = 0.05, train_per_epoch: int | None = None,
                 train_seed: int = 0, threads: int = 2, di_init: bool = True, check_isometry: bool = False,
                 population: int = 50, top_k: int = 10, mutations: int = 25, crossovers: int = 25,
                 mutation_p: float = 0.1, generations: int = 20, validate_top: int = 10, max_redraws: int = 50):
        self.supernet, self.data, self.epochs, self.batch_size, self.lr = supernet, data, epochs, batch_size, lr
        self.train_per_epoch, self.train_seed, self.threads = train_per_epoch, train_seed, threads
        self.di_init, self.check_isometry = di_init, check_isometry
        self.population, self.top_k, self.mutations, self.crossovers = population, top_k, mutations, crossovers
        self.mutation_p, self.generations, self.validate_top = mutation_p, generations, validate_top
        self.max_redraws = max_redraws

    def get_params(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_")}

    def _fit_supernet(self, space) -> FairChainSupernet:
        if self.supernet is not None:
            if self.supernet.space.name != space.name:
                raise ValueError(f"supernet is of space {self.supernet.space.name!r}, not {space.name!r}")
            return self.supernet
        net = getattr(self, "supernet_", None)
        if net is not None and net.space.name == space.name:
            return net
        from search.data import load_dataset

        data = load_dataset(self.data, shape=space.input_shape, seed=self.train_seed)
        torch.manual_seed(self.train_seed)
        net = FairChainSupernet(space, di_init=self.di_init, seed=self.train_seed)
        if self.check_isometry:
            self.isometry_ = isometry_report(net)
        return train_fair_supernet(space, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                   train_per_epoch=self.train_per_epoch, seed=self.train_seed,
                                   threads=self.threads, net=net)

    def _search(self, space, accuracy, constraints, budget, rng):
        self.supernet_ = self._fit_supernet(space)
        self.scores_ = scores = self.supernet_.candidate_scores()
        ranked = evolve(space, lambda archs: [arch_score(scores, a) for a in archs], constraints, rng,
                        self.population, self.top_k, self.mutations, self.crossovers, self.mutation_p,
                        self.generations, self.max_redraws)
        self.ranked_ = ranked
        if not ranked:
            return space.smallest(), None, "no feasible arch found by sampling; returned the smallest"
        cands = [a for _, a in ranked[:max(1, min(budget, self.validate_top))]]
        ok = feasible_mask(constraints, cands)
        cands = [a for a, f in zip(cands, ok, strict=True) if f]  # all feasible by construction
        acc = accuracy.query(cands)
        i = int(np.argmax(acc))
        score = arch_score(scores, cands[i])
        return cands[i], None, (f"DI score {score:.4g} (rank {i + 1} of {len(cands)} validated; "
                                f"{len(ranked)} archs scored)")


def isometry_report(net: FairChainSupernet, size: int = 4, iters: int = 60, bn: str = "batch",
                    exact: bool = False) -> dict:
    """Jacobian condition number of every stride-1 candidate on a `size` x `size` input
    (n, median, max)."""
    conds = []
    for s, positions in enumerate(net.candidates):
        for b, cands in enumerate(positions):
            for c, mod in enumerate(cands):
                spec = net.space.block_spec(s, b == 0, c)
                if spec.params.get("stride", 1) != 1:
                    continue
                conds.append(jacobian_condition(mod, (spec.input_shape[0], size, size), iters=iters, bn=bn,
                                                exact=exact)[0])
    a = np.asarray(conds)
    return {"n": int(a.size), "median": float(np.median(a)) if a.size else float("nan"),
            "max": float(a.max()) if a.size else float("nan")}

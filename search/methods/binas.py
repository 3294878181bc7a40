"""BINAS (docs/methods.md section 1): a bilinear accuracy estimator, linear costs in the same
variables, and an exact constrained solve.

Steps of one search:
1. Accuracy estimator (`predictors.bilinear.BilinearPredictor`) from the query budget:
   `mode="least_squares"` samples `budget` feasible archs, reads their accuracy and fits the
   bilinear form by (ridge) least squares; `mode="measured"` runs BINAS's measured coefficients
   (`fit_measured`: fix one variable, average over uniform subnets) with the largest
   `n_per_cell` whose distinct archs still fit the budget (found by dry runs that read nothing).
2. Costs as linear functions of the same 0/1 variables. A chain space's block table gives
   `t[s,b,c]` and the fixed part `T0` exactly; any other cost model (an arch table, NB201 cells)
   gets an additive fit by least squares on every arch of a finite space, or on the table's rows /
   `cost_samples` sampled archs otherwise (cost look-ups are free). The fit's residual is why
   every solution is re-checked against the constraint's own cost model, and why a fitted
   cost's linear bound is loosened by the `relax` quantile of its over-estimates (0.99: on the
   synthetic NB201 tables a bound at the fit's 80% quantile cut off the true optimum, whose
   fitted latency was over the bound; violators of a loose bound are caught by the re-check).
3. Solve max estimated accuracy s.t. every linear cost <= bound: `solver="milp"` (default) is an
   exact 0/1 program (scipy.optimize.milp / HiGHS); `solver="frank-wolfe"` is HardCoRe-NAS's
   block-coordinate Frank-Wolfe on the relaxed simplices, sparsified to a vertex and rounded.
4. Re-check: a decoded arch that violates a constraint under its own cost model gets a no-good
   cut (MILP) and the program is re-solved; after `n_cuts` cuts (or at once for Frank-Wolfe)
   the violated linear bounds are also tightened by the violation. After `max_resolve` tries
   the best feasible arch whose accuracy was read is returned. The result is always feasible.
5. `verify=k` (an addition; default budget // 10, 0 = the paper's BINAS): keep k queries back, read the k
   best feasible solutions of the program (next ones by no-good cuts) and return the most
   accurate feasible arch read, samples included.

NB201 (an enumerable CellGraph space): `strategy="rounds"` (default) is fit -> solve -> read the
top unread solutions -> refit, returning the best feasible cell read (see the class docstring).
`estimator="struct"` (default) is a structure-aware Bayesian linear model, not linear in the 0/1 edge
variables, so its "program" is solved by enumerating the feasible cells; each round reads the
estimator's top cells (`acquisition="greedy"`, default) or one cell per posterior draw
(`acquisition="thompson"`: batch Thompson sampling, `posterior` evidence / loo / bootstrap; on
the development tasks of `bench.experiments.acquisition_dev`, not the boards, every posterior
tried read worse cells than greedy, so greedy stays the default); `estimator="struct-paths"`
adds BANANAS's path indicators of the three-edge path; `estimator="additive"`
keeps BINAS's sum over edges (`pairwise=True` adds pairwise products) and its exact MILP with
no-good cuts for the cells already read. `strategy="single"` is the paper's one-shot procedure
below (steps 1-5), the one chain spaces use.

Program, chain spaces (stage s, slot b, choice c, depth d; docs/methods.md's T = T0 + sum_s [...]):
binary `beta[s,d]` (one-hot depth), binary `a[s,b,c]` (one-hot choice per optional slot), and
`z[s,b,c] = a[s,b,c] * p[s,b]` with `p[s,b] = sum_{d>b} beta[s,d]` (slot b exists). This is the
docs/methods.md's product `beta[s,d] * a[s,b,c]` summed over d (sum_d beta[s,d] sum_{b<d} a t =
sum_b p[s,b] a t), so one product per (s,b,c) instead of one per (s,d,b,c); it is linearised by
z <= a, z >= a + p - 1, sum_c z[s,b,c] = p[s,b] (which implies z <= p). Slots every depth has
(b < min_depth) need no product: z is itself the binary one-hot.
NB201: binary `x[e,o]` one-hot per edge; with pairwise estimator terms, continuous
`y[e,f,i,j] = x[e,i] x[f,j]` (e < f) linearised by the marginal equalities
sum_j y[e,f,i,j] = x[e,i], sum_i y[e,f,i,j] = x[f,j], y >= 0 (exact on binary x and tighter
than the three McCormick inequalities, which they imply).

Reconstructions (details the paper does not give): the sparsify step (fix beta, solve the
alpha LP by dual simplex to get a vertex; then fix alpha and do the same for beta; argmax),
step size gamma_k = 2 / (k + 2), the beta step before the alpha step in each round, NB201's Frank-Wolfe (plain FW on the edge simplices with the
pairwise terms in the gradient), filling the least-squares sample with unconstrained archs when
rejection sampling finds fewer feasible archs than the budget, and the cut-then-tighten rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hwnas.core.capabilities import CellGraph, Chain
from hwnas.predictors.bayes_linear import CellRidgePredictor
from hwnas.predictors.cells import cells, class_rep
from hwnas.search.constraints import BlockTableCost

from .base import Searcher, check_choices, feasible_mask, register_method, sample_feasible
from .enumerated import first_reads, read_in_rounds

_FINITE_MAX = 50_000  # enumerate spaces up to this size for cost fits and the feasibility check


@dataclass
class _Linear:
    """A function in BINAS's bilinear form (BilinearPredictor's coefficient layout)."""

    const: float
    dA: np.ndarray  # NB201 [6, 5]; chain [S, maxd, maxc] (NaN where a stage has no such choice)
    dB: np.ndarray  # chain [S, maxd + 1]; NB201 empty
    dP: np.ndarray | None = None  # NB201 pairwise [6, 6, 5, 5] (upper triangle), None for costs
    exact: bool = False  # True when it is the cost model itself (a chain block table)
    residual: float = 0.0  # max |fit - cost| over the archs it was fitted on
    over: float = 0.0  # `relax` quantile of max(fit - cost, 0) on those archs: slack that keeps feasible archs in


def _design(space, archs) -> np.ndarray:
    """One-hot design of the bilinear form without pairwise terms (NB201 edge x op; chain
    spaces' own encoding: depth one-hot + slot one-hots, zero where a slot is absent)."""
    if isinstance(space, CellGraph):
        A = np.asarray(archs, dtype=np.int64).reshape(-1, 6)
        X = np.zeros((len(A), 6, 5))
        X[np.arange(len(A))[:, None], np.arange(6)[None, :], A] = 1.0
        return X.reshape(len(A), 30)
    return np.asarray([space.encode(a) for a in archs], dtype=np.float64)


def _coef(pred, with_pairwise: bool) -> _Linear:
    dP = getattr(pred, "dP_", None) if with_pairwise else None
    if dP is not None and not np.any(dP):
        dP = None
    return _Linear(float(pred.A0_), np.asarray(pred.dA_, float), np.asarray(pred.dB_, float), dP)


def _bilinear(space, **params):
    from hwnas.predictors.bilinear import BilinearPredictor

    p = BilinearPredictor(space.name, **params)
    p.__dict__["_space_obj"] = space  # the caller's space object, not a fresh registry one
    return p


# ---- programs: variables, structure, decoding -------------------------------------------------
class _NB201Program:
    """x[e,o] one-hot per edge (+ y[e,f,i,j] for pairwise accuracy terms)."""

    def __init__(self, space, pairwise: bool):
        self.space, self.pairwise = space, pairwise
        self.E, self.O = len(space.edges), len(space.ops)  # noqa: E741
        self.iu = list(zip(*np.triu_indices(self.E, 1), strict=True))
        self.n = self.E * self.O + (len(self.iu) * self.O * self.O if pairwise else 0)

    def _x(self, e, o):
        return e * self.O + o

    def _y(self, k, i, j):
        return self.E * self.O + (k * self.O + i) * self.O + j

    def integrality(self):
        out = np.zeros(self.n)
        out[: self.E * self.O] = 1
        return out

    def structure(self):
        rows, lo, hi = [], [], []
        for e in range(self.E):
            r = np.zeros(self.n)
            r[[self._x(e, o) for o in range(self.O)]] = 1
            rows.append(r), lo.append(1.0), hi.append(1.0)
        if self.pairwise:
            for k, (e, f) in enumerate(self.iu):
                for i in range(self.O):
                    r = np.zeros(self.n)
                    r[[self._y(k, i, j) for j in range(self.O)]] = 1
                    r[self._x(e, i)] = -1
                    rows.append(r), lo.append(0.0), hi.append(0.0)
                for j in range(self.O):
                    r = np.zeros(self.n)
                    r[[self._y(k, i, j) for i in range(self.O)]] = 1
                    r[self._x(f, j)] = -1
                    rows.append(r), lo.append(0.0), hi.append(0.0)
        return np.array(rows), np.array(lo), np.array(hi)

    def row(self, f: _Linear) -> tuple[np.ndarray, float]:
        r = np.zeros(self.n)
        r[: self.E * self.O] = np.nan_to_num(f.dA).ravel()
        if f.dP is not None and self.pairwise:
            for k, (e, g) in enumerate(self.iu):
                r[self._y(k, 0, 0): self._y(k, 0, 0) + self.O * self.O] = f.dP[e, g].ravel()
        return r, f.const

    def decode(self, x):
        return tuple(int(np.argmax(x[e * self.O:(e + 1) * self.O])) for e in range(self.E))

    def ones(self, arch) -> list[int]:
        return [self._x(e, o) for e, o in enumerate(arch)]


class _ChainProgram:
    """beta[s,d] (variable-depth stages), a[s,b,c] (optional slots), z[s,b,c] (every slot)."""

    def __init__(self, space: Chain):
        self.space = space
        self.beta, self.a, self.z = {}, {}, {}
        n = 0
        for s, st in enumerate(space.stages):
            if st.min_depth < st.max_depth:
                for d in st.depths:
                    self.beta[s, d], n = n, n + 1
            for b in range(st.max_depth):
                for c in range(len(st.choices)):
                    self.z[s, b, c], n = n, n + 1
                    if b >= st.min_depth:
                        self.a[s, b, c], n = n, n + 1
        self.n = n

    def integrality(self):
        out = np.zeros(self.n)
        out[list(self.beta.values())] = 1
        out[list(self.a.values())] = 1
        for (s, b, _), i in self.z.items():
            if b < self.space.stages[s].min_depth:
                out[i] = 1
        return out

    def _p(self, r, s, b, sign=1.0):
        """Add sign * p[s,b] (= sum_{d>b} beta[s,d]) to row r."""
        for d in self.space.stages[s].depths:
            if d > b:
                r[self.beta[s, d]] += sign

    def structure(self):
        rows, lo, hi = [], [], []

        def add(r, lb, ub):
            rows.append(r), lo.append(lb), hi.append(ub)

        for s, st in enumerate(self.space.stages):
            C = range(len(st.choices))
            if st.min_depth < st.max_depth:
                r = np.zeros(self.n)
                r[[self.beta[s, d] for d in st.depths]] = 1
                add(r, 1.0, 1.0)
            for b in range(st.max_depth):
                r = np.zeros(self.n)
                r[[self.z[s, b, c] for c in C]] = 1
                if b < st.min_depth:
                    add(r, 1.0, 1.0)
                    continue
                self._p(r, s, b, -1.0)  # sum_c z = p
                add(r, 0.0, 0.0)
                r = np.zeros(self.n)
                r[[self.a[s, b, c] for c in C]] = 1
                add(r, 1.0, 1.0)
                for c in C:
                    r = np.zeros(self.n)  # z - a <= 0
                    r[self.z[s, b, c]], r[self.a[s, b, c]] = 1, -1
                    add(r, -np.inf, 0.0)
                    r = np.zeros(self.n)  # z - a - p >= -1
                    r[self.z[s, b, c]], r[self.a[s, b, c]] = 1, -1
                    self._p(r, s, b, -1.0)
                    add(r, -1.0, np.inf)
        return np.array(rows), np.array(lo), np.array(hi)

    def row(self, f: _Linear) -> tuple[np.ndarray, float]:
        r, const = np.zeros(self.n), f.const
        for s, st in enumerate(self.space.stages):
            if st.min_depth < st.max_depth:
                for d in st.depths:
                    r[self.beta[s, d]] = np.nan_to_num(f.dB[s, d])
            else:
                const += float(np.nan_to_num(f.dB[s, st.min_depth]))
        for (s, b, c), i in self.z.items():
            r[i] = np.nan_to_num(f.dA[s, b, c])
        return r, const

    def decode(self, x):
        out = []
        for s, st in enumerate(self.space.stages):
            d = st.min_depth
            if st.min_depth < st.max_depth:
                d = list(st.depths)[int(np.argmax([x[self.beta[s, d]] for d in st.depths]))]
            out.append(tuple(int(np.argmax([x[self.z[s, b, c]] for c in range(len(st.choices))]))
                             for b in range(d)))
        return tuple(out)

    def ones(self, arch) -> list[int]:
        idx = []
        for s, blocks in enumerate(arch):
            if (s, len(blocks)) in self.beta:
                idx.append(self.beta[s, len(blocks)])
            idx.extend(self.z[s, b, c] for b, c in enumerate(blocks))
        return idx


@register_method("binas", supports=("enumerable+cell-graph", "chain"), kind="query", version={"cell-graph": 3})
class BINAS(Searcher):
    """BINAS: bilinear accuracy estimator + linear costs, solved exactly (MILP) or by
    block-coordinate Frank-Wolfe; every answer re-checked against the real cost models.

    On an enumerable cell space (NB201) the default `strategy="rounds"` is fit -> solve -> read
    -> refit: `init_frac` (0.25) of the budget reads uniformly drawn feasible cells, then rounds
    of `batch` (default budget // 10) read the estimator's best unread feasible solutions,
    refitting after each; `local_share` (half) of each round's cells are the estimator's best
    one-edge neighbours of the three best cells read (model-ranked local search) and
    `explore_share` (a third) are drawn uniformly (random interleaving, BOHB's `random_fraction`);
    the best feasible cell read is returned (an unread estimate never is). Version 2 on cell
    spaces (was init_frac 0.5, no local share) and version 3 (the uniform third; version 2 read
    worse cells than random search at low latency bounds, a model confidently wrong about a
    whole region) were chosen on `bench.experiments.acquisition_dev`'s tasks, not the boards'
    cells (results/search/acquisition-dev/; version 3 against 2 over 13 tasks x 24 seeds, paired:
    -0.037 pp mean regret at 100 queries, +0.004 at 200).
    `estimator="struct"` (default) is a structure-aware Bayesian linear model: one-hot of each
    live edge's op on the cell's isomorphism representative (dead edges masked to `none`), the
    products of every pair of edges' one-hots (pairwise terms), live-op counts and a degenerate
    flag; penalty by exact leave-one-out error (`posterior="loo"`, default: ridge) or prior and
    noise by the marginal likelihood (`"evidence"`); `"bootstrap"` draws are refits on resampled
    reads. `acquisition="greedy"` (default) reads, each round, the posterior mean's top cells;
    `"thompson"` one cell per posterior draw (each draw's best unread feasible cell of a new
    isomorphism class). It is not linear in the 0/1 choice variables (liveness and
    isomorphism are not), so its program is solved by enumerating the feasible cells (15,625 at
    most: exact, and cheaper than a MILP). `estimator="additive"` is BINAS's own NB201 form (a sum
    over edges, `pairwise=True` adds the pairwise products), linear in the variables, so each
    round's solutions come from the MILP (`solver="milp"`; read and found cells are cut off by
    no-good cuts) or Frank-Wolfe. `strategy="single"` is the paper's one-shot procedure (fit on
    the whole budget, solve once; `verify` reads the top solutions), the only one on chain spaces.
    """

    def __init__(self, mode: str = "least_squares", solver: str = "milp", pairwise: bool = False,
                 n_per_cell: int | None = None, max_resolve: int = 40, n_cuts: int = 10,
                 fw_iters: int = 30, cost_samples: int = 3000, relax: float = 0.99,
                 verify: int | None = None, time_limit: float = 60.0, strategy: str = "rounds",
                 estimator: str = "struct", init_frac: float = 0.25, batch: int | None = None,
                 acquisition: str = "greedy", posterior: str = "loo", local_share: float = 0.5,
                 explore_share: float = 1 / 3):
        self.mode, self.solver, self.pairwise, self.n_per_cell = mode, solver, pairwise, n_per_cell
        self.max_resolve, self.n_cuts, self.fw_iters = max_resolve, n_cuts, fw_iters
        self.cost_samples, self.relax, self.verify, self.time_limit = cost_samples, relax, verify, time_limit
        self.strategy, self.estimator, self.init_frac, self.batch = strategy, estimator, init_frac, batch
        self.acquisition, self.posterior, self.local_share = acquisition, posterior, local_share
        self.explore_share = explore_share

    # ---- the search -------------------------------------------------------------------------
    def _search(self, space, accuracy, constraints, budget, rng):
        from threadpoolctl import threadpool_limits

        # the linear algebra here is tiny (15,625 x 31 at most): multi-threaded BLAS only fights
        # other processes for the cores (measured 1.6 ms single-threaded vs 1 s with 2 threads
        # under load for the cost fit's X^T X)
        with threadpool_limits(limits=1, user_api="blas"):
            check_choices("binas", self, strategy=("rounds", "single"),
                          estimator=("struct", "struct-paths", "additive"), acquisition=("thompson", "greedy"),
                          posterior=("evidence", "loo", "bootstrap"), mode=("least_squares", "measured"),
                          solver=("milp", "frank-wolfe"))
            if self.verify is not None and not 0 <= self.verify < budget:
                raise ValueError(f"binas verify={self.verify} must be >= 0 and below the budget ({budget})")
            if self.strategy == "rounds" and isinstance(space, CellGraph) and cells(space) is not None \
                    and self.mode == "least_squares":
                return self._search_rounds(space, accuracy, constraints, budget, rng)
            return self._search_1(space, accuracy, constraints, budget, rng)

    def _search_rounds(self, space, accuracy, constraints, budget, rng):
        if self.estimator in ("struct", "struct-paths"):
            model = CellRidgePredictor(space, features=self.estimator, prior=self.posterior)
            rep = class_rep(space)

            def fit_score(read, y, feas, k):  # isomorphic cells share a feature row: score each class once
                u, inv = np.unique(rep[feas], return_inverse=True)
                model.fit_cells(read, y)
                if self.acquisition == "greedy":
                    return model.predict_cells(u)[inv]
                return model.predict_cells(u, model.sample(rng, k))[:, inv]

            arch, best, how = read_in_rounds(space, accuracy, constraints, budget, rng, fit_score,
                                             self.init_frac, self.batch, self.local_share,
                                             explore_share=self.explore_share)
            return arch, best, f"struct ridge estimator, solved by enumeration: {how}"
        cs, ok, feas, read = first_reads(space, constraints, rng, self.init_frac, budget)
        n0 = len(read)
        y = list(accuracy.query([cs.archs[i] for i in read]))
        batch = self.batch or max(1, budget // 10)
        costs, _ = self._costs_enumerated(space, constraints, cs, rng)
        prog = _NB201Program(space, pairwise=self.pairwise)
        rounds = 0
        while len(read) < budget:
            k = min(batch, budget - len(read))
            pred = _bilinear(space, pairwise=self.pairwise).fit([cs.archs[i] for i in read], np.array(y))
            if self.solver == "milp":
                acc = _coef(pred, with_pairwise=self.pairwise)
                sols, _ = self._solve_milp(space, prog, acc, costs, constraints, k=k,
                                           exclude=[cs.archs[i] for i in read])
            else:
                sols = self._fw_top(space, pred, ok, read, k)
            have = set(read)
            new = [int(cs.pos[a]) for a in sols if int(cs.pos[a]) not in have]
            if not new:  # the model has nothing new to propose: read uniformly drawn unread cells
                left = np.setdiff1d(feas, np.array(read))
                if not len(left):
                    break
                new = list(rng.choice(left, size=min(k, len(left)), replace=False))
            y += list(accuracy.query([cs.archs[i] for i in new]))
            read += [int(i) for i in new]
            rounds += 1
        best = read[int(np.argmax(y))]
        how = (f"{n0} uniform feasible cells, then {rounds} rounds of up to {batch} of the additive "
               f"estimator's best unread feasible cells ({'MILP' if self.solver == 'milp' else 'enumerated'}); best read")
        return cs.archs[best], float(np.max(y)), how

    def _fw_top(self, space, pred, ok, read, k):
        """The additive estimator's k best unread feasible cells by enumeration (solver other
        than milp: Frank-Wolfe gives one vertex per solve, enumeration is exact and cheaper)."""
        cs = cells(space)
        score = pred.predict(cs.archs)
        score = np.where(ok, score, -np.inf)
        score[read] = -np.inf
        top = [cs.archs[i] for i in np.argsort(-score)[:k] if np.isfinite(score[i])]
        return top

    def _costs_enumerated(self, space, constraints, cs, rng):
        all_vals = [c.values(cs.archs) for c in constraints]
        return [self._linear_cost(space, c, cs.archs, rng, v) for c, v in zip(constraints, all_vals, strict=True)], all_vals

    def _search_1(self, space, accuracy, constraints, budget, rng):
        verify = self.verify if self.verify is not None else (max(1, budget // 10) if budget >= 4 else 0)
        if not 0 <= verify < budget:
            raise ValueError(f"binas verify={verify} must be >= 0 and below the budget ({budget})")
        nb201 = isinstance(space, CellGraph)
        if not nb201 and not isinstance(space, Chain):
            raise ValueError(f"binas runs on nb201 and chain spaces, not {space.name!r}")
        all_archs = self._enumerate(space)
        all_vals = None if all_archs is None else [c.values(all_archs) for c in constraints]
        costs = [self._linear_cost(space, c, all_archs, rng, None if all_vals is None else v)
                 for c, v in zip(constraints, all_vals or [None] * len(constraints), strict=True)]
        self._check_feasible(space, constraints, costs, all_vals)

        pred, queried = self._estimator(space, accuracy, constraints, budget - verify, rng)
        acc = _coef(pred, with_pairwise=nb201 and self.pairwise)
        if nb201:
            prog = _NB201Program(space, pairwise=acc.dP is not None)
        else:
            prog = _ChainProgram(space)
        if not nb201 and all_archs is not None:  # a finite pool of a chain space: solve by enumeration
            archs, how = self._top_enumerated(pred, all_archs, all_vals, constraints, k=max(1, verify))
        elif self.solver == "milp":
            archs, how = self._solve_milp(space, prog, acc, costs, constraints, k=max(1, verify))
        else:
            archs, how = self._solve_fw(space, prog, acc, costs, constraints)
        if archs and self.final_reads_ is not None:  # the board's rule: its own top-1 is the solver's
            self.model_pick_ = (archs[0], float(pred.predict([archs[0]])[0]))
        if archs and verify:
            read = archs[:verify]  # the estimator left at least `verify` queries
            queried = queried + list(zip(read, accuracy.query(read), strict=True))
            arch = _best_read(constraints, queried)
            how = f"{how}; read {len(read)} solution(s), returned the best feasible arch read"
        elif archs:
            arch = archs[0]
        else:
            arch, how2 = self._fallback(space, constraints, pred, queried, rng)
            how = f"{how}; {how2}"
        fit = ", ".join(f"{c.constraint.metric}: {'exact table' if f.exact else f'additive fit, max residual {f.residual:.3g}'}"
                        for c, f in zip(constraints, costs, strict=True))
        note = f"{self.solver}: {how}; estimator {pred.mode_} on {pred.n_train_} archs; {fit}"
        return arch, float(pred.predict([arch])[0]), note

    @staticmethod
    def _top_enumerated(pred, archs, vals, constraints, k: int):
        """The estimator's k best archs among the feasible ones of a finite chain space (a pool):
        the program's solutions must be members, and enumerating them is exact."""
        ok = np.ones(len(archs), dtype=bool)
        for c, v in zip(constraints, vals, strict=True):
            ok &= np.asarray(c.constraint.satisfied(np.asarray(v)), dtype=bool)
        idx = np.flatnonzero(ok)
        if not len(idx):
            return [], "no feasible arch in the enumerated space"
        score = pred.predict([archs[i] for i in idx])
        top = idx[np.argsort(-score, kind="stable")[:k]]
        return [archs[i] for i in top], f"enumerated {len(idx)} feasible archs"

    # ---- costs --------------------------------------------------------------------------------
    def _enumerate(self, space):
        try:
            if space.size() <= _FINITE_MAX:
                return list(space.iter_all())
        except NotImplementedError:
            pass
        return None

    def _linear_cost(self, space, bc, all_archs, rng, all_vals=None) -> _Linear:
        cost = bc.cost
        if isinstance(cost, BlockTableCost) and isinstance(space, Chain):
            vals, fixed = cost.block_costs()
            S = len(space.stages)
            maxd = max(st.max_depth for st in space.stages)
            maxc = max(len(st.choices) for st in space.stages)
            t = np.full((S, maxd, maxc), np.nan)
            for s, st in enumerate(space.stages):
                for b in range(st.max_depth):
                    for c in range(len(st.choices)):
                        key = space.block_spec(s, b == 0, c).key
                        if key not in vals:
                            raise LookupError(f"{cost.description}: no row for block {key!r}; profile the space first")
                        t[s, b, c] = vals[key]
            return _Linear(float(fixed), t, np.zeros((S, maxd + 1)), exact=True)
        y = None
        if all_archs is not None:
            archs, y = all_archs, all_vals
        elif hasattr(cost, "_values"):  # an arch table of an infinite space: its own rows
            keys = list(cost._values)
            if len(keys) > self.cost_samples:
                keys = [keys[i] for i in rng.choice(len(keys), self.cost_samples, replace=False)]
            archs = [space.from_str(k) for k in keys]
        else:
            archs = [space.sample(rng) for _ in range(self.cost_samples)]
        y = np.asarray(bc.values(archs) if y is None else y, dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < 2:
            raise ValueError(f"constraint {bc.constraint.text!r}: fewer than 2 archs with a finite cost to fit on")
        X = _design(space, [a for a, k in zip(archs, ok, strict=True) if k])
        X1 = np.column_stack([np.ones(len(X)), X])
        # minimum-norm least squares via the (small) normal equations; the one-hots are collinear
        coef = np.linalg.pinv(X1.T @ X1, rcond=1e-10, hermitian=True) @ (X1.T @ y[ok])
        p = _bilinear(space, pairwise=False)
        p._unpack(float(coef[0]), coef[1:])  # the predictor's own coefficient layout
        f = _coef(p, with_pairwise=False)
        err = X1 @ coef - y[ok]
        f.residual, f.over = float(np.max(np.abs(err))), float(np.quantile(np.maximum(err, 0.0), self.relax))
        return f

    def _check_feasible(self, space, constraints, costs, all_vals) -> None:
        """A clear error, before any query, when no arch can meet the constraints."""
        texts = ", ".join(c.constraint.text for c in constraints)
        if not constraints:
            return
        if all_vals is not None:
            ok = np.ones(len(all_vals[0]), dtype=bool)
            for c, v in zip(constraints, all_vals, strict=True):
                ok &= np.asarray(c.constraint.satisfied(v), dtype=bool)
            if not ok.any():
                mins = ", ".join(f"{c.constraint.metric} >= {np.nanmin(v):.4g}" for c, v in zip(constraints, all_vals, strict=True))
                raise ValueError(f"no arch of {space.name} meets {texts}: the cheapest archs have {mins}; loosen the bound")
            return
        for c, f in zip(constraints, costs, strict=True):
            if f.exact:
                low = f.const
                for s, st in enumerate(space.stages):
                    low += min(np.nan_to_num(f.dB[s, d]) + sum(np.nanmin(f.dA[s, b, :len(st.choices)]) for b in range(d))
                               for d in st.depths)
                if not c.constraint.satisfied(low):
                    raise ValueError(f"no arch of {space.name} meets {c.constraint.text!r}: the cheapest network "
                                     f"costs {low:.4g} ({c.constraint.metric}); loosen the bound")

    # ---- accuracy estimator -------------------------------------------------------------------
    def _estimator(self, space, accuracy, constraints, budget, rng):
        if self.mode == "least_squares":
            archs = sample_feasible(space, constraints, rng, budget, key=accuracy.key)  # one per class (the protocol's)
            if len(archs) < budget:  # rejection ran dry: fill with unconstrained archs
                seen = {accuracy.key(a) for a in archs}
                for _ in range(50 * budget):
                    a = space.sample(rng)
                    if accuracy.key(a) not in seen:
                        seen.add(accuracy.key(a))
                        archs.append(a)
                        if len(archs) == budget:
                            break
            if len(archs) < 2:
                raise ValueError(f"binas least_squares needs a budget of at least 2 queries, got {budget}")
            y = accuracy.query(archs)
            pred = _bilinear(space, pairwise=self.pairwise).fit(archs, y)
            return pred, list(zip(archs, y, strict=True))
        n, seed = self._cells_within_budget(space, budget, rng)
        seen: dict[str, tuple] = {}

        def evaluate(archs):
            vals = accuracy.query(archs)
            for a, v in zip(archs, vals, strict=True):
                seen[space.to_str(a)] = (a, float(v))
            return vals

        pred = _bilinear(space).fit_measured(space, evaluate, n_per_cell=n, rng=seed)
        return pred, list(seen.values())

    def _cells_within_budget(self, space, budget, rng) -> tuple[int, int]:
        """Largest n_per_cell whose distinct archs fit the budget (fit_measured evaluates
        n_per_cell * (1 + cells) archs, duplicates free), by dry runs with the same seed."""
        seed = int(rng.integers(2**31))

        def distinct(n):
            keys: set[str] = set()

            def record(archs):
                keys.update(space.to_str(a) for a in archs)
                return np.zeros(len(archs))

            _bilinear(space).fit_measured(space, record, n_per_cell=n, rng=seed)
            return len(keys)

        if self.n_per_cell is not None:
            k = distinct(self.n_per_cell)
            if k > budget:
                raise ValueError(f"binas measured: n_per_cell={self.n_per_cell} needs {k} distinct archs, "
                                 f"over the budget of {budget}")
            return self.n_per_cell, seed
        k = distinct(1)
        if k > budget:
            raise ValueError(f"binas measured on {space.name} needs a budget of at least {k} queries "
                             f"(n_per_cell=1), got {budget}; raise it or use mode='least_squares'")
        n = 1
        while n < budget and distinct(n + 1) <= budget:
            n += 1
        return n, seed

    # ---- solvers ------------------------------------------------------------------------------
    def _solve_milp(self, space, prog, acc: _Linear, costs, constraints, k: int = 1, exclude=()):
        """Up to k feasible archs, best estimate first (each found one is cut off to find the
        next; the archs in `exclude`, e.g. those already read, are cut off from the start)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        c_obj, _ = prog.row(acc)
        S_A, S_lo, S_hi = prog.structure()
        cost_rows = [prog.row(f) for f in costs]
        bounds = self._bounds(costs, constraints)
        shift = np.zeros(len(constraints))
        cuts: list[np.ndarray] = []
        cut_hi: list[float] = []
        for a in exclude:
            ones = prog.ones(a)
            r = np.zeros(prog.n)
            r[ones] = 1
            cuts.append(r), cut_hi.append(len(ones) - 1.0)
        integrality = prog.integrality()
        found: list = []
        it = 0
        for _ in range(self.max_resolve + k):
            A, lo, hi = [S_A], [S_lo], [S_hi]
            for (r, k0), b, sh in zip(cost_rows, bounds, shift, strict=True):
                A.append(r[None]), lo.append([-np.inf]), hi.append([b - k0 - sh])
            if cuts:
                A.append(np.array(cuts)), lo.append(np.full(len(cuts), -np.inf)), hi.append(np.array(cut_hi))
            res = milp(-c_obj, constraints=LinearConstraint(np.vstack(A), np.concatenate(lo), np.concatenate(hi)),
                       integrality=integrality, bounds=Bounds(0, 1),
                       options={"time_limit": self.time_limit, "mip_rel_gap": 1e-7, "disp": False})
            if res.x is None:
                if it == 0 and not found and all(f.exact for f in costs):
                    texts = ", ".join(c.constraint.text for c in constraints)
                    raise ValueError(f"no arch of {space.name} meets {texts} together; loosen a bound")
                return found, f"{len(found)} solution(s), program infeasible after {it} re-solves ({res.message})"
            arch = space.validate(prog.decode(np.round(res.x)))
            vals, ok = _recheck(constraints, arch)
            ones = prog.ones(arch)
            r = np.zeros(prog.n)
            r[ones] = 1
            cuts.append(r), cut_hi.append(len(ones) - 1.0)
            if all(ok):
                found.append(arch)
                if len(found) == k:
                    return found, f"{it} re-solves"
                continue
            it += 1
            if it >= self.n_cuts:
                shift += _violation(constraints, vals, ok)
            if it > self.max_resolve:
                break
        return found, f"{len(found)} solution(s) after {it} re-solves"

    def _solve_fw(self, space, prog, acc: _Linear, costs, constraints):
        bounds = self._bounds(costs, constraints)
        shift = np.zeros(len(constraints))
        fw = _fw_nb201 if isinstance(prog, _NB201Program) else _fw_chain
        for it in range(self.max_resolve + 1):
            arch = fw(space, acc, costs, bounds - shift, self.fw_iters)
            if arch is None:
                return [], f"the smallest network breaks the (tightened) linear bounds after {it} re-solves"
            arch = space.validate(arch)
            vals, ok = _recheck(constraints, arch)
            if ok.all():
                return [arch], f"{it} re-solves"
            shift += _violation(constraints, vals, ok) + np.where(ok, 0.0, 1e-6 * np.abs(bounds))
        return [], f"no feasible rounding after {self.max_resolve} re-solves"

    def _bounds(self, costs, constraints) -> np.ndarray:
        """Right-hand sides of the linear cost rows: each bound, loosened by a fitted cost's
        over-estimate quantile (`relax`), so few archs that meet the bound are cut off."""
        return np.array([_eff_bound(c) + f.over
                         for c, f in zip(constraints, costs, strict=True)])

    def _fallback(self, space, constraints, pred, queried, rng):
        best = _best_read(constraints, queried)
        if best is not None:
            return best, "fell back to the best feasible arch read"
        cand = sample_feasible(space, constraints, rng, 256)
        if not cand:
            texts = ", ".join(c.constraint.text for c in constraints)
            raise ValueError(f"binas found no arch of {space.name} that meets {texts}")
        return cand[int(np.argmax(pred.predict(cand)))], "fell back to the best estimated of 256 feasible samples"


def _recheck(constraints, arch) -> tuple[np.ndarray, np.ndarray]:
    """Each constraint's own cost of `arch` and whether it meets it; an arch a table has no row
    for (an arch table of an infinite space) counts as not meeting it, with cost NaN."""
    vals = np.full(len(constraints), np.nan)
    for i, c in enumerate(constraints):
        try:
            vals[i] = float(c.values([arch])[0])
        except LookupError:
            pass
    ok = np.array([bool(np.isfinite(v) and c.constraint.satisfied(v)) for c, v in zip(constraints, vals, strict=True)],
                  dtype=bool)
    return vals, ok


def _violation(constraints, vals, ok) -> np.ndarray:
    """How far each violated constraint is over its bound (0 where met or unknown)."""
    over = vals - np.array([c.constraint.bound for c in constraints])
    return np.where(ok | ~np.isfinite(over), 0.0, over)


def _best_read(constraints, queried):
    """The most accurate feasible arch among (arch, accuracy) pairs read; None if none."""
    ok = feasible_mask(constraints, [a for a, _ in queried]) if queried else np.zeros(0, bool)
    if not ok.any():
        return None
    return max((q for q, k in zip(queried, ok, strict=True) if k), key=lambda q: q[1])[0]


def _eff_bound(c) -> float:
    """The bound the linear programs use: a hair inside, so float sums and HiGHS tolerances
    do not decide strictness (the exact re-check does)."""
    b = c.constraint.bound
    return b - 1e-9 * max(1.0, abs(b))


# ---- Frank-Wolfe ------------------------------------------------------------------------------
def _lp_vertex(obj, A_ub, b_ub, A_eq, b_eq):
    """max obj @ x over [0,1] boxes by dual simplex (a basic solution is a vertex); None if infeasible."""
    from scipy.optimize import linprog

    res = linprog(-obj, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=(0, 1), method="highs-ds")
    return res.x if res.status == 0 else None


def _fw_nb201(space, acc: _Linear, costs, bounds, iters):
    E, O = 6, 5  # noqa: E741
    T = np.array([np.nan_to_num(f.dA).ravel() for f in costs])
    rhs = bounds - np.array([f.const for f in costs])
    A_eq = np.kron(np.eye(E), np.ones((1, O)))
    score = (T / np.maximum(np.abs(rhs), 1e-12)[:, None]).sum(0).reshape(E, O)
    x = np.zeros((E, O))
    x[np.arange(E), score.argmin(1)] = 1.0  # the smallest network under the linear costs
    if np.any(T @ x.ravel() > rhs + 1e-9):
        return None
    dA = np.nan_to_num(acc.dA)

    def grad(x):
        g = dA.copy()
        if acc.dP is not None:
            for e in range(E):
                for f in range(e + 1, E):
                    g[e] += acc.dP[e, f] @ x[f]
                    g[f] += x[e] @ acc.dP[e, f]
        return g.ravel()

    for k in range(iters):
        s = _lp_vertex(grad(x), T, rhs, A_eq, np.ones(E))
        if s is None:
            break
        x = x + 2.0 / (k + 2) * (s.reshape(E, O) - x)
    v = _lp_vertex(grad(x), T, rhs, A_eq, np.ones(E))  # sparsify: a vertex near the iterate's gradient
    if v is not None:
        x = v.reshape(E, O)
    return tuple(int(o) for o in x.argmax(1))


def _fw_chain(space, acc: _Linear, costs, bounds, iters):
    """Block-coordinate Frank-Wolfe over alpha[s,b,c] (slot simplices) and beta[s,d] (depth
    simplices): with one block fixed, accuracy and every cost are linear in the other."""
    stages = space.stages
    slots = [(s, b) for s, st in enumerate(stages) for b in range(st.max_depth)]
    a_idx, n_a = {}, 0
    for s, b in slots:
        for c in range(len(stages[s].choices)):
            a_idx[s, b, c], n_a = n_a, n_a + 1
    var = [s for s, st in enumerate(stages) if st.min_depth < st.max_depth]
    b_idx, n_b = {}, 0
    for s in var:
        for d in stages[s].depths:
            b_idx[s, d], n_b = n_b, n_b + 1
    funcs = [acc, *costs]
    dA = [np.nan_to_num(f.dA) for f in funcs]
    dB = [np.nan_to_num(f.dB) for f in funcs]

    def presence(beta):
        return {(s, b): 1.0 if b < stages[s].min_depth else sum(beta[b_idx[s, d]] for d in stages[s].depths if d > b)
                for s, b in slots}

    def alpha_rows(beta):  # per function: coefficient on alpha, and the constant
        P = presence(beta)
        out = []
        for k in range(len(funcs)):
            r = np.zeros(n_a)
            for (s, b, c), i in a_idx.items():
                r[i] = P[s, b] * dA[k][s, b, c]
            const = funcs[k].const + sum(dB[k][s, stages[s].min_depth] for s in range(len(stages)) if s not in var)
            const += sum(beta[i] * dB[k][s, d] for (s, d), i in b_idx.items())
            out.append((r, const))
        return out

    def beta_rows(alpha):
        out = []
        for k in range(len(funcs)):
            v = {(s, b): sum(alpha[a_idx[s, b, c]] * dA[k][s, b, c] for c in range(len(stages[s].choices)))
                 for s, b in slots}
            r = np.zeros(n_b)
            const = funcs[k].const + sum(dB[k][s, stages[s].min_depth] for s in range(len(stages)) if s not in var)
            for s, b in slots:
                if b < stages[s].min_depth:
                    const += v[s, b]
            for (s, d), i in b_idx.items():
                r[i] = dB[k][s, d] + sum(v[s, b] for b in range(stages[s].min_depth, d))
            out.append((r, const))
        return out

    eq_a = np.zeros((len(slots), n_a))
    for j, (s, b) in enumerate(slots):
        eq_a[j, [a_idx[s, b, c] for c in range(len(stages[s].choices))]] = 1
    eq_b = np.zeros((len(var), n_b))
    for j, s in enumerate(var):
        eq_b[j, [b_idx[s, d] for d in stages[s].depths]] = 1

    def lp(rows, eq, x_len):
        (obj, _), *cons = rows
        A = np.array([r for r, _ in cons]).reshape(len(cons), x_len)
        b = np.array([bd - k0 for (_, k0), bd in zip(cons, bounds, strict=True)])
        return _lp_vertex(obj, A, b, eq, np.ones(len(eq)))

    # start at the smallest network under the linear costs (min depth, cheapest choice per slot)
    scale = np.array([max(abs(bd - f.const), 1e-12) for f, bd in zip(costs, bounds, strict=True)])
    alpha, beta = np.zeros(n_a), np.zeros(n_b)
    for s, b in slots:
        cc = [sum(dA[1 + k][s, b, c] / scale[k] for k in range(len(costs))) for c in range(len(stages[s].choices))]
        alpha[a_idx[s, b, int(np.argmin(cc))]] = 1
    for s in var:
        beta[b_idx[s, stages[s].min_depth]] = 1
    start = [r @ alpha + k0 for r, k0 in alpha_rows(beta)[1:]]
    if any(v > bd + 1e-9 for v, bd in zip(start, bounds, strict=True)):
        return None
    # beta first: at the start every optional slot is absent, so an alpha step would see no
    # gain there and (gamma_0 = 1) replace those slots' choices by an arbitrary LP vertex; the
    # beta step sees the start's cheapest choices instead (HardCoRe-NAS's default order too)
    for k in range(iters):
        gamma = 2.0 / (k + 2)
        if n_b:
            s_b = lp(beta_rows(alpha), eq_b, n_b)
            if s_b is not None:
                beta = beta + gamma * (s_b - beta)
        s_a = lp(alpha_rows(beta), eq_a, n_a)
        if s_a is not None:
            alpha = alpha + gamma * (s_a - alpha)
    # sparsify: vertex in alpha with beta fixed, then vertex in beta with that alpha fixed; argmax
    v = lp(alpha_rows(beta), eq_a, n_a)
    if v is not None:
        alpha = v
    if n_b:
        v = lp(beta_rows(alpha), eq_b, n_b)
        if v is not None:
            beta = v
    arch = []
    for s, st in enumerate(stages):
        d = st.min_depth if s not in var else list(st.depths)[int(np.argmax([beta[b_idx[s, d]] for d in st.depths]))]
        arch.append(tuple(int(np.argmax([alpha[a_idx[s, b, c]] for c in range(len(st.choices))])) for b in range(d)))
    return tuple(arch)

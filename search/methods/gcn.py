"""GCN fitting of the weight-sharing search space (METHODS.md section 2), as a search method.

Idea (Chen et al., AAAI 2021): a supernet's accuracy of a subnet is its true accuracy plus a
random error from the mismatched shared weights; a GCN fitted on many evaluated subnets averages
that error out and becomes a look-up table of the whole space. A new hardware constraint then
needs only a new query of the fitted GCN, not a new search.

Enumerable cell spaces (NB201, `cell_model="fast"`, the default): refine on the reads, score the
whole space, read the top unread predictions, return the best read. `init_frac` (0.25; 0.5 in
version 1: on `bench.experiments.acquisition_dev`'s tasks, not the boards, 0.25 lowered the mean
regret at 100 queries by 0.058 pp, paired 95% CI [0.010, 0.106], and left 200 queries unchanged;
`local_share`, BINAS's model-ranked local search, did not help the GCN there) of the
budget reads uniformly drawn feasible cells; then rounds of `batch` (budget // 10) read unread
feasible cells (one per isomorphism class), a third of them drawn uniformly (`explore_share`,
random interleaving, since version 3, chosen on the same development tasks: -0.023 pp mean
regret at 100 queries, 0.000 at 200, paired against version 2 over 13 tasks x 24 seeds) and the rest chosen
by the GCN, and the GCN is refitted (warm-started) on everything read (`enumerated.read_in_rounds`). Which cells: `acquisition="greedy"`
(default) reads the GCN's top predictions; `acquisition="thompson"` is batch Thompson sampling
with a neural-linear posterior (DNGO, Snoek et al. 2015): a Bayesian linear head
(`predictors.bayes_linear.BayesianLinear`) on the GCN's
pooled embeddings (`posterior="evidence"`: marginal-likelihood hyperparameters; `"loo"`,
`"bootstrap"`) gives one posterior draw per cell of the batch, each draw reading its best cell.
On the development tasks (`bench.experiments.acquisition_dev`, not the boards) that posterior was
so narrow that Thompson sampling read what greedy reads (equal mean regret in 5 of 6 task x
budget cells), so greedy stays the default. The GCN is
`predictors.gcn.CellGCNPredictor`: two graph convolutions of width `cell_hidden` over op-on-node graphs of every
cell, built once per process; a node's features are its op, its edge position and input/output
flags, and `none` / dead edges are cut out of the adjacency, so isomorphic cells share a graph
(each class is scored once). Plain numpy with written-out gradients: a 200-query search costs
about half a CPU second. The result is the best feasible cell read, never an unread prediction
(the Searcher base enforces that for every query-based method); beside it each search reports
the GCN's own pick, its top-ranked feasible cell after a last refit on everything read
(`SearchResult.model_arch`, read or not: the paper's denoised choice), which the weight-sharing
board scores as a second row. Reconstruction: the paper
samples uniformly and gives no query budget; the rounds are this suite's.

Other spaces (chain spaces) use the older two-step procedure, which a leaderboard can call apart
(one fit, several constraints):
1. `fit_space(space, accuracy, budget, rng, constraints=())` spends the accuracy budget and
   returns the fitted `predictors.gcn.GCNPredictor`: `1 - refine` of the budget uniform feasible
   archs, then `rounds` rounds of the GCN's top unqueried archs (`ranked_under`), refit after each.
2. `best_under(space, predictor, constraints, rng)` is the look-up: (arch, predicted accuracy) of
   the feasible arch the GCN scores highest; it reads no accuracy. Chain spaces are too large to
   enumerate: an elitist evolutionary search uses the GCN as its free scorer under the table
   constraint (the paper goes segment by segment; the evolution is a reconstruction).
`pick="predicted"` returns the GCN's argmax (read by the base if budget is left, else replaced by
the best read); `pick="queried"` the best feasible arch queried. `encoding="struct"` feeds live-
masked isomorphism representatives to the predictor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hwnas.core.capabilities import CellGraph, Chain, Enumerable
from hwnas.predictors.bayes_linear import BayesianLinear
from hwnas.predictors.cells import cells, class_rep
from hwnas.predictors.gcn import CellGCNPredictor

from .base import Searcher, cheapest, check_choices, feasible_mask, register_method, sample_feasible
from .enumerated import feasible_all, read_in_rounds


@register_method("gcn", supports=("enumerable+cell-graph", "chain"), kind="query", version={"cell-graph": 3})
class GCNSearch(Searcher):
    """Fit a GCN on the queried archs, then take its argmax under the constraints.

    `epochs`, `hidden`, `layers`, `rank_weight`, `max_steps`, `encoding` go to the GCN predictor;
    `max_steps` caps each fit's optimiser steps, so a search does at most (1 + rounds) x max_steps
    (a few seconds per fit of 100-500 archs on one CPU core). `population` ... `max_redraws` drive
    the evolution on chain spaces (defaults as docs/methods.md gives DI-NAS's: population 50, top 10
    kept, 25 mutations p=0.1 + 25 crossovers, 20 generations); spaces of at most
    `enumerate_max` archs are enumerated when they can be listed (`Enumerable`).
    """

    def __init__(self, refine: float = 0.5, epochs: int = 500, hidden: int = 64, layers: int = 3,
                 rank_weight: float = 0.5, max_steps: int = 1500, population: int = 50,
                 parents: int = 10, mutations: int = 25, crossovers: int = 25, generations: int = 20,
                 mutation_p: float = 0.1, max_redraws: int = 20, enumerate_max: int = 200_000,
                 encoding: str = "struct", rounds: int = 3, pick: str = "predicted",
                 cell_model: str = "fast", cell_hidden: int = 32, cell_epochs: int = 100,
                 cell_refit_epochs: int = 30, init_frac: float = 0.25, batch: int | None = None,
                 threads: int = 1, acquisition: str = "greedy", posterior: str = "evidence",
                 local_share: float = 0.0, explore_share: float = 1 / 3):
        self.refine, self.epochs, self.hidden, self.layers = refine, epochs, hidden, layers
        self.rank_weight, self.max_steps = rank_weight, max_steps
        self.population, self.parents, self.mutations, self.crossovers = population, parents, mutations, crossovers
        self.generations, self.mutation_p, self.max_redraws = generations, mutation_p, max_redraws
        self.enumerate_max, self.encoding, self.rounds, self.pick = enumerate_max, encoding, rounds, pick
        self.cell_model, self.cell_hidden = cell_model, cell_hidden
        self.cell_epochs, self.cell_refit_epochs = cell_epochs, cell_refit_epochs
        self.init_frac, self.batch, self.threads = init_frac, batch, threads
        self.acquisition, self.posterior, self.local_share = acquisition, posterior, local_share
        self.explore_share = explore_share

    def _search_cells(self, space, accuracy, constraints, budget, rng):
        """Enumerable cell spaces (NB201): refine on the reads, score the whole space, read the
        top unread predictions, return the best read (`enumerated.read_in_rounds`). The GCN is
        `predictors.gcn.CellGCNPredictor` on graph tensors of every cell built once per process (nodes know
        their op, edge position and whether they are live), warm-started between rounds."""
        from threadpoolctl import threadpool_limits

        rep = class_rep(space)

        with threadpool_limits(limits=self.threads, user_api="blas"):
            model = CellGCNPredictor(space, seed=int(rng.integers(2**31)), hidden=self.cell_hidden,
                                     epochs=self.cell_epochs, refit_epochs=self.cell_refit_epochs)

            def fit_score(read, y, feas, k):  # isomorphic cells share a graph: score each class once
                u, inv = np.unique(rep[feas], return_inverse=True)
                pred, G = model.fit_cells(read, y).predict_cells(u, embed=True)
                if self.acquisition == "greedy":
                    return pred[inv]
                # neural-linear Thompson sampling: a Bayesian linear head on the GCN's pooled
                # embeddings gives the posterior; each draw moves the GCN's own prediction by
                # its deviation from the posterior mean
                post = BayesianLinear(self.posterior, alphas=(0.01, 0.1, 1.0, 10.0, 100.0))
                post.fit(model.predict_cells(read, embed=True)[1], y)
                W = post.sample(rng, k)
                return (pred[None, :] + (G @ (W - post.coef_[:, None])).T)[:, inv]

            arch, best, how = read_in_rounds(space, accuracy, constraints, budget, rng, fit_score,
                                             self.init_frac, self.batch, self.local_share,
                                             explore_share=self.explore_share)
            self.model_pick_ = self._fitted_top(space, accuracy, constraints, model, rep)
        return arch, best, f"GCN (2x{self.cell_hidden}, warm-started refits): {how}"

    @staticmethod
    def _fitted_top(space, accuracy, constraints, model, rep) -> tuple[object, float]:
        """(cell, predicted accuracy) the GCN, refitted on everything read, ranks first among the
        feasible cells: the paper's denoised choice, read or not (the search returns its best read;
        the board scores this pick beside it). Reads nothing."""
        cs = cells(space)
        feas = np.flatnonzero(feasible_all(space, constraints))
        read = [s for s, _ in accuracy.history()]
        idx = cs.index([space.from_str(s) for s in read])
        model.fit_cells(idx, np.array([v for _, v in accuracy.history()]))
        u, inv = np.unique(rep[feas], return_inverse=True)
        pred = model.predict_cells(u)[inv]
        j = int(np.argmax(pred))
        return cs.archs[feas[j]], float(pred[j])

    # ---- the Searcher entry point ----------------------------------------------------------
    def _search(self, space, accuracy, constraints, budget, rng):
        check_choices("gcn", self, pick=("predicted", "queried"), acquisition=("thompson", "greedy"),
                      posterior=("evidence", "loo", "bootstrap"), cell_model=("fast", "predictor"))
        if isinstance(space, CellGraph) and cells(space) is not None and self.cell_model == "fast":
            if not feasible_all(space, constraints).any():
                return cheapest(space, constraints, rng), None, "no feasible arch in the space; returned the cheapest"
            return self._search_cells(space, accuracy, constraints, budget, rng)
        predictor, queried = self._fit(space, accuracy, budget, rng, constraints)
        ok = feasible_mask(constraints, [a for a, _ in queried]) if queried else np.zeros(0, bool)
        if predictor is not None and self.pick == "queried" and ok.any():
            arch = max((q for q, good in zip(queried, ok, strict=True) if good), key=lambda q: q[1])[0]
            return arch, float(predictor.predict([arch])[0]), f"best queried arch; GCN fitted on {len(queried)} archs"
        if predictor is not None:
            top = self.ranked_under(space, predictor, constraints, rng, k=1)
            if top:
                arch, pred = top[0]
                if feasible_mask(constraints, [arch])[0]:
                    return arch, pred, f"GCN argmax under the constraints; fitted on {len(queried)} archs"
        if ok.any():
            arch = max((q for q, good in zip(queried, ok, strict=True) if good), key=lambda q: q[1])[0]
            why = "too few archs to fit the GCN" if predictor is None else "the GCN scored no feasible arch"
            return arch, None, f"{why} ({len(queried)} queried); returned the best queried"
        arch = space.smallest() if isinstance(space, Chain) else next(iter(space.iter_all()))
        return arch, None, "no feasible arch found by sampling; returned the smallest"

    # ---- step 1: spend the budget, fit ---------------------------------------------------
    def fit_space(self, space, accuracy, budget: int, rng: np.random.Generator,
                  constraints: Sequence = ()):
        """Query up to `budget` archs of `accuracy` (restarted with that budget) and return the
        fitted GCN predictor (None if fewer than 2 archs could be drawn)."""
        accuracy.start(space, budget)
        return self._fit(space, accuracy, budget, rng, list(constraints))[0]

    def _fit(self, space, accuracy, budget, rng, constraints):
        """(predictor or None, [(arch, accuracy)] queried); the budget is never exceeded."""
        n1 = budget - int(round(self.refine * budget)) if budget >= 4 else budget
        archs = sample_feasible(space, constraints, rng, n1, exclude=accuracy.read_keys(), key=accuracy.key)
        if not archs:
            return None, []
        queried = list(zip(archs, accuracy.query(archs), strict=True))
        if len(queried) < 2:
            return None, queried
        predictor = self._new_predictor(space, rng).fit([a for a, _ in queried], [y for _, y in queried])
        seen = {space.to_str(a) for a, _ in queried}
        for r in range(self.rounds):  # refinement: query the GCN's top unqueried archs, refit
            left = budget - len(queried)
            n2 = left // (self.rounds - r)
            if n2 <= 0:
                continue
            cand = [a for a, _ in self.ranked_under(space, predictor, constraints, rng, k=n2, exclude=seen)]
            if not cand:
                break
            queried += list(zip(cand, accuracy.query(cand), strict=True))
            seen.update(space.to_str(a) for a in cand)
            predictor = self._new_predictor(space, rng).fit([a for a, _ in queried], [y for _, y in queried])
        return predictor, queried

    def _new_predictor(self, space, rng):
        from hwnas.predictors.base import create_predictor

        return create_predictor("gcn", space=space, seed=int(rng.integers(2 ** 31)), encoding=self.encoding,
                                epochs=self.epochs, hidden=self.hidden, layers=self.layers,
                                rank_weight=self.rank_weight, max_steps=self.max_steps)

    # ---- step 2: the look-up -------------------------------------------------------------
    def best_under(self, space, predictor, constraints: Sequence, rng: np.random.Generator):
        """(arch, predicted accuracy) of the feasible arch the GCN ranks first, or None if the
        search found no feasible arch. Costs nothing from the accuracy budget."""
        top = self.ranked_under(space, predictor, list(constraints), rng, k=1)
        return top[0] if top else None

    def ranked_under(self, space, predictor, constraints: Sequence, rng: np.random.Generator, k: int,
                     exclude: set[str] | None = None) -> list[tuple[object, float]]:
        """Up to k feasible archs (not in `exclude`, by `to_str`) with the highest predictions,
        best first: every arch of a finite space, the evolution's archive otherwise."""
        exclude = exclude or set()
        if isinstance(space, Enumerable) and space.size() <= self.enumerate_max:
            archs = list(space.iter_all())
            archs = [a for a, ok in zip(archs, feasible_mask(constraints, archs), strict=True) if ok]
            pred = predictor.predict(archs) if archs else np.zeros(0)
        else:
            scored = list(self._evolve(space, predictor, list(constraints), rng).values())
            archs, pred = [a for a, _ in scored], np.array([p for _, p in scored])
        if not archs:
            return []
        out = []
        for i in np.argsort(-pred, kind="stable"):  # excluded archs skipped here: to_str only on the top
            if len(out) == k:
                break
            if not exclude or space.to_str(archs[i]) not in exclude:
                out.append((archs[i], float(pred[i])))
        return out

    def _evolve(self, space, predictor, constraints, rng) -> dict:
        """Elitist evolution scored by the GCN; returns every feasible arch scored (arch -> (arch,
        pred)). Archs from the space's own sample/mutate/crossover are canonical tuples, so they
        are their own keys (to_str would re-validate every arch, the slow part on FBNet)."""
        archive: dict = {}

        def score(archs):
            new = list(dict.fromkeys(a for a in archs if a not in archive))
            if new:
                for a, p in zip(new, predictor.predict(new), strict=True):
                    archive[a] = (a, float(p))
            return [archive[a] for a in archs]

        pop = score(sample_feasible(space, constraints, rng, self.population))
        if not pop:
            return archive
        for _ in range(self.generations):
            pop.sort(key=lambda q: -q[1])
            parents = [a for a, _ in pop[:self.parents]]
            children = self._children(space, parents, constraints, rng)
            if not children:
                break
            merged = dict(pop + score(children))
            pop = sorted(merged.items(), key=lambda q: -q[1])[:self.population]
        return archive

    def _children(self, space, parents, constraints, rng) -> list:
        """`mutations` mutants and `crossovers` crosses of the parents; infeasible ones redrawn."""
        want = self.mutations + self.crossovers
        out: list = []
        for _ in range(self.max_redraws):
            need = want - len(out)
            if need <= 0:
                break
            n_mut = max(0, self.mutations - sum(1 for _, kind in out if kind == "m"))
            cand = []
            for j in range(need):
                if j < n_mut or len(parents) < 2:
                    cand.append((space.mutate(parents[int(rng.integers(len(parents)))], rng, p=self.mutation_p), "m"))
                else:
                    i, k = rng.choice(len(parents), size=2, replace=False)
                    cand.append((space.crossover(parents[i], parents[k], rng), "c"))
            ok = feasible_mask(constraints, [a for a, _ in cand])
            out += [c for c, good in zip(cand, ok, strict=True) if good]
        return [a for a, _ in out[:want]]

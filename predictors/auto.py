"""`auto`: pick (or, on a handful of archs, average) the predictors by cross-validation on the
training set only.

The user should not have to choose a predictor after looking at test figures. `auto` runs each
candidate through K-fold cross-validation on the archs it is given (out-of-fold predictions of
all folds pooled, scored against the training targets), and nothing outside `fit`'s arguments is
looked at.

- From `min_tree_archs` (50) training archs on: the candidate with the best CV Kendall tau is
  refitted on the whole training set (ties keep the earlier candidate).
- Below it (a few samples of a new device, HELP's setting): leave-one-out, and the candidates
  are averaged, each weighted by max(0, e) ** `weight_power` (4), where e is its LOO Spearman. On
  10 archs the standard error of a CV rank correlation is about 0.1, larger than the gaps between
  the candidates, so picking one by CV often picks the wrong one (it lost to `transfer` alone on
  the HELP protocol); candidates built on different information (other devices' tables vs op
  counts) also err differently, and the average keeps what each gets right. The power weighs
  down a clearly worse candidate without betting everything on a noisy winner; it (and the
  averaging itself) was chosen on development draws of HELP's protocol (sample seeds 100-107,
  not the reported seeds 0-4). `weight_power=None` picks the best, as at larger sizes.
- With a prior, e also reads the prior devices: `prior_protocol_scores` runs the same
  k-sample protocol with each prior device as the target (the other chips' devices its prior) and
  gives each candidate's mean Spearman there; e = lam * LOO + (1 - lam) * that, lam = k / (k +
  `prior_strength`), so the estimate counts as `prior_strength` (10) samples. It depends on the
  tables only, so it is cached on them (`PriorTables.cache`): the first fit with a prior pays about a
  second, later fits nothing. `prior_strength=0` weighs by LOO alone. Chosen on the
  development devices and seeds (results/predictors/help-protocol/DEVELOPMENT.md).

Candidates (small and strong, so a fit stays within seconds to a minute on one core):
- accuracy: trees on graph features (`xgb-graf`, `rf-graf`) and on graph features next to the
  structure-aware cell encoding (`xgb-graf-struct`);
- cost: `transfer` and `transfer-nearest` when other devices' tables are given as prior, the
  linear cost model (`ridge-cost`), a ridge and trees on graph features (`ridge-graf`,
  `xgb-graf`); below `min_tree_archs` archs with a prior, the three prior-based candidates
  (`meta-gp` too) and `ridge-cost` only (a priori: trees on a handful of archs add variance, not signal, and on the
  development draws `ridge-graf` only diluted the average);
- `target="auto"` (the default) takes the cost list when a prior is given, else both lists.

The CV scores (Kendall tau, and Spearman where averaged), the prior-side scores, the weights and
the pick (`chosen_`, the heaviest member) are kept and saved with the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from .base import Predictor, create_predictor, load_predictor, register_predictor
from .transfer import chip_of

ACCURACY_CANDIDATES = ("xgb-graf", "rf-graf", "xgb-graf-struct")
COST_CANDIDATES = ("transfer", "transfer-nearest", "ridge-cost", "ridge-graf", "xgb-graf")
#: below `min_tree_archs` archs with a prior: the prior-based candidates and the op-count cost model
SMALL_PRIOR_CANDIDATES = ("transfer", "transfer-nearest", "ridge-cost", "meta-gp")
_PRIOR_BASED = ("transfer", "transfer-nearest", "meta-gp")
_TREES = ("xgb", "rf")
#: how many target samples the prior-side estimate is worth (chosen on development devices)
PRIOR_STRENGTH = 10.0


def _rank_corr(fn, y, p) -> float:
    """`fn` (scipy.stats.kendalltau or spearmanr) of y and p; 0 where either is constant or the
    statistic is not finite (a candidate that predicts one value ranks nothing)."""
    if np.ptp(p) == 0 or np.ptp(y) == 0:
        return 0.0
    r = fn(y, p).statistic
    return 0.0 if not np.isfinite(r) else float(r)


@register_predictor("auto", targets=("accuracy", "cost"))
class AutoPredictor(Predictor):
    """CV on the training set: the best candidate refitted, or below `min_tree_archs` archs the
    candidates averaged with weights from their leave-one-out Spearman."""

    uses_prior = True

    def __init__(self, space="nb201", seed: int = 0, target: str = "auto",
                 candidates: tuple[str, ...] = (), folds: int = 5, min_tree_archs: int = 50,
                 weight_power: float | None = 4.0, prior_strength: float = PRIOR_STRENGTH,
                 prior_draws: int = 1, prior_eval: int = 300):
        super().__init__(space, seed)
        self.target, self.candidates, self.folds = target, candidates, folds
        self.min_tree_archs, self.weight_power = min_tree_archs, weight_power
        self.prior_strength, self.prior_draws, self.prior_eval = prior_strength, prior_draws, prior_eval

    def candidate_names(self, prior=None, n_train: int | None = None) -> list[str]:
        small = n_train is not None and n_train < self.min_tree_archs
        if self.candidates:
            names = list(self.candidates)
        elif self.target not in ("auto", "accuracy", "cost"):
            raise ValueError(f"auto: target must be 'auto', 'accuracy' or 'cost', got {self.target!r}")
        elif self.target == "accuracy":
            names = list(ACCURACY_CANDIDATES)
        elif small and prior is not None:
            names = list(SMALL_PRIOR_CANDIDATES)
        elif self.target == "cost" or prior is not None:
            names = list(COST_CANDIDATES)
        else:
            names = list(dict.fromkeys(COST_CANDIDATES + ACCURACY_CANDIDATES))
        if prior is None:  # the prior-based ones without a prior are plain ridges: leave it to the others
            names = [n for n in names if n not in _PRIOR_BASED] or names
        if small and not self.candidates:
            # trees on a handful of archs only add variance (and seconds): linear models only
            names = [n for n in names if not n.startswith(_TREES)] or names
        if "auto" in names:
            raise ValueError("auto cannot be its own candidate")
        return names

    def _make(self, name: str) -> Predictor:
        return create_predictor(name, space=self.space, seed=self.seed)

    def _fit(self, archs, y, prior) -> None:
        n = len(y)
        names = self.candidate_names(prior, n)
        small = n < self.min_tree_archs and self.weight_power is not None
        k = n if small else max(2, min(int(self.folds), n))
        fold = np.random.default_rng(self.seed).permutation(n) % k
        scores: dict[str, float] = {}
        spear: dict[str, float] = {}
        for name in names:
            oof = np.empty(n)
            try:
                for f in range(k):
                    tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                    m = self._make(name)
                    m.fit([archs[i] for i in tr], y[tr], prior=prior if m.uses_prior else None)
                    oof[te] = m._predict([archs[i] for i in te])  # archs are validated already
            except ValueError:  # e.g. too few archs in a fold for this candidate
                scores[name], spear[name] = float("-inf"), float("-inf")
                continue
            scores[name], spear[name] = _rank_corr(kendalltau, y, oof), _rank_corr(spearmanr, y, oof)
        best = max(names, key=lambda nm: (scores[nm], -names.index(nm)))
        weights = {best: 1.0}
        self.prior_scores_ = {}
        if small:
            evidence = dict(spear)
            if prior is not None and self.prior_strength > 0:
                self.prior_scores_ = self.prior_protocol_scores(prior, n, names)
                lam = n / (n + float(self.prior_strength))
                evidence = {nm: (lam * spear[nm] + (1 - lam) * self.prior_scores_[nm])
                            if nm in self.prior_scores_ and np.isfinite(spear[nm]) else spear[nm] for nm in names}
            raw = {nm: max(evidence[nm], 0.0) ** float(self.weight_power) for nm in names if np.isfinite(evidence[nm])}
            total = sum(raw.values())
            if total > 0:
                weights = {nm: w / total for nm, w in raw.items() if w > 0}
        models = {}
        for name in weights:
            model = self._make(name)
            model.fit(archs, y, prior=prior if model.uses_prior else None)
            models[name] = model
        self.weights_, self.models_ = weights, models
        self.chosen_ = max(weights, key=lambda nm: (weights[nm], -names.index(nm)))
        self.model_ = models[self.chosen_]
        self.cv_scores_ = scores
        self.cv_spearman_ = spear if small else {}

    def prior_protocol_scores(self, prior, n: int, names) -> dict[str, float]:
        """Mean Spearman of each candidate under the same n-sample protocol on the prior devices:
        each prior device in turn is the target (n random cells to fit on, `prior_eval` others to
        score), the remaining prior devices of other chips its prior. It depends on the tables, n
        and the candidates only, never on the target's samples, so it is cached on the tables and
        computed once for every fit that reads them (one draw of 20 devices x 4 candidates: about
        a second here)."""
        key = ("auto-prior-protocol", self.space_.name, int(n), tuple(names), int(self.prior_draws),
               int(self.prior_eval))
        cached = prior.cache.get(key)
        if cached is not None:
            return dict(cached)
        chips = [chip_of(c) for c in prior.columns]
        rng = np.random.default_rng(0)  # fixed: the estimate is a property of the tables
        got: dict[str, list[float]] = {nm: [] for nm in names}
        n_rows = len(prior.arch_strs)
        for j in range(len(prior.columns)):
            others = [c for c, ch in zip(prior.columns, chips, strict=True) if ch != chips[j]]
            y = prior.values[:, j]
            if not others or n + 2 > n_rows:
                continue
            sub = prior.subset(others)
            for _ in range(int(self.prior_draws)):
                rows = rng.choice(n_rows, min(n + int(self.prior_eval), n_rows), replace=False)
                archs = prior.archs(self.space_, rows)
                tr, ev = archs[:n], archs[n:]
                for name in names:
                    m = self._make(name)
                    try:
                        m._fit(tr, y[rows[:n]], sub if m.uses_prior else None)
                        p = np.asarray(m._predict(ev), dtype=np.float64)
                    except ValueError:
                        continue
                    got[name].append(_rank_corr(spearmanr, y[rows[n:]], p))
        out = {nm: float(np.mean(v)) for nm, v in got.items() if v}
        prior.cache[key] = out
        return dict(out)

    def _predict(self, archs) -> np.ndarray:
        # members get the validated archs directly (their own predict would validate them again)
        return sum(w * np.asarray(self.models_[nm]._predict(archs), dtype=np.float64)
                   for nm, w in self.weights_.items())

    def _state(self, folder: Path):
        members = {}
        for i, (name, model) in enumerate(self.models_.items()):
            sub = "chosen" if name == self.chosen_ else f"member{i}"
            model.save(folder / sub)
            members[name] = sub
        state = {"chosen": self.chosen_, "weights": self.weights_, "members": members,
                 "cv_scores": self.cv_scores_, "cv_spearman": self.cv_spearman_,
                 "prior_scores": getattr(self, "prior_scores_", {})}
        return json.loads(json.dumps(state, default=str)), {}

    def _set_state(self, state, arrays, folder: Path) -> None:
        self.chosen_ = state["chosen"]
        self.cv_scores_ = {k: float(v) for k, v in state["cv_scores"].items()}
        self.cv_spearman_ = {k: float(v) for k, v in state.get("cv_spearman", {}).items()}
        self.prior_scores_ = {k: float(v) for k, v in state.get("prior_scores", {}).items()}
        self.weights_ = {k: float(v) for k, v in state.get("weights", {self.chosen_: 1.0}).items()}
        members = state.get("members", {self.chosen_: "chosen"})
        space = None if isinstance(self.space, str) else self.space
        self.models_ = {name: load_predictor(folder / sub, space=space) for name, sub in members.items()}
        self.model_ = self.models_[self.chosen_]

"""`auto`: pick the predictor by cross-validation on the training set only.

The user should not have to choose a predictor after looking at test figures. `auto` runs each
candidate through K-fold cross-validation on the archs it is given (out-of-fold predictions of
all folds pooled, scored by Kendall tau against the training targets), keeps the best and refits
it on the whole training set. Nothing outside `fit`'s arguments is looked at.

Candidates (small and strong, so a fit stays within seconds to a minute on one core):
- accuracy: trees on graph features (`xgb-graf`, `rf-graf`) and on graph features next to the
  structure-aware cell encoding (`xgb-graf-struct`);
- cost: `transfer` when other devices' tables are given as prior, the linear cost model
  (`ridge-cost`), a ridge and trees on graph features (`ridge-graf`, `xgb-graf`);
- `target="auto"` (the default) takes the cost list when a prior is given, else both lists.

With fewer archs than folds, K = n (leave one out). Below `min_tree_archs` (50) training archs
the tree candidates are left out of the default lists (a priori: trees on a handful of archs add
variance, not signal), so a 10-sample fit takes about a second. Ties keep the earlier candidate. The CV
scores and the pick are kept (`cv_scores_`, `chosen_`) and saved with the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import Predictor, create_predictor, load_predictor, register_predictor

ACCURACY_CANDIDATES = ("xgb-graf", "rf-graf", "xgb-graf-struct")
COST_CANDIDATES = ("transfer", "ridge-cost", "ridge-graf", "xgb-graf")
_TREES = ("xgb", "rf")


def _kendall(y, p) -> float:
    from scipy.stats import kendalltau

    if np.ptp(p) == 0 or np.ptp(y) == 0:
        return 0.0
    t = kendalltau(y, p).statistic
    return 0.0 if not np.isfinite(t) else float(t)


@register_predictor("auto", targets=("accuracy", "cost"))
class AutoPredictor(Predictor):
    """The candidate with the best K-fold CV Kendall tau on the training set, refitted on all of it."""

    uses_prior = True

    def __init__(self, space="nb201", seed: int = 0, target: str = "auto",
                 candidates: tuple[str, ...] = (), folds: int = 5, min_tree_archs: int = 50):
        super().__init__(space, seed)
        self.target, self.candidates, self.folds = target, candidates, folds
        self.min_tree_archs = min_tree_archs

    def candidate_names(self, prior=None, n_train: int | None = None) -> list[str]:
        if self.candidates:
            names = list(self.candidates)
        elif self.target == "accuracy":
            names = list(ACCURACY_CANDIDATES)
        elif self.target == "cost" or prior is not None:
            names = list(COST_CANDIDATES)
        elif self.target == "auto":
            names = list(dict.fromkeys(COST_CANDIDATES + ACCURACY_CANDIDATES))
        else:
            raise ValueError(f"auto: target must be 'auto', 'accuracy' or 'cost', got {self.target!r}")
        if prior is None:  # `transfer` without a prior is a plain ridge-struct: leave it to the others
            names = [n for n in names if n != "transfer"] or names
        if n_train is not None and n_train < self.min_tree_archs and not self.candidates:
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
        k = max(2, min(int(self.folds), n))
        fold = np.random.default_rng(self.seed).permutation(n) % k
        scores: dict[str, float] = {}
        for name in names:
            oof = np.empty(n)
            try:
                for f in range(k):
                    tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                    m = self._make(name)
                    m.fit([archs[i] for i in tr], y[tr], prior=prior if m.uses_prior else None)
                    oof[te] = m.predict([archs[i] for i in te])
            except ValueError:  # e.g. too few archs in a fold for this candidate
                scores[name] = float("-inf")
                continue
            scores[name] = _kendall(y, oof)
        best = max(names, key=lambda nm: (scores[nm], -names.index(nm)))
        model = self._make(best)
        model.fit(archs, y, prior=prior if model.uses_prior else None)
        self.chosen_, self.cv_scores_, self.model_ = best, scores, model

    def _predict(self, archs) -> np.ndarray:
        return self.model_.predict(archs)

    def _state(self, folder: Path):
        self.model_.save(folder / "chosen")
        return {"chosen": self.chosen_, "cv_scores": json.loads(json.dumps(self.cv_scores_, default=str))}, {}

    def _set_state(self, state, arrays, folder: Path) -> None:
        self.chosen_ = state["chosen"]
        self.cv_scores_ = {k: float(v) for k, v in state["cv_scores"].items()}
        self.model_ = load_predictor(folder / "chosen", space=None if isinstance(self.space, str) else self.space)

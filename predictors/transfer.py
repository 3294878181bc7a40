"""Few-sample cost prediction that transfers from other devices' tables (HELP-style setting).

HELP meta-learns a hardware embedding from a device's latencies on a few reference archs. When
full tables of other devices exist (as in HW-NAS-Bench / HELP's data), the plainest transfer is
to regress the new device's log latency on the other devices' log latencies of the same arch:
a 20-sample fit then only has to learn how this device weighs the known devices' cost profiles.
`transfer` does exactly that with a LOO-tuned ridge; without a prior it is a ridge on the
structure-aware encoding (stated in `mode_`), so it is usable, and tested, like any predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Predictor, register_predictor
from .encodings import encode


@dataclass
class PriorTables:
    """Other devices' values for every arch: `values[i, j]` = device `columns[j]` on `arch_strs[i]`."""

    arch_strs: list[str]
    columns: list[str]
    values: np.ndarray

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape != (len(self.arch_strs), len(self.columns)):
            raise ValueError(f"prior tables: values shape {self.values.shape} does not match "
                             f"{len(self.arch_strs)} archs x {len(self.columns)} columns")
        self._row = {a: i for i, a in enumerate(self.arch_strs)}

    def lookup(self, arch_strs: list[str]) -> np.ndarray:
        rows = []
        for a in arch_strs:
            i = self._row.get(a)
            if i is None:
                raise ValueError(f"prior tables have no row for arch {a[:80]!r}; every prior table must cover the archs predicted")
            rows.append(i)
        return self.values[np.asarray(rows, dtype=np.int64)]


def _log(x: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, 0.0) + offset)


@register_predictor("transfer")
class TransferPredictor(Predictor):
    """log(y) ~ ridge(log prior devices' values); needs `prior=` in fit for its transfer mode."""

    uses_prior = True
    target_kind = "cost"

    def __init__(self, space="nb201", seed: int = 0,
                 alphas: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)):
        super().__init__(space, seed)
        self.alphas = alphas

    def _features(self, archs) -> np.ndarray:
        if self.mode_ == "prior":
            strs = [self.space_.to_str(a) for a in archs]
            P = _log(self.prior_.lookup(strs), self.offset_)
            return (P - self.x_mean_) / self.x_std_
        return encode(self.space_, archs, "struct")

    def _fit(self, archs, y, prior) -> None:
        from sklearn.linear_model import RidgeCV

        self.mode_ = "prior" if prior is not None else "no-prior-ridge-struct"
        if prior is not None:
            self.prior_ = prior
            self.offset_ = 1e-2 * np.maximum(np.median(np.abs(prior.values), axis=0), 1e-9)
            allP = _log(prior.values, self.offset_)
            self.x_mean_, self.x_std_ = allP.mean(0), allP.std(0) + 1e-12
        self.y_offset_ = float(1e-2 * max(np.median(np.abs(y)), 1e-9))
        z = np.log(np.maximum(y, 0.0) + self.y_offset_)
        m = RidgeCV(alphas=list(self.alphas)).fit(self._features(archs), z)
        self.coef_, self.intercept_, self.alpha_ = m.coef_.astype(np.float64), float(m.intercept_), float(m.alpha_)

    def _predict(self, archs) -> np.ndarray:
        z = self._features(archs).astype(np.float64) @ self.coef_ + self.intercept_
        return np.exp(z) - self.y_offset_

    def _state(self, folder):
        state = {"mode": self.mode_, "intercept": self.intercept_, "alpha": self.alpha_, "y_offset": self.y_offset_}
        arrays = {"coef": self.coef_}
        if self.mode_ == "prior":
            state["prior_columns"] = list(self.prior_.columns)
            arrays.update(prior_arch_strs=np.asarray(self.prior_.arch_strs), prior_values=self.prior_.values,
                          offset=self.offset_, x_mean=self.x_mean_, x_std=self.x_std_)
        return state, arrays

    def _set_state(self, state, arrays, folder) -> None:
        self.mode_, self.intercept_ = state["mode"], float(state["intercept"])
        self.alpha_, self.y_offset_ = float(state["alpha"]), float(state["y_offset"])
        self.coef_ = arrays["coef"]
        if self.mode_ == "prior":
            self.prior_ = PriorTables([str(s) for s in arrays["prior_arch_strs"]], list(state["prior_columns"]),
                                      arrays["prior_values"])
            self.offset_, self.x_mean_, self.x_std_ = arrays["offset"], arrays["x_mean"], arrays["x_std"]

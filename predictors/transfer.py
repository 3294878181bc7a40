"""Few-sample cost prediction that transfers from other devices' tables (HELP-style setting).

HELP meta-learns a hardware embedding from a device's latencies on a few reference archs. When
full tables of other devices exist (as in HW-NAS-Bench / HELP's data), the plainest transfer is
to regress the new device's log latency on the other devices' log latencies of the same arch:
a 20-sample fit then only has to learn how this device weighs the known devices' cost profiles.
`transfer` does exactly that with a LOO-tuned ridge; without a prior it is a ridge on the
structure-aware encoding (stated in `mode_`), so it is usable, and tested, like any predictor.

`transfer-nearest` is the one-device version: of the prior devices it takes the one whose
latencies rank the training archs most alike (Spearman) and fits log(y) = a + b * log(that
device). With 10 samples it estimates 2 numbers instead of one weight per prior device, so it
errs differently from `transfer` (the two are averaged by `auto` at small sizes).
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
        self._by_arch: dict = {}  # (space name, arch) -> row: predicting all cells again skips to_str
        #: what is learned from the tables alone (per-column statistics, the prior-side protocol
        #: of `auto`, meta-gp's coefficient prior): computed once however many fits read them,
        #: and shared with every `subset` of these tables
        self.cache: dict = {}

    def subset(self, columns) -> PriorTables:
        """The same tables restricted to `columns` (a list of names, in that order); it shares
        this object's caches, so what is computed per column is computed once."""
        idx = [self.columns.index(c) for c in columns]
        sub = PriorTables.__new__(PriorTables)
        sub.arch_strs, sub.columns, sub.values = self.arch_strs, list(columns), self.values[:, idx]
        sub._row, sub._by_arch, sub.cache = self._row, self._by_arch, self.cache
        return sub

    def archs(self, space, rows) -> list:
        """The space's arch objects of table rows `rows` (parsed once per row and space)."""
        parsed = self.cache.setdefault(("archs", space.name), {})
        out = []
        for i in rows:
            a = parsed.get(int(i))
            if a is None:
                a = parsed[int(i)] = space.validate(space.from_str(self.arch_strs[int(i)]))
            out.append(a)
        return out

    def rows_of(self, space, archs) -> np.ndarray:
        """Row indices of `archs` (the space's objects); archs are named by `space.to_str`."""
        cache = self._by_arch.setdefault(space.name, {})
        rows = []
        for a in archs:
            try:
                i = cache.get(a)
            except TypeError:  # an unhashable arch object: look it up by name every time
                i = None
            if i is None:
                s = space.to_str(a)
                i = self._row.get(s)
                if i is None:
                    raise ValueError(f"prior tables have no row for arch {s[:80]!r}; every prior table must cover the archs predicted")
                try:
                    cache[a] = i
                except TypeError:
                    pass
            rows.append(i)
        return np.asarray(rows, dtype=np.int64)

    def log_standardised(self):
        """(offset, mean, std) of the log values per column, over the whole tables: they depend
        on the tables only, so they are computed once however many fits read them."""
        stats = self.cache.setdefault("log_stats", {})
        missing = [j for j, c in enumerate(self.columns) if c not in stats]
        if missing:
            v = self.values[:, missing]
            offset = 1e-2 * np.maximum(np.median(np.abs(v), axis=0), 1e-9)
            allP = _log(v, offset)
            for j, o, m, sd in zip(missing, offset, allP.mean(0), allP.std(0) + 1e-12, strict=True):
                stats[self.columns[j]] = (o, m, sd)
        o, m, sd = (np.array([stats[c][i] for c in self.columns]) for i in range(3))
        return o, m, sd


def chip_of(column: str) -> str:
    """'help_nasbench201_latency_ms:titanxp_256' -> 'titanxp': a device's batch-size variants
    share one chip (the part after the last ':' names the device)."""
    col = column.rpartition(":")[2]
    head, _, tail = col.rpartition("_")
    return head if tail.isdigit() and head else col


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
            P = _log(self.prior_.values[self.prior_.rows_of(self.space_, archs)], self.offset_)
            return (P - self.x_mean_) / self.x_std_
        return encode(self.space_, archs, "struct")

    def _fit(self, archs, y, prior) -> None:
        from sklearn.linear_model import RidgeCV

        self.mode_ = "prior" if prior is not None else "no-prior-ridge-struct"
        if prior is not None:
            self.prior_ = prior
            self.offset_, self.x_mean_, self.x_std_ = prior.log_standardised()
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


@register_predictor("transfer-nearest")
class NearestDevicePredictor(TransferPredictor):
    """log(y) ~ a + b * log(the prior device whose values rank the training archs most alike)."""

    def _fit(self, archs, y, prior) -> None:
        if prior is None:  # the same fallback as `transfer`: a ridge on the structure-aware encoding
            super()._fit(archs, y, None)
            self.column_ = ""
            return
        from scipy.stats import rankdata

        self.mode_, self.prior_ = "prior", prior
        self.offset_, self.x_mean_, self.x_std_ = prior.log_standardised()
        self.y_offset_ = float(1e-2 * max(np.median(np.abs(y)), 1e-9))
        z = np.log(np.maximum(y, 0.0) + self.y_offset_)
        X = self._features(archs).astype(np.float64)
        rho = np.full(X.shape[1], -np.inf)
        live = np.flatnonzero(np.ptp(X, axis=0) > 0)
        if np.ptp(z) > 0 and len(live):
            # Spearman of every column at once: Pearson of the (tie-averaged) ranks
            R = rankdata(X[:, live], axis=0) - (len(z) + 1) / 2
            rz = rankdata(z) - (len(z) + 1) / 2
            r = (R.T @ rz) / np.sqrt((R * R).sum(0) * (rz @ rz))
            rho[live] = np.where(np.isfinite(r), r, -np.inf)
        j = int(np.argmax(rho))  # ties (and a constant target): the first column
        if np.ptp(X[:, j]) > 0:
            b, a = np.polyfit(X[:, j], z, 1)
        else:
            b, a = 0.0, float(z.mean())
        self.coef_ = np.zeros(X.shape[1])
        self.coef_[j] = b
        self.intercept_, self.alpha_, self.column_ = float(a), 0.0, str(prior.columns[j])

    def _state(self, folder):
        state, arrays = super()._state(folder)
        return {**state, "column": self.column_}, arrays

    def _set_state(self, state, arrays, folder) -> None:
        super()._set_state(state, arrays, folder)
        self.column_ = str(state.get("column", ""))

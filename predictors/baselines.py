"""Baseline surrogates: xgb, rf, mlp, ridge, knn on an encoding, and lut-sum for cost.

Every model is stored in a format-stable way: xgboost's own JSON for trees, plain arrays (npz)
for linear/MLP weights and for kNN's training set; predictions after a load are bit-identical
because they run the same code on the same numbers. `*-struct` variants use the space's
structure-aware encoding, `*-graf` its graph features (GRAF style); the space computes both
(`encode_as`, search/spaces/encoders.py for the built-in spaces).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from hwnas.core.capabilities import CellGraph

from .base import Predictor, create_predictor, register_predictor
from .encodings import encode

log = logging.getLogger(__name__)


class EncodedPredictor(Predictor):
    """A predictor on a fixed-length encoding; targets are standardised for fitting."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot"):
        super().__init__(space, seed)
        self.encoding = encoding

    def _X(self, archs) -> np.ndarray:
        return encode(self.space_, archs, self.encoding)

    def _fit(self, archs, y, prior) -> None:
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std() or 1.0)
        self._fit_xy(self._X(archs), (y - self.y_mean_) / self.y_std_)

    def _predict(self, archs) -> np.ndarray:
        return self._predict_x(self._X(archs)) * self.y_std_ + self.y_mean_

    def _fit_xy(self, X, z) -> None:
        raise NotImplementedError

    def _predict_x(self, X) -> np.ndarray:
        raise NotImplementedError

    def _scale_state(self) -> dict:
        return {"y_mean": self.y_mean_, "y_std": self.y_std_}

    def _set_scale(self, state: dict) -> None:
        self.y_mean_, self.y_std_ = float(state["y_mean"]), float(state["y_std"])


# ---- trees (xgboost) --------------------------------------------------------------------
class _XGBBase(EncodedPredictor):
    native_file = "model.json"

    def _make(self):
        raise NotImplementedError

    def _fit_xy(self, X, z) -> None:
        self.model_ = self._make()
        self.model_.fit(X, z)

    def _predict_x(self, X) -> np.ndarray:
        return self.model_.predict(X)

    def _state(self, folder: Path):
        self.model_.save_model(folder / self.native_file)
        return {**self._scale_state(), "native_file": self.native_file}, {}

    def _set_state(self, state, arrays, folder: Path) -> None:
        self._set_scale(state)
        self.model_ = self._make()
        self.model_.load_model(folder / state["native_file"])


# n_jobs=1 by default: once torch is imported (the GCN, the CLI), xgboost's and torch's OpenMP
# thread pools fight over 2 busy cores; a 50-arch fit measured 0.23 s with 1 thread and up to
# 43 s with 2. Trees on <= 15,625 rows gain little from threads anyway.
@register_predictor("xgb")
@register_predictor("xgb-struct", encoding="struct")
@register_predictor("xgb-graf", encoding="graf")
@register_predictor("xgb-graf-struct", encoding="graf-struct")
class XGBPredictor(_XGBBase):
    """Gradient-boosted trees (the NASLib / HW-NAS-Bench baseline)."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot",
                 n_estimators: int = 500, learning_rate: float = 0.05, max_depth: int = 6,
                 subsample: float = 0.8, colsample_bytree: float = 0.8, n_jobs: int = 1):
        super().__init__(space, seed, encoding)
        self.n_estimators, self.learning_rate, self.max_depth = n_estimators, learning_rate, max_depth
        self.subsample, self.colsample_bytree, self.n_jobs = subsample, colsample_bytree, n_jobs

    def _make(self):
        import xgboost as xgb

        return xgb.XGBRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
            subsample=self.subsample, colsample_bytree=self.colsample_bytree, n_jobs=self.n_jobs,
            random_state=self.seed, tree_method="hist",
        )


@register_predictor("rf")
@register_predictor("rf-graf", encoding="graf")
class RFPredictor(_XGBBase):
    """Random forest (xgboost's RF mode, so the trees are saved as JSON, not pickled)."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot",
                 n_estimators: int = 200, max_depth: int = 8, subsample: float = 0.8,
                 colsample_bynode: float = 0.5, n_jobs: int = 1):
        super().__init__(space, seed, encoding)
        self.n_estimators, self.max_depth, self.subsample = n_estimators, max_depth, subsample
        self.colsample_bynode, self.n_jobs = colsample_bynode, n_jobs

    def _make(self):
        import xgboost as xgb

        return xgb.XGBRFRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, subsample=self.subsample,
            colsample_bynode=self.colsample_bynode, n_jobs=self.n_jobs, random_state=self.seed,
            tree_method="hist",
        )


# ---- linear ------------------------------------------------------------------------------
@register_predictor("ridge")
@register_predictor("ridge-struct", encoding="struct")
@register_predictor("ridge-ops", encoding="ops")
@register_predictor("ridge-cost", encoding="cost")
@register_predictor("ridge-graf", encoding="graf")
class RidgePredictor(EncodedPredictor):
    """Ridge regression; the penalty is picked by leave-one-out CV (cheap, closed form)."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot",
                 alphas: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)):
        super().__init__(space, seed, encoding)
        self.alphas = alphas

    def _fit_xy(self, X, z) -> None:
        from sklearn.linear_model import RidgeCV

        m = RidgeCV(alphas=list(self.alphas)).fit(X, z)
        self.coef_, self.intercept_, self.alpha_ = m.coef_.astype(np.float64), float(m.intercept_), float(m.alpha_)

    def _predict_x(self, X) -> np.ndarray:
        return X.astype(np.float64) @ self.coef_ + self.intercept_

    def _state(self, folder):
        return {**self._scale_state(), "intercept": self.intercept_, "alpha": self.alpha_}, {"coef": self.coef_}

    def _set_state(self, state, arrays, folder) -> None:
        self._set_scale(state)
        self.coef_, self.intercept_, self.alpha_ = arrays["coef"], float(state["intercept"]), float(state["alpha"])


# ---- MLP ---------------------------------------------------------------------------------
@register_predictor("mlp")
@register_predictor("mlp-graf", encoding="graf")
class MLPPredictor(EncodedPredictor):
    """Two hidden ReLU layers (scikit-learn's MLPRegressor, Adam); weights stored as arrays."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot",
                 hidden: tuple[int, ...] = (128, 128), alpha: float = 1e-3, max_iter: int = 150):
        super().__init__(space, seed, encoding)
        self.hidden, self.alpha, self.max_iter = hidden, alpha, max_iter

    def _fit_xy(self, X, z) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        m = MLPRegressor(hidden_layer_sizes=tuple(self.hidden), alpha=self.alpha, max_iter=self.max_iter,
                         random_state=self.seed, batch_size=min(64, len(z)), learning_rate_init=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(X, z)
        self.weights_ = [w.astype(np.float64) for w in m.coefs_]
        self.biases_ = [b.astype(np.float64) for b in m.intercepts_]

    def _predict_x(self, X) -> np.ndarray:
        h = X.astype(np.float64)
        for i, (w, b) in enumerate(zip(self.weights_, self.biases_, strict=True)):
            h = h @ w + b
            if i < len(self.weights_) - 1:
                h = np.maximum(h, 0.0)
        return h.ravel()

    def _state(self, folder):
        arrays = {f"w{i}": w for i, w in enumerate(self.weights_)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases_)})
        return {**self._scale_state(), "n_layers": len(self.weights_)}, arrays

    def _set_state(self, state, arrays, folder) -> None:
        self._set_scale(state)
        n = int(state["n_layers"])
        self.weights_ = [arrays[f"w{i}"] for i in range(n)]
        self.biases_ = [arrays[f"b{i}"] for i in range(n)]


# ---- kNN ---------------------------------------------------------------------------------
@register_predictor("knn")
@register_predictor("knn-graf", encoding="graf")
class KNNPredictor(EncodedPredictor):
    """Distance-weighted k nearest neighbours; the training set is the model.

    A k-d tree computes each distance exactly; brute force uses the |x|^2 + |y|^2 - 2xy
    shortcut, whose rounding depends on the batch, so ties between equidistant one-hot
    neighbours broke differently from call to call.
    """

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot", k: int = 7):
        super().__init__(space, seed, encoding)
        self.k = k

    def _fit_xy(self, X, z) -> None:
        self.X_train_, self.z_train_ = X.astype(np.float32), z.astype(np.float64)
        self._build()

    def _build(self) -> None:
        from sklearn.neighbors import KNeighborsRegressor

        k = min(self.k, len(self.z_train_))
        self.model_ = KNeighborsRegressor(n_neighbors=k, weights="distance", algorithm="kd_tree").fit(self.X_train_, self.z_train_)

    def _predict_x(self, X) -> np.ndarray:
        return self.model_.predict(X)

    def _state(self, folder):
        return self._scale_state(), {"X_train": self.X_train_, "z_train": self.z_train_}

    def _set_state(self, state, arrays, folder) -> None:
        self._set_scale(state)
        self.X_train_, self.z_train_ = arrays["X_train"], arrays["z_train"]
        self._build()


# ---- lut-sum (cost) ----------------------------------------------------------------------
def cost_units(space, arch) -> list[str]:
    """The additive units of a network's cost: NB201 (edge, op) pairs; chain spaces table keys.

    NB201's table keys are whole cells (one per arch), which cannot generalise to unseen cells,
    so its units are the ops on each edge (`none` costs nothing).
    """
    if isinstance(space, CellGraph):
        return [f"e{e}:{space.ops[o]}" for e, o in enumerate(space.validate(arch)) if o != 0]
    return space.block_keys(arch)


@register_predictor("lut-sum")
class LUTSumPredictor(Predictor):
    """cost = T0 + sum of per-unit costs (a lookup table summed over the network's blocks).

    Three modes, by `lut`:
    - none: all unit costs are fitted from (arch, cost) pairs by non-negative least squares
      (scipy.optimize.lsq_linear), T0 unconstrained; units never seen in training cost the mean
      fitted unit cost of their kind;
    - a CSV/Parquet with columns `key` and `column`: unit costs come from that measured table and
      only T0 and a scale are fitted;
    - a `hwnas profile` block table (columns `block_key`, `kind`): the table's sum over the arch's
      blocks plus the fixed parts, calibrated on whole networks measured end to end (DESIGN.md,
      "Additivity"): cost ~ a + b * table_sum + sum_s c_s * blocks_in_stage_s (least squares;
      stage terms only where they vary and the networks are enough). `calibrate=False` predicts
      the plain sum. `table_sum(archs)` is the plain sum in every case of this mode.
    """

    target_kind = "cost"

    def __init__(self, space="nb201", seed: int = 0, lut: str | None = None,
                 column: str = "latency_ms", ridge: float = 1e-3, calibrate: bool = True):
        super().__init__(space, seed)
        self.lut, self.column, self.ridge, self.calibrate = lut, column, ridge, calibrate

    def _counts(self, archs, keys: dict[str, int]) -> np.ndarray:
        X = np.zeros((len(archs), len(keys)), dtype=np.float64)
        for i, a in enumerate(archs):
            for k in cost_units(self.space_, a):
                j = keys.get(k)
                if j is not None:
                    X[i, j] += 1.0
        return X

    def _fit(self, archs, y, prior) -> None:
        from scipy.optimize import lsq_linear

        self.mode_ = "fitted-units"
        if self.lut:
            from hwnas.devices.table import read_table_file

            df = read_table_file(self.lut)
            if "block_key" in df.columns:
                self._fit_block_table(df, archs, y)
                return
            self.mode_ = "unit-table"
            if "key" not in df.columns or self.column not in df.columns:
                raise ValueError(f"{self.lut}: a lut-sum table needs columns 'key' and {self.column!r}")
            table = dict(zip(df["key"].astype(str), df[self.column].astype(float), strict=True))
            units = [cost_units(self.space_, a) for a in archs]
            missing = sorted({u for us in units for u in us if u not in table})
            if missing:
                raise ValueError(f"{self.lut}: no row for block key {missing[0]!r} ({len(missing)} missing); profile it first")
            s = np.array([sum(table[u] for u in us) for us in units])
            A = np.stack([np.ones_like(s), s], axis=1)
            (t0, scale), *_ = np.linalg.lstsq(A, y, rcond=None)
            self.keys_ = sorted(table)
            self.unit_cost_ = np.array([table[k] * scale for k in self.keys_])
            self.T0_ = float(t0)
        else:
            keys = sorted({u for a in archs for u in cost_units(self.space_, a)})
            index = {k: i for i, k in enumerate(keys)}
            X = self._counts(archs, index)
            # intercept column first; a small ridge row block keeps tiny train sets well posed
            A = np.hstack([np.ones((len(y), 1)), X])
            reg = np.sqrt(self.ridge) * np.eye(A.shape[1])[1:]
            A2 = np.vstack([A, reg])
            b2 = np.concatenate([y, np.zeros(A.shape[1] - 1)])
            lb = np.r_[-np.inf, np.zeros(len(keys))]
            sol = lsq_linear(A2, b2, bounds=(lb, np.full(A.shape[1], np.inf)), method="bvls")
            self.T0_ = float(sol.x[0])
            self.keys_ = keys
            self.unit_cost_ = sol.x[1:].astype(np.float64)
        self._index = {k: i for i, k in enumerate(self.keys_)}
        self._fill = _kind_means(self.keys_, self.unit_cost_)

    # ---- block-table mode (the calibrated look-up table of `hwnas validate-lut`) -----------
    def _fit_block_table(self, df, archs, y) -> None:
        from hwnas.devices.lut import BlockTable

        self.mode_ = "block-table"
        self.table_ = BlockTable.from_frame(df, self.column, str(self.lut))
        if not self.calibrate:
            self.columns_, self.intercept_, self.coef_ = [0], 0.0, np.ones(1)
            return
        X = self._table_features(archs)
        keep = [0] + [j for j in range(1, X.shape[1]) if np.ptp(X[:, j]) > 0]  # drop constant counts
        if len(y) < len(keep) + 2:  # too few networks for per-stage terms: scale and offset only
            keep = [0]
        if len(y) < 3:
            raise ValueError(f"{self.name}: need at least 3 networks to calibrate a block table, got {len(y)}")
        y = np.asarray(y, dtype=float)
        for cols in (keep, [0]):  # per-stage terms, then scale and offset, while every part costs > 0
            coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(X)), X[:, cols]]), y, rcond=None)
            if np.all(self._floor_rows(cols) @ coef > 0):
                self.columns_, self.intercept_, self.coef_ = cols, float(coef[0]), coef[1:].astype(float)
                return
        # the last resort stays positive wherever the table is: latency = b * table sum
        scale = float(X[:, 0] @ y / (X[:, 0] @ X[:, 0]))
        self.columns_, self.intercept_, self.coef_ = [0], 0.0, np.array([scale])
        log.warning("%s: %d networks are too few or too noisy for an offset (it made some network cost <= 0); "
                    "calibrated as a plain scale of the table sum (x%.3f); validate with more --samples",
                    self.name, len(y), scale)

    def _floor_rows(self, keep) -> np.ndarray:
        """Rows G for which G @ (a, b, c_s...) > 0 says every calibrated part costs something: the
        scale b, the cheapest block of each stage (b * v + c_s) and the cheapest network of a chain
        space (elsewhere the fixed parts, a + b * fixed sum, which bound every network from below
        once blocks cost > 0). A fit on few, noisy networks that breaks one of them extrapolates
        to latencies <= 0 outside its sample, the smallest arch first."""
        from hwnas.core.capabilities import Chain
        from hwnas.devices.lut import cheapest_arch, features, stage_block_values

        def row(lead, scale, stage_terms):
            out = np.zeros(len(keep) + 1)
            out[0], out[1] = lead, scale
            for s, v in stage_terms.items():
                if s + 1 in keep:
                    out[keep.index(s + 1) + 1] = v
            return out

        rows = [row(0.0, 1.0, {})]
        rows += [row(0.0, min(vals), {s: 1.0}) for s, vals in stage_block_values(self.table_, self.space_).items()
                 if vals]
        if isinstance(self.space_, Chain):
            f = features(self.table_, self.space_, [cheapest_arch(self.table_, self.space_)])[0]
            rows.append(row(1.0, f[0], {j - 1: f[j] for j in range(1, len(f))}))
        else:
            rows.append(row(1.0, self.table_.fixed_sum(self.space_), {}))
        return np.array(rows)

    def _table_features(self, archs) -> np.ndarray:
        from hwnas.devices.lut import features

        return features(self.table_, self.space_, archs)

    def table_sum(self, archs) -> np.ndarray:
        """The plain table sum (blocks + fixed parts) of each arch (block-table mode)."""
        self._check_fitted()
        if self.mode_ != "block-table":
            raise ValueError(f"{self.name}: table_sum needs a block table as `lut`")
        return np.array([self.table_.network_sum(self.space_, a) for a in archs])

    @classmethod
    def from_calibration(cls, space, table, doc) -> LUTSumPredictor:
        """A fitted block-table `lut-sum` from a block table (path) and the calibration JSON
        (path or dict) that `hwnas validate-lut` wrote with `calibration_doc`."""
        import json

        from hwnas.devices.lut import BlockTable

        d = json.loads(Path(doc).read_text()) if not isinstance(doc, dict) else doc
        model = create_predictor("lut-sum", space=space, lut=str(table), column=d["column"])
        model.mode_ = "block-table"
        model.table_ = BlockTable.from_file(table, d["column"])
        model.columns_, model.intercept_ = list(d["columns"]), float(d["intercept"])
        model.coef_, model.n_train_ = np.asarray(d["coef"], dtype=float), int(d["n_train"])
        return model

    def calibration_doc(self) -> dict:
        """The calibration as `hwnas validate-lut` writes it (features, intercept, coefficients)."""
        return {"kind": "lut-linear", "column": self.table_.column, "source": self.table_.source,
                "features": ["table_sum"] + [f"stage{j - 1}_blocks" for j in self.columns_[1:]],
                "columns": self.columns_, "intercept": self.intercept_, "coef": self.coef_.tolist(),
                "n_train": self.n_train_}

    def _predict(self, archs) -> np.ndarray:
        if self.mode_ == "block-table":
            return self.intercept_ + self._table_features(archs)[:, self.columns_] @ self.coef_
        out = np.full(len(archs), self.T0_)
        for i, a in enumerate(archs):
            for u in cost_units(self.space_, a):
                j = self._index.get(u)
                out[i] += self.unit_cost_[j] if j is not None else self._fill.get(_kind(u), 0.0)
        return out

    def _state(self, folder):
        if self.mode_ == "block-table":
            t = self.table_
            return ({"mode": self.mode_, "columns": self.columns_, "intercept": self.intercept_,
                     "table_column": t.column, "table_source": t.source, "block_keys": list(t.values),
                     "fixed_keys": list(t.fixed)},
                    {"coef": self.coef_, "block_values": np.array(list(t.values.values()), dtype=np.float64),
                     "fixed_values": np.array(list(t.fixed.values()), dtype=np.float64)})
        return {"mode": self.mode_, "T0": self.T0_, "keys": self.keys_}, {"unit_cost": self.unit_cost_}

    def _set_state(self, state, arrays, folder) -> None:
        self.mode_ = state.get("mode", "fitted-units")
        if self.mode_ == "block-table":
            from hwnas.devices.lut import BlockTable

            values = dict(zip(state["block_keys"], arrays["block_values"].tolist(), strict=True))
            fixed = dict(zip(state["fixed_keys"], arrays["fixed_values"].tolist(), strict=True))
            self.table_ = BlockTable(values, fixed, state["table_column"], state["table_source"])
            self.columns_, self.intercept_ = list(state["columns"]), float(state["intercept"])
            self.coef_ = arrays["coef"]
            return
        self.T0_, self.keys_ = float(state["T0"]), list(state["keys"])
        self.unit_cost_ = arrays["unit_cost"]
        self._index = {k: i for i, k in enumerate(self.keys_)}
        self._fill = _kind_means(self.keys_, self.unit_cost_)


def _kind(key: str) -> str:
    return key.split(":")[1] if ":" in key else key


def _kind_means(keys, costs) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for k, c in zip(keys, costs, strict=True):
        groups.setdefault(_kind(k), []).append(float(c))
    return {k: float(np.mean(v)) for k, v in groups.items()}

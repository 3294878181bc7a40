"""Bayesian linear regression with a posterior to sample, and BINAS's cell-space surrogate built on it.

`BayesianLinear` is an estimator on feature rows (scikit-learn style: parameters in the
constructor, `fit(X, y)` returns self, fitted attributes end in `_`); the query methods use it
where they need a posterior, not only a mean: BINAS on the structure-aware features of every
cell (`CellRidgePredictor`), the GCN method as a neural-linear head on the GCN's pooled graph
embeddings (DNGO, Snoek et al. 2015). `CellRidgePredictor` is a `Predictor` (archs in, float64
out) that also answers by cell position (`fit_cells`, `predict_cells`), which is what a search
over the enumerated cells holds; it is not registered: it needs an enumerable cell graph space
(`predictors.cells`), and the registered predictors run on every space.
"""

from __future__ import annotations

import numpy as np

from .base import Predictor
from .cells import CellSurrogate, cell_features, check_targets

DEFAULT_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
PRIORS = ("evidence", "loo", "bootstrap")


def ridge_loo(X: np.ndarray, y: np.ndarray, alphas=DEFAULT_ALPHAS) -> tuple[np.ndarray, float, float, float]:
    """(coef, intercept, alpha, leave-one-out mean squared error) of a ridge regression with
    intercept, its penalty chosen among `alphas` by exact leave-one-out error (closed form,
    dual: n x n; n is at most a few hundred here)."""
    xm, ym = X.mean(0), y.mean()
    Xc, yc = X - xm, y - ym
    K = Xc @ Xc.T
    n = len(y)
    best = None
    for a in alphas:
        Ainv = np.linalg.inv(K + a * np.eye(n))
        H = K @ Ainv
        r = (yc - H @ yc) / np.maximum(1.0 - np.diag(H), 1e-9)
        err = float(np.mean(r ** 2))
        if best is None or err < best[0]:
            best = (err, a, Ainv)
    err, a, Ainv = best
    coef = Xc.T @ (Ainv @ yc)
    return coef, float(ym - xm @ coef), float(a), float(err)


class BayesianLinear:
    """Bayesian linear regression on features X: coef ~ N(0, 1/lambda I), noise variance 1/beta,
    posterior N(coef_, S).

    `prior="evidence"` (default) sets lambda and beta by maximising the marginal likelihood
    (MacKay's evidence approximation, scikit-learn's BayesianRidge), the choice DNGO-style
    neural-linear models make; `prior="loo"` is the Bayesian reading of `ridge_loo`: the penalty
    alpha chosen by exact leave-one-out error, noise variance s2 = the leave-one-out mean squared
    error (so a model that predicts its reads badly is sampled widely), S = s2 (Xc^T Xc + alpha
    I)^-1. `prior="bootstrap"`: draws are the `ridge_loo` fit (penalty fixed) refitted on reads
    resampled with replacement (bootstrapped Thompson sampling, Osband & Van Roy 2015): the spread
    the data give, with directions no read constrains kept shrunk instead of drawn from a wide
    prior. `sample(rng, S)` -> [f, S] coefficient draws (for Thompson sampling); `predict(X, W)`
    scores rows under them."""

    def __init__(self, prior: str = "evidence", alphas=DEFAULT_ALPHAS):
        self.prior, self.alphas = prior, alphas

    def fit(self, X: np.ndarray, y: np.ndarray) -> BayesianLinear:
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be 'evidence', 'loo' or 'bootstrap', got {self.prior!r}")
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.prior == "evidence":
            from sklearn.linear_model import BayesianRidge

            m = BayesianRidge(fit_intercept=True).fit(X, y)
            self.coef_, self.intercept_ = np.asarray(m.coef_, dtype=np.float64), float(m.intercept_)
            cov = np.asarray(m.sigma_, dtype=np.float64)
            cov = 0.5 * (cov + cov.T)
            jitter = 1e-10 * max(float(np.trace(cov)) / len(cov), 1e-12)
            self.chol_ = np.linalg.cholesky(cov + jitter * np.eye(len(cov)))  # draws: coef + R z
        elif self.prior == "bootstrap":
            self.coef_, self.intercept_, self.alpha_, _ = ridge_loo(X, y, self.alphas)
            self._Xy = (X, y)
        else:
            self.coef_, self.intercept_, self.alpha_, s2 = ridge_loo(X, y, self.alphas)
            Xc = X - X.mean(0)
            L = np.linalg.cholesky(Xc.T @ Xc + self.alpha_ * np.eye(X.shape[1]))
            from scipy.linalg import solve_triangular

            self.chol_ = np.sqrt(s2) * solve_triangular(L.T, np.eye(len(L)), lower=False)  # R R^T = s2 A^-1
        return self

    def sample(self, rng: np.random.Generator, S: int) -> np.ndarray:
        """[f, S] coefficient draws from the posterior."""
        if self.prior == "bootstrap":  # refits on resampled reads, penalty kept; draws differ also by
            X, y = self._Xy  # their intercepts, a constant shift no ranking within one draw sees
            n, f = X.shape
            W = np.empty((f, S))
            for j in range(S):
                b = rng.integers(0, n, n)
                Xc = X[b] - X[b].mean(0)
                W[:, j] = np.linalg.solve(Xc.T @ Xc + self.alpha_ * np.eye(f), Xc.T @ (y[b] - y[b].mean()))
            return W
        return self.coef_[:, None] + self.chol_ @ rng.standard_normal((len(self.coef_), S))

    def predict(self, X: np.ndarray, W: np.ndarray | None = None) -> np.ndarray:
        """[n] posterior-mean scores, or [S, n] scores under the draws W [f, S]."""
        return X @ self.coef_ + self.intercept_ if W is None else (X @ W).T + self.intercept_


class CellRidgePredictor(CellSurrogate, Predictor):
    """`BayesianLinear` on a feature matrix of every cell (`predictors.cells.cell_features`:
    `struct` live-masked isomorphism representative's one-hot, pairwise terms and counts;
    `struct-paths` adds the three-edge path indicators; `additive` the plain edge one-hot).
    Isomorphic cells share a feature row, so they share a prediction. `prior` and `alphas` go to
    `BayesianLinear`; `sample(rng, S)` draws posterior coefficients, `predict_cells(idx, W)`
    scores cells under them."""

    name = "cell-ridge"

    def __init__(self, space="nb201", seed: int = 0, features: str = "struct", prior: str = "evidence",
                 alphas=DEFAULT_ALPHAS):
        super().__init__(space, seed)
        self.features, self.prior, self.alphas = features, prior, alphas

    def _X(self) -> np.ndarray:
        return cell_features(self.space_, self.features)

    def fit_cells(self, idx, y) -> CellRidgePredictor:
        """Fit on cells given by position in `cells(space).archs` (what a search holds)."""
        y = check_targets(self, idx, y)
        self.posterior_ = BayesianLinear(self.prior, self.alphas).fit(self._X()[np.asarray(idx)], y)
        self.n_train_ = len(y)
        return self

    def predict_cells(self, idx, W: np.ndarray | None = None) -> np.ndarray:
        """[n] posterior-mean predictions of cells by position, or [S, n] under draws W [f, S]."""
        self._check_fitted()
        return self.posterior_.predict(self._X()[np.asarray(idx)], W)

    def sample(self, rng: np.random.Generator, S: int) -> np.ndarray:
        """[f, S] posterior coefficient draws (Thompson sampling)."""
        self._check_fitted()
        return self.posterior_.sample(rng, S)

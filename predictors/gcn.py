"""GCN regressors on op-on-node graphs (docs/methods.md section 2; BRP-NAS style).

One model: graph convolutions `H' = ReLU(Â (H W + b))` over `Â = D^-1/2 (A + A^T + I) D^-1/2`
(`encodings.normalised_adjacency`), a mean over the real nodes, a linear head, fitted to
standardised targets by Adam. Two estimators use it, each with the solver its caller's numbers
were made with:
- `GCNPredictor` (registered `gcn`, `gcn-struct`): any space's `graph`; torch autograd,
  minibatches, AdamW with a cosine schedule, MSE plus a pairwise ranking loss.
- `CellGCNPredictor` (the GCN search method's surrogate on enumerable cell spaces): the cell
  graphs of `predictors.cells.cell_graphs`, two layers, full-batch Adam with the gradients
  written out in numpy and warm-started refits; see its docstring for why not torch.

Dense batched matmuls: every space's graph is small and fixed-size (NB201 8 nodes, chain spaces
a few dozen), so torch_geometric would add a dependency and buy nothing. Reconstruction, as
docs/methods.md marks it; padding nodes get only their self loop and are masked out of the mean.
`GCNPredictor(encoding="struct")` (NB201) feeds the graph of the cell's live-masked isomorphism
representative instead of the raw cell.
"""

from __future__ import annotations

import numpy as np

from .base import Predictor, register_predictor
from .cells import CellSurrogate, cached, cell_graphs, check_targets
from .encodings import normalised_adjacency, representative


def standardise(y: np.ndarray) -> tuple[float, float]:
    """(mean, std) the GCNs fit targets in (std 1 for a constant target)."""
    return float(y.mean()), float(y.std() or 1.0)


@register_predictor("gcn")
@register_predictor("gcn-struct", encoding="struct")
class GCNPredictor(Predictor):
    """Graph convolutional regressor; fit time is bounded by `epochs` x ceil(n / batch) steps."""

    def __init__(self, space="nb201", seed: int = 0, encoding: str = "onehot",
                 hidden: int = 64, layers: int = 3, epochs: int = 150, lr: float = 3e-3,
                 weight_decay: float = 1e-4, batch_size: int = 64, rank_weight: float = 0.5,
                 max_steps: int = 3000):
        super().__init__(space, seed)
        self.encoding, self.hidden, self.layers, self.epochs = encoding, hidden, layers, epochs
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.rank_weight, self.max_steps = rank_weight, max_steps

    def _graphs(self, archs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sp = self.space_
        A, F = [], []
        for a in archs:
            if self.encoding == "struct":
                a = representative(sp, a)
            adj, feat = sp.graph(a)
            A.append(adj)
            F.append(feat)
        A, F = np.stack(A), np.stack(F)
        mask = (F.sum(-1) > 0).astype(np.float32)  # padding nodes are all-zero rows
        return normalised_adjacency(A), F, mask

    def _net(self, n_feat: int):
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self, f, h, n_layers):
                super().__init__()
                dims = [f] + [h] * n_layers
                self.convs = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(n_layers))
                self.head = nn.Linear(h, 1)

            def forward(self, a, x, m):
                for lin in self.convs:
                    x = torch.relu(a @ lin(x))
                pooled = (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
                return self.head(pooled).squeeze(-1)

        return Net(n_feat, self.hidden, self.layers)

    def _fit(self, archs, y, prior) -> None:
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.y_mean_, self.y_std_ = standardise(y)
        z = torch.tensor((y - self.y_mean_) / self.y_std_, dtype=torch.float32)
        A, F, M = (torch.from_numpy(t) for t in self._graphs(archs))
        self.n_features_ = F.shape[-1]
        net = self._net(self.n_features_)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        n = len(y)
        bs = min(self.batch_size, n)
        steps_per_epoch = int(np.ceil(n / bs))
        total = min(self.epochs * steps_per_epoch, self.max_steps)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        step = 0
        with _threads(1):
            while step < total:
                perm = rng.permutation(n)
                for i in range(0, n, bs):
                    idx = torch.from_numpy(perm[i:i + bs])
                    pred = net(A[idx], F[idx], M[idx])
                    loss = torch.mean((pred - z[idx]) ** 2)
                    if self.rank_weight > 0 and len(idx) > 1:
                        dz = z[idx][:, None] - z[idx][None, :]
                        dp = pred[:, None] - pred[None, :]
                        sign = torch.sign(dz)
                        w = (sign != 0).float()
                        rank = (torch.nn.functional.softplus(-sign * dp) * w).sum() / w.sum().clamp_min(1)
                        loss = loss + self.rank_weight * rank
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    step += 1
                    if step >= total:
                        break
        self.state_dict_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self._module = None

    def _module_(self):
        import torch

        if getattr(self, "_module", None) is None:
            net = self._net(self.n_features_)
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_dict_.items()})
            net.eval()
            self._module = net
        return self._module

    def _predict(self, archs) -> np.ndarray:
        import torch

        A, F, M = (torch.from_numpy(t) for t in self._graphs(archs))
        with torch.no_grad(), _threads(1):
            z = self._module_()(A, F, M).numpy().astype(np.float64)
        return z * self.y_std_ + self.y_mean_

    def _state(self, folder):
        arrays = {f"sd.{k}": v for k, v in self.state_dict_.items()}
        return {"y_mean": self.y_mean_, "y_std": self.y_std_, "n_features": self.n_features_}, arrays

    def _set_state(self, state, arrays, folder) -> None:
        self.y_mean_, self.y_std_ = float(state["y_mean"]), float(state["y_std"])
        self.n_features_ = int(state["n_features"])
        self.state_dict_ = {k[3:]: v for k, v in arrays.items() if k.startswith("sd.")}
        self._module = None


class CellGCNPredictor(CellSurrogate, Predictor):
    """The GCN on `cell_graphs` of an enumerable cell space (nodes know their op, edge position and
    whether they are live; isomorphic cells share a graph): `H1 = ReLU(Â (X W1 + b1))`,
    `H2 = ReLU(Â (H1 W2 + b2))`, mean over nodes, linear head; full-batch Adam (weight decay
    added to the gradient) on standardised targets (MSE), `epochs` steps.

    Plain numpy with the gradients written out: the graphs are 8 nodes, and torch's per-op
    overhead made a 200-step fit take seconds on a loaded 2-core machine; the GCN search method
    refits it every round of every search of a leaderboard. With `warm_start=True` (default) a
    second `fit` continues from the current weights and Adam state for `refit_epochs` steps
    (refits after each round cost `refit_epochs`, not `epochs`), scikit-learn's `warm_start`.
    The weights are drawn from `seed` at the first fit. Not registered: it needs an enumerable
    cell graph space, and the registered predictors run on every space (`gcn` there)."""

    name = "cell-gcn"

    def __init__(self, space="nb201", seed: int = 0, hidden: int = 32, epochs: int = 200,
                 refit_epochs: int = 60, lr: float = 0.01, weight_decay: float = 1e-4,
                 warm_start: bool = True):
        super().__init__(space, seed)
        self.hidden, self.epochs, self.refit_epochs = hidden, epochs, refit_epochs
        self.lr, self.weight_decay, self.warm_start = lr, weight_decay, warm_start

    def _graphs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Â, Â X, Â 1) of every cell: the first layer is Â X W1 + (Â 1) b1, so Â X is
        computed once per process, not per step."""
        space = self.space_
        A, X = cell_graphs(space)
        return A, cached(space, "gcn-AX", lambda: (A @ X).astype(np.float32)), \
            cached(space, "gcn-A1", lambda: A.sum(-1).astype(np.float32))

    def _init(self, n_feat: int) -> None:
        g = np.random.default_rng(self.seed)
        F, h = n_feat, self.hidden
        self.params_ = {"W1": (g.standard_normal((F, h)) * np.sqrt(2.0 / F)).astype(np.float32),
                        "b1": np.zeros(h, np.float32),
                        "W2": (g.standard_normal((h, h)) * np.sqrt(2.0 / h)).astype(np.float32),
                        "b2": np.zeros(h, np.float32),
                        "w": (g.standard_normal(h) * np.sqrt(1.0 / h)).astype(np.float32),
                        "c": np.zeros(1, np.float32)}
        self._adam = ({k: np.zeros_like(v) for k, v in self.params_.items()},
                      {k: np.zeros_like(v) for k, v in self.params_.items()})
        self._step = 0

    def _forward(self, A, AX, A1):
        p = self.params_
        Z1 = AX @ p["W1"] + A1[..., None] * p["b1"]
        H1 = np.maximum(Z1, 0)
        Z2 = A @ (H1 @ p["W2"] + p["b2"])
        H2 = np.maximum(Z2, 0)
        g = H2.mean(1)
        return g @ p["w"] + p["c"][0], (Z1, H1, Z2, g)

    def fit_cells(self, idx, y) -> CellGCNPredictor:
        """Fit on cells given by position in `cells(space).archs` (what a search holds)."""
        y = check_targets(self, idx, y)
        A_all, AX_all, A1_all = self._graphs()
        warm = self.warm_start and hasattr(self, "params_")
        if not warm:
            self._init(AX_all.shape[-1])
        self.y_mean_, self.y_std_ = standardise(y)
        t = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
        idx = np.asarray(idx, dtype=np.int64)
        A, AX, A1 = A_all[idx], AX_all[idx], A1_all[idx]  # gathered once per fit
        n, V = A1.shape
        h = self.hidden
        AT = np.swapaxes(A, 1, 2)
        p = self.params_
        m, v = self._adam
        b1, b2, eps = 0.9, 0.999, 1e-8
        for _ in range(self.refit_epochs if warm else self.epochs):
            pred, (Z1, H1, Z2, g) = self._forward(A, AX, A1)
            dp = (2.0 / n) * (pred - t)
            grads = {"w": g.T @ dp, "c": np.array([dp.sum()], np.float32)}
            dZ2 = np.broadcast_to((dp[:, None] * p["w"][None, :])[:, None, :] / V, Z2.shape) * (Z2 > 0)
            dU2 = AT @ dZ2
            grads["W2"] = H1.reshape(-1, h).T @ dU2.reshape(-1, h)
            grads["b2"] = dU2.sum((0, 1))
            dZ1 = (dU2 @ p["W2"].T) * (Z1 > 0)
            grads["W1"] = AX.reshape(n * V, -1).T @ dZ1.reshape(-1, h)
            grads["b1"] = (A1[..., None] * dZ1).sum((0, 1))
            self._step += 1
            for k, gk in grads.items():
                gk = gk.astype(np.float32) + self.weight_decay * p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh = m[k] / (1 - b1 ** self._step)
                vh = v[k] / (1 - b2 ** self._step)
                p[k] = p[k] - self.lr * mh / (np.sqrt(vh) + eps)
        self.n_train_ = len(y)
        return self

    def predict_cells(self, idx, chunk: int = 4096, embed: bool = False):
        """[n] predictions of cells by position; with `embed=True` also their [n, hidden] pooled
        graph embeddings (the head's input; the GCN method's neural-linear posterior reads them)."""
        self._check_fitted()
        A_all, AX_all, A1_all = self._graphs()
        idx = np.asarray(idx, dtype=np.int64)
        out = [self._forward(A_all[idx[s:s + chunk]], AX_all[idx[s:s + chunk]], A1_all[idx[s:s + chunk]])
               for s in range(0, len(idx), chunk)]
        z = np.concatenate([o[0] for o in out]) if out else np.zeros(0)
        pred = z.astype(np.float64) * self.y_std_ + self.y_mean_
        if not embed:
            return pred
        g = np.concatenate([o[1][3] for o in out]) if out else np.zeros((0, self.hidden))
        return pred, g.astype(np.float64)


class _threads:
    """Run torch single-threaded: tiny graphs gain nothing from threads, and results stay
    bit-identical from run to run (the reduction order does not depend on the thread count)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.old)

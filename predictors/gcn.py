"""GCN regressor on the space's graph (docs/methods.md section 2; BRP-NAS-style op-on-node graphs).

Plain torch, dense batched matmuls: every space's graph is small and fixed-size (NB201 8 nodes,
chain spaces a few dozen), so torch_geometric would add a dependency and buy nothing.
Reconstruction, as docs/methods.md marks it: `H' = ReLU(Â H W)` with `Â = D^-1/2 (A + A^T + I) D^-1/2`
(data flow made symmetric so information flows both ways; padding nodes get only their self
loop and are masked out of the mean), mean over real nodes, linear head. Loss: MSE on
standardised targets plus, if `rank_weight > 0`, a pairwise logistic ranking loss over the
pairs in each batch. `encoding="struct"` (NB201) feeds the graph of the cell's live-masked
isomorphism representative instead of the raw cell.
"""

from __future__ import annotations

import numpy as np

from .base import Predictor, register_predictor
from .encodings import representative


def normalised_adjacency(adj: np.ndarray, feat: np.ndarray) -> np.ndarray:
    """[.., n, n] symmetric-normalised adjacency with self loops on every node."""
    a = adj + np.swapaxes(adj, -1, -2)
    a = (a > 0).astype(np.float32) + np.eye(adj.shape[-1], dtype=np.float32)
    d = a.sum(-1)
    dinv = 1.0 / np.sqrt(d)
    return (a * dinv[..., :, None] * dinv[..., None, :]).astype(np.float32)


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
        return normalised_adjacency(A, F), F, mask

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
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std() or 1.0)
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

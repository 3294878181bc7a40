"""Tiny NB201 problems built from generated tables (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hwnas.search.spaces import create_space


@pytest.fixture(scope="session")
def nb201_tables(tmp_path_factory):
    """An accuracy table and a latency table over all 15,625 cells, with an additive structure
    plus noise, so the constrained optimum is known and not trivial."""
    sp = create_space("nb201")
    archs = list(sp.iter_all())
    A = np.asarray(archs)
    rng = np.random.default_rng(0)
    acc_w = np.array([0.0, 1.0, 3.0, 4.0, 0.5])  # none, skip, conv1x1, conv3x3, pool
    lat_w = np.array([0.0, 0.1, 1.0, 2.5, 0.4])
    acc = 60 + acc_w[A].sum(1) + rng.normal(0, 0.5, len(A))
    lat = 1 + lat_w[A].sum(1) + rng.normal(0, 0.05, len(A))
    d = tmp_path_factory.mktemp("nb201")
    strs = [sp.to_str(a) for a in archs]
    pd.DataFrame({"arch_idx": range(len(A)), "arch_str": strs, "acc": acc}).to_csv(d / "acc.csv", index=False)
    pd.DataFrame({"arch_idx": range(len(A)), "arch_str": strs, "dev": lat}).to_csv(d / "lat_ms.csv", index=False)
    return d / "acc.csv", d / "lat_ms.csv", acc, lat

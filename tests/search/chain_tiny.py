"""A tiny chain space (the mbv3 preset shrunk to 8x8 inputs and narrow stages) with a synthetic
block table, for fast tests of the one-shot methods on chain spaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hwnas.search.constraints import resolve
from hwnas.search.spaces.mbv3 import MBV3Space


def tiny_space() -> MBV3Space:
    return MBV3Space("mbv3-fmnist", input_shape=(1, 8, 8), stem_channels=8, stem_stride=1, widths=(8, 16),
                     strides=(1, 2), se=(False, True), acts=("relu", "hswish"), head_expand=32, depths=(1, 2))


def tiny_table(space, path, seed: int = 0):
    """Block latency ~ kernel^2 x expansion (+10% noise), fixed parts 1 ms; returns
    (path, bound at the median of random archs, bound constraints)."""
    rng = np.random.default_rng(seed)
    rows = [(b.key, "block", 0.02 * b.params["kernel"] ** 2 * b.params["expand"] / 9 * (1 + 0.1 * rng.random()))
            for b in space.all_blocks()]
    rows += [(b.key, "fixed", 1.0) for b in space.fixed_blocks()]
    pd.DataFrame(rows, columns=["block_key", "kind", "latency_norm_ms"]).to_csv(path, index=False)
    loose = resolve(space, [f"latency_ms<=1000@table:{path}"])[0]
    bound = float(np.median(loose.values([space.sample(rng) for _ in range(300)])))
    return path, bound, resolve(space, [f"latency_ms<={bound}@table:{path}"])

"""Architecture encodings for predictors, read from the space that owns them.

A space that implements `core.capabilities.FeatureEncodable` names its encodings (`onehot`,
`struct`, `ops`, `cost`, `graf`, `graf-struct` for the built-in spaces; the space's module
describes each) and computes them in `encode_as`. Any other space offers `onehot`, its own
`encode`. Predictors know no space by name and import nothing from `search`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hwnas.core.capabilities import CellGraph, FeatureEncodable


def encodings(space) -> tuple[str, ...]:
    """The encoding names `space` offers."""
    return tuple(space.encodings) if isinstance(space, FeatureEncodable) else ("onehot",)


def encode(space, archs: Sequence, encoding: str = "onehot") -> np.ndarray:
    """[n, f] float32 features of `archs` under `encoding` (memory: n * f * 4 bytes)."""
    if isinstance(space, FeatureEncodable):
        return np.asarray(space.encode_as(archs, encoding), dtype=np.float32)
    if encoding != "onehot":
        raise ValueError(f"space {space.name!r} offers only the 'onehot' encoding (it is not "
                         f"FeatureEncodable); got {encoding!r}")
    if not len(archs):
        return np.zeros((0, len(space.encode(space.sample(np.random.default_rng(0))))), dtype=np.float32)
    return np.stack([space.encode(a) for a in archs]).astype(np.float32, copy=False)


def encoding_size(space, encoding: str = "onehot") -> int:
    return int(encode(space, [space.sample(np.random.default_rng(0))], encoding).shape[1])


def representative(space, arch):
    """A cell graph's isomorphism-class representative (dead edges masked); other archs as given."""
    return space.representative(arch) if isinstance(space, CellGraph) else space.validate(arch)


def normalised_adjacency(adj: np.ndarray) -> np.ndarray:
    """[.., n, n] float32 `D^-1/2 (A + A^T + I) D^-1/2` of [.., n, n] adjacencies: the data flow
    made symmetric (information flows both ways) with a self loop on every node; the graph
    convolutions of `predictors.gcn` read it."""
    a = adj + np.swapaxes(adj, -1, -2)
    a = (a > 0).astype(np.float32) + np.eye(adj.shape[-1], dtype=np.float32)
    d = a.sum(-1)
    dinv = 1.0 / np.sqrt(d)
    return (a * dinv[..., :, None] * dinv[..., None, :]).astype(np.float32)

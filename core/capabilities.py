"""What a search space can do, as small interfaces checked with `isinstance` (Archai style).

The predictor and search layers ask a space for a capability instead of testing its name:
`isinstance(space, Enumerable)` before enumerating, `isinstance(space, Chain)` before reading
stages, `isinstance(space, FeatureEncodable)` for the encodings the space owns. The interfaces
live here, at the bottom of the stack, so `predictors` can use spaces without importing `search`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

#: The largest space the suite enumerates in full (argmax over all cells, exact optima).
ENUMERATION_LIMIT = 100_000


class Enumerable(abc.ABC):
    """A finite space small enough to list: every arch, and a stable integer index of each."""

    @abc.abstractmethod
    def iter_all(self) -> Iterator[Any]:
        """Every architecture, in the space's own index order."""

    @abc.abstractmethod
    def to_index(self, arch) -> int: ...

    @abc.abstractmethod
    def from_index(self, idx: int): ...


def is_enumerable(space) -> bool:
    """True when the space can be listed and is within ENUMERATION_LIMIT archs."""
    return isinstance(space, Enumerable) and space.size() <= ENUMERATION_LIMIT


class Chain(abc.ABC):
    """A chain of stages (depth per stage, a choice per block): BINAS's a[s,b,c] / beta[s,d].

    Implementations have `stages`, each with `choices` (names), `depths` (a range, from
    `min_depth` to `max_depth`) and `width`; an arch is a tuple per stage of choice indices, one
    per present block. The one-shot models are built from `block_spec` and the space's
    `build_block` / `fixed_blocks` (stem and head).
    """

    stages: tuple = ()

    @abc.abstractmethod
    def block_spec(self, stage: int, first: bool, choice: int):
        """The `BlockSpec` (table key, input shape, build parameters) of choice `choice` at a block
        of stage `stage`, the stage's first block or a later one."""

    @abc.abstractmethod
    def smallest(self, cost=None):
        """The cheapest arch under `cost(block_key)` (default: the fewest, lightest blocks)."""


class CellGraph(abc.ABC):
    """A DAG cell whose edges carry ops (NB201 style): liveness and isomorphism are known.

    An arch is a tuple of op indices, one per edge. `ops[0]` is `none` (the zero op: the edge is
    absent); node 0 is the cell's input, the largest node its output. The one-shot methods build
    their supernets from `edges`, `ops`, `make_op` and `cell_network`, never from a space's module.
    """

    #: op names; an arch holds an index into them per edge, `ops[0] == "none"`
    ops: tuple[str, ...] = ()
    #: (to, from) nodes of every edge, in arch order, sorted by `to`
    edges: tuple[tuple[int, int], ...] = ()

    @abc.abstractmethod
    def make_op(self, name: str, channels: int):
        """The `torch.nn.Module` of op `name` on `channels` channels (shape preserving)."""

    @abc.abstractmethod
    def cell_network(self, cell_factory, C: int | None = None, N: int | None = None, stages: int = 3,
                     in_channels: int | None = None, num_classes: int | None = None):
        """The space's macro skeleton around cells made by `cell_factory(channels)`: a module with
        `stem`, `cells` (the cells and the reduction blocks between stages, in order) and `head`;
        defaults are the space's own widths, depths and shapes."""

    @abc.abstractmethod
    def live_edges(self, arch) -> np.ndarray:
        """Boolean mask of edges on a path from input to output (not cut off by `none`)."""

    def is_degenerate(self, arch) -> bool:
        """True when `none` ops cut the input from the output (no live edge)."""
        return not self.live_edges(arch).any()

    @abc.abstractmethod
    def canonical(self, arch) -> str:
        """A string equal for functionally identical (isomorphic, dead-edge masked) cells."""

    @abc.abstractmethod
    def representative(self, arch):
        """One arch per isomorphism class, dead edges set to the empty op: equal for all the
        archs `canonical` calls equal (what structure-aware predictors feed their models)."""


class FeatureEncodable(abc.ABC):
    """The space owns its feature encodings (one-hot, structure-aware, op counts, costs ...)."""

    @property
    @abc.abstractmethod
    def encodings(self) -> tuple[str, ...]:
        """Names accepted by `encode_as`, 'onehot' first."""

    @abc.abstractmethod
    def encode_as(self, archs: Sequence, encoding: str) -> np.ndarray:
        """[len(archs), f] float32 matrix; unknown names raise ValueError listing `encodings`."""

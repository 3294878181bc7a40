"""One SearchSpace API for every space: sampling, variation, encodings, string round trips,
table keys for measured blocks, and `build()` to a PyTorch module.

torch is imported only inside the methods that build modules, so predictors and table code can
use spaces on a machine without torch.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arch = Hashable  # each space defines its own immutable architecture type


class ArchError(ValueError):
    """A malformed or out-of-space architecture; the message names the bad field."""


@dataclass(frozen=True)
class BlockSpec:
    """A measurable unit: a stable table key plus what is needed to build and time it.

    `key` is unique inside a space and stable across versions: it is the row key of the device
    tables. `params` holds everything the space's `build_block` needs.
    """

    key: str
    input_shape: tuple[int, ...]  # without batch dimension, (C, H, W)
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class SearchSpace(abc.ABC):
    """Abstract base of all spaces (Archai-style small capability set in one class)."""

    name: str = ""
    #: (C, H, W) of the network input, without batch.
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10

    # ---- identity and validation -------------------------------------------------------
    @abc.abstractmethod
    def to_str(self, arch: Arch) -> str:
        """Canonical, human-readable string; `from_str(to_str(a)) == a`."""

    @abc.abstractmethod
    def from_str(self, s: str) -> Arch:
        """Parse a string; raises ArchError naming the bad field."""

    @abc.abstractmethod
    def validate(self, arch: Arch) -> Arch:
        """Return `arch` if it belongs to the space, else raise ArchError naming the bad field."""

    @abc.abstractmethod
    def size(self) -> int:
        """Number of distinct architectures (exact integer)."""

    def iter_all(self) -> Iterator[Arch]:
        """Every architecture, for finite small spaces; others raise."""
        raise NotImplementedError(f"space {self.name!r} is too large to enumerate ({self.size():.3g} archs)")

    # ---- sampling and variation ---------------------------------------------------------
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """One architecture drawn uniformly over the space's choices."""

    @abc.abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator, p: float = 0.1) -> Arch:
        """Resample each choice with probability p; always changes at least one choice."""

    @abc.abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover of two parents, result valid."""

    def sample_draws(self, k: int, rng: np.random.Generator) -> list[Arch]:
        """k independent draws, exactly what k calls of `sample` return and leave in `rng` (a
        space may override it to draw them at once; the feasible sampler draws in batches)."""
        return [self.sample(rng) for _ in range(k)]

    def sample_many(self, n: int, rng: np.random.Generator, unique: bool = True) -> list[Arch]:
        """n samples; distinct ones when `unique` and the space is large enough."""
        out: list[Arch] = []
        seen: set = set()
        tries = 0
        while len(out) < n:
            a = self.sample(rng)
            tries += 1
            if unique and a in seen and tries < 50 * n:
                continue
            seen.add(a)
            out.append(a)
        return out

    # ---- encodings ----------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """Fixed-length float one-hot vector (the baselines' input)."""

    def encode_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.stack([self.encode(a) for a in archs]).astype(np.float32)

    @abc.abstractmethod
    def graph(self, arch: Arch) -> tuple[np.ndarray, np.ndarray]:
        """(adjacency [n, n], node features [n, f]) with n and f fixed for the space.

        Adjacency is directed data flow, without self loops; padding nodes are all-zero rows.
        """

    # ---- hardware tables ----------------------------------------------------------------
    @abc.abstractmethod
    def blocks(self, arch: Arch) -> list[BlockSpec]:
        """The variable blocks of `arch`, in execution order, one entry per occurrence."""

    @abc.abstractmethod
    def fixed_blocks(self) -> list[BlockSpec]:
        """Parts every architecture has (stem, reductions, head): the table's constant term."""

    @abc.abstractmethod
    def all_blocks(self) -> Iterator[BlockSpec]:
        """Every distinct variable block of the space (what `hwnas profile` measures)."""

    @abc.abstractmethod
    def build_block(self, block: BlockSpec):
        """A `torch.nn.Module` computing exactly that block on `block.input_shape`."""

    @abc.abstractmethod
    def build(self, arch: Arch, **kwargs):
        """A stand-alone `torch.nn.Module` for `arch` (input `input_shape`, `num_classes` logits)."""

    # ---- conveniences -------------------------------------------------------------------
    def block_keys(self, arch: Arch) -> list[str]:
        return [b.key for b in self.blocks(arch)]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size(),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

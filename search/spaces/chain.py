"""Chain spaces: a stem, stages of blocks with a per-stage depth, a head.

An arch is a tuple of stages, each a tuple of block-choice indices whose length is the stage's
depth. This is exactly the structure BINAS's bilinear estimator and MGAS/BayesNAS depth gates
work on: `stages[s].choices` are the `c` of `a[s,b,c]`, the depth range the `d` of `beta[s,d]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from hwnas.core.capabilities import Chain

from .base import ArchError, BlockSpec, SearchSpace
from .encoders import EncodedByFamily


@dataclass(frozen=True)
class StageSpec:
    """One stage: output width, stride of its first block, depth range, block choices."""

    width: int
    stride: int
    min_depth: int
    max_depth: int
    choices: tuple[str, ...]
    se: bool = False
    act: str = "relu"

    @property
    def depths(self) -> range:
        return range(self.min_depth, self.max_depth + 1)


ChainArch = tuple[tuple[int, ...], ...]


class ChainSpace(SearchSpace, Chain, EncodedByFamily):
    """Shared logic of `mbv3-*` and `fbnet`; subclasses describe blocks and build modules."""

    ENCODER_FAMILY = "chain"

    stages: tuple[StageSpec, ...] = ()
    #: channels and spatial size entering the first stage (after the stem)
    stem_channels: int = 16
    stem_stride: int = 1
    block_sep = "-"
    stage_sep = "|"

    # ---- geometry -------------------------------------------------------------------
    def stage_io(self) -> list[tuple[int, int, int]]:
        """Per stage: (input channels, input resolution, output resolution)."""
        out = []
        c, r = self.stem_channels, _down(self.input_shape[1], self.stem_stride)
        for st in self.stages:
            r_out = _down(r, st.stride)
            out.append((c, r, r_out))
            c, r = st.width, r_out
        return out

    @property
    def choice_names(self) -> tuple[str, ...]:
        """Union of all stages' choice names, in first-seen order (graph feature vocabulary)."""
        names: list[str] = []
        for st in self.stages:
            names.extend(c for c in st.choices if c not in names)
        return tuple(names)

    # ---- identity -------------------------------------------------------------------
    def size(self) -> int:
        total = 1
        for st in self.stages:
            total *= sum(len(st.choices) ** d for d in st.depths)
        return total

    def validate(self, arch) -> ChainArch:
        if not isinstance(arch, tuple | list) or len(arch) != len(self.stages):
            raise ArchError(
                f"{self.name} arch must have {len(self.stages)} stages, got "
                f"{len(arch) if isinstance(arch, tuple | list) else type(arch).__name__}"
            )
        out = []
        for s, (blocks, st) in enumerate(zip(arch, self.stages, strict=True)):
            if not isinstance(blocks, tuple | list):
                raise ArchError(f"{self.name} stage {s} must be a tuple of choices, got {blocks!r}")
            if not st.min_depth <= len(blocks) <= st.max_depth:
                raise ArchError(
                    f"{self.name} stage {s} has depth {len(blocks)}; allowed {st.min_depth}..{st.max_depth}"
                )
            for b, c in enumerate(blocks):
                if not isinstance(c, int | np.integer) or not 0 <= c < len(st.choices):
                    raise ArchError(
                        f"{self.name} stage {s} block {b} has choice {c!r}; expected 0..{len(st.choices) - 1}"
                    )
            out.append(tuple(int(c) for c in blocks))
        return tuple(out)

    def to_str(self, arch) -> str:
        a = self.validate(arch)
        return self.stage_sep.join(
            self.block_sep.join(st.choices[c] for c in blocks) for blocks, st in zip(a, self.stages, strict=True)
        )

    def from_str(self, s: str) -> ChainArch:
        if not isinstance(s, str):
            raise ArchError(f"{self.name} arch string must be a str, got {type(s).__name__}")
        parts = s.strip().split(self.stage_sep)
        if len(parts) != len(self.stages):
            raise ArchError(
                f"{self.name} arch string needs {len(self.stages)} stages separated by "
                f"{self.stage_sep!r}, got {len(parts)}"
            )
        arch = []
        for si, (part, st) in enumerate(zip(parts, self.stages, strict=True)):
            names = [n for n in part.strip().split(self.block_sep) if n]
            idx = []
            for b, name in enumerate(names):
                if name not in st.choices:
                    raise ArchError(
                        f"{self.name} stage {si} block {b}: unknown choice {name!r}; expected one of {', '.join(st.choices)}"
                    )
                idx.append(st.choices.index(name))
            arch.append(tuple(idx))
        return self.validate(tuple(arch))

    # ---- sampling -------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> ChainArch:
        return tuple(
            tuple(int(c) for c in rng.integers(0, len(st.choices), size=int(rng.integers(st.min_depth, st.max_depth + 1))))
            for st in self.stages
        )

    def smallest(self, cost=None) -> ChainArch:
        """Minimum depth everywhere, each block's cheapest choice by `cost(stage, choice)`."""
        def pick(s, st):
            return 0 if cost is None else int(np.argmin([cost(s, c) for c in range(len(st.choices))]))

        return tuple(tuple(pick(s, st) for _ in range(st.min_depth)) for s, st in enumerate(self.stages))

    def mutate(self, arch, rng: np.random.Generator, p: float = 0.1) -> ChainArch:
        a = self.validate(arch)
        while True:
            out = []
            for blocks, st in zip(a, self.stages, strict=True):
                blocks = list(blocks)
                if st.min_depth < st.max_depth and rng.random() < p:
                    d = int(rng.integers(st.min_depth, st.max_depth + 1))
                    blocks = (blocks + [int(rng.integers(len(st.choices))) for _ in range(d)])[:d]
                for b in range(len(blocks)):
                    if rng.random() < p:
                        blocks[b] = int(rng.integers(len(st.choices)))
                out.append(tuple(blocks))
            out = tuple(out)
            if out != a:
                return out

    def crossover(self, a, b, rng: np.random.Generator) -> ChainArch:
        a, b = self.validate(a), self.validate(b)
        out = []
        for sa, sb in zip(a, b, strict=True):
            depth = len(sa) if rng.random() < 0.5 else len(sb)
            blocks = []
            for i in range(depth):
                opts = [x[i] for x in (sa, sb) if i < len(x)]
                blocks.append(int(opts[int(rng.integers(len(opts)))]))
            out.append(tuple(blocks))
        return tuple(out)

    # ---- encodings ------------------------------------------------------------------
    def encode(self, arch) -> np.ndarray:
        """Per stage: depth one-hot (if variable), then one-hot per block slot (zeros if absent)."""
        a = self.validate(arch)
        parts = []
        for blocks, st in zip(a, self.stages, strict=True):
            if st.min_depth < st.max_depth:
                d = np.zeros(st.max_depth - st.min_depth + 1, dtype=np.float32)
                d[len(blocks) - st.min_depth] = 1.0
                parts.append(d)
            slots = np.zeros((st.max_depth, len(st.choices)), dtype=np.float32)
            slots[np.arange(len(blocks)), list(blocks)] = 1.0
            parts.append(slots.ravel())
        return np.concatenate(parts)

    def graph(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """Nodes: input, every block slot (absent ones are zero rows), output; a chain of edges.

        Features: [is_input, is_output, one-hot choice (space vocabulary), one-hot stage].
        """
        a = self.validate(arch)
        vocab = {n: i for i, n in enumerate(self.choice_names)}
        n_slots = sum(st.max_depth for st in self.stages)
        n = n_slots + 2
        nf = 2 + len(vocab) + len(self.stages)
        adj = np.zeros((n, n), dtype=np.float32)
        feat = np.zeros((n, nf), dtype=np.float32)
        feat[0, 0] = 1.0
        feat[n - 1, 1] = 1.0
        prev, base = 0, 1
        for s, (blocks, st) in enumerate(zip(a, self.stages, strict=True)):
            for b, c in enumerate(blocks):
                node = base + b
                feat[node, 2 + vocab[st.choices[c]]] = 1.0
                feat[node, 2 + len(vocab) + s] = 1.0
                adj[prev, node] = 1.0
                prev = node
            base += st.max_depth
        adj[prev, n - 1] = 1.0
        return adj, feat

    # ---- hardware tables ------------------------------------------------------------
    def block_spec(self, stage: int, first: bool, choice: int) -> BlockSpec:
        """The table row of block `choice` at stage `stage`, first block of the stage or not."""
        raise NotImplementedError

    def blocks(self, arch) -> list[BlockSpec]:
        a = self.validate(arch)
        return [self.block_spec(s, b == 0, c) for s, blocks in enumerate(a) for b, c in enumerate(blocks)]

    def build(self, arch, **kwargs):
        """The network of `arch`: the fixed stem and head around its blocks, each from `build_block`."""
        from .mbconv import ChainNetwork

        stem, head = (self.build_block(b) for b in self.fixed_blocks())
        return ChainNetwork(stem, [self.build_block(b) for b in self.blocks(arch)], head)

    def all_blocks(self) -> Iterator[BlockSpec]:
        seen: set[str] = set()
        for s, st in enumerate(self.stages):
            for first in ((True, False) if st.max_depth > 1 else (True,)):
                for c in range(len(st.choices)):
                    spec = self.block_spec(s, first, c)
                    if spec.key not in seen:
                        seen.add(spec.key)
                        yield spec

    def describe(self) -> dict:
        d = super().describe()
        d["stages"] = [
            {"width": st.width, "stride": st.stride, "depths": list(st.depths), "choices": list(st.choices), "se": st.se, "act": st.act}
            for st in self.stages
        ]
        return d


def _down(r: int, stride: int) -> int:
    return (r + stride - 1) // stride


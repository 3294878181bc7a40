"""A space's one-shot models, by variant (NASLib's `adapt_search_space`): the one-shot methods ask
for the supernet they train and keep only their algorithm (losses, priors, scores, decoding).

Each variant is built from a capability of the space, never from its modules:

| variant  | capability  | model                                                            | used by          |
| -------- | ----------- | ---------------------------------------------------------------- | ---------------- |
| `mixed`  | `Chain`     | every choice per block position, gated per op / channel / depth | MGAS, BayesNAS   |
| `gated`  | `CellGraph` | every op per edge, gated per op, filter and conv weight          | MGAS             |
| `switch` | `CellGraph` | every op per edge, scaled by origin and op switches              | BayesNAS         |
| `fair`   | either      | an independent module per candidate, one path per forward        | DI-NAS           |
"""

from __future__ import annotations

from hwnas.core.capabilities import CellGraph, Chain

#: variant -> the capabilities that can build it
VARIANTS = {"mixed": (Chain,), "gated": (CellGraph,), "switch": (CellGraph,), "fair": (Chain, CellGraph)}


def build_one_shot(space, variant: str, **kwargs):
    """The `variant` one-shot model of `space` (keyword arguments go to the model's constructor)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown one-shot variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if not isinstance(space, VARIANTS[variant]):
        need = " or ".join(c.__name__ for c in VARIANTS[variant])
        raise TypeError(f"space {space.name!r} cannot build a {variant!r} one-shot model: it needs the {need} "
                        "capability (core.capabilities)")
    if variant == "mixed":
        from .mixed_chain import MixedChainNet

        return MixedChainNet(space, **kwargs)
    if variant == "gated":
        from .gated_cell import GatedCellNet

        return GatedCellNet(space, **kwargs)
    if variant == "switch":
        from .switch_cell import SwitchNetwork

        return SwitchNetwork(space, **kwargs)
    from .fair import FairCellSupernet, FairChainSupernet

    return (FairChainSupernet if isinstance(space, Chain) else FairCellSupernet)(space, **kwargs)

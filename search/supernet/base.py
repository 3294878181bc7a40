"""The supernet interface and its registry (timm-style: register / list / create).

A supernet is one `nn.Module` holding the weights of every architecture of a space. The active
subnet is chosen per forward (`forward(x, arch)`), and `extract(arch)` copies the shared weights
into the space's own stand-alone `build(arch)` module, so a subnet evaluated inside the supernet
and the network deployed or timed are the same function.
"""

from __future__ import annotations

import fnmatch

import numpy as np
import torch
from hwnas.core.registry import Registry
from torch import nn

_SUPERNETS = Registry("supernet for")


class Supernet(nn.Module):
    """Base class: subclasses hold shared weights for `space` and implement `forward(x, arch)`."""

    space = None

    def sample(self, rng: np.random.Generator):
        """One subnet drawn uniformly over the space's choices (uniform path sampling)."""
        return self.space.sample(rng)

    def largest(self):
        """The largest subnet (sandwich rule's upper end)."""
        raise NotImplementedError

    def smallest(self):
        """The smallest subnet (sandwich rule's lower end)."""
        raise NotImplementedError

    def extract(self, arch) -> nn.Module:
        """A stand-alone `space.build(arch)` module carrying this supernet's weights."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints so `create_supernet` can rebuild it."""
        return {}


#: Decorator: register a factory `f(space, **kw)` for spaces whose name matches the pattern.
register_supernet = _SUPERNETS.register
list_supernets = _SUPERNETS.names


def create_supernet(space, **kwargs) -> Supernet:
    """The supernet of `space` (a SearchSpace or its registered name)."""
    from hwnas.search.spaces import create_space

    sp = create_space(space)
    for pattern, factory in _SUPERNETS.items():
        if fnmatch.fnmatch(sp.name, pattern):
            return factory(sp, **kwargs)
    raise LookupError(
        f"no supernet for space {sp.name!r}; supernets exist for: {', '.join(list_supernets())}"
    )


@torch.no_grad()
def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    if dst.shape != src.shape:
        raise RuntimeError(f"shape mismatch extracting a subnet: {tuple(src.shape)} -> {tuple(dst.shape)}")
    dst.copy_(src)

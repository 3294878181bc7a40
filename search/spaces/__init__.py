"""Search spaces behind one API; the registry finds the built-in spaces on its first look-up
(core.registry.BUILTINS), as it finds other packages' spaces (entry points `hwnas.spaces`)."""

from .base import Arch, ArchError, BlockSpec, SearchSpace
from .registry import create_space, list_spaces, register_space

__all__ = [
    "Arch",
    "ArchError",
    "BlockSpec",
    "SearchSpace",
    "create_space",
    "list_spaces",
    "register_space",
]

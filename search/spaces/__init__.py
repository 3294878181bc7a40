"""Search spaces behind one API; importing this package registers every built-in space."""

from . import fbnet, mbv3, nb201  # noqa: E402,F401  (registration side effects)
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

"""Spaces by name (timm-style): `register_space`, `list_spaces`, `create_space`."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from .base import SearchSpace

_SPACES: dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str):
    """Decorator: register a zero-argument factory (or class) under `name`."""

    def deco(factory):
        if name in _SPACES:
            raise ValueError(f"space {name!r} is registered twice")
        _SPACES[name] = factory
        return factory

    return deco


def list_spaces(pattern: str = "*") -> list[str]:
    return sorted(n for n in _SPACES if fnmatch.fnmatch(n, pattern))


def create_space(name: str, **kwargs) -> SearchSpace:
    if isinstance(name, SearchSpace):
        return name
    try:
        factory = _SPACES[name]
    except KeyError:
        raise KeyError(
            f"unknown space {name!r}; known spaces: {', '.join(list_spaces())} (see `hwnas spaces`)"
        ) from None
    return factory(**kwargs)

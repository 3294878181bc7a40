"""Spaces by name (timm-style): `register_space`, `list_spaces`, `create_space`."""

from __future__ import annotations

from hwnas.core.registry import Registry

from .base import SearchSpace

_SPACES: Registry = Registry("space")
#: Decorator: register a zero-argument factory (or class) under `name`.
register_space = _SPACES.register
list_spaces = _SPACES.names


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

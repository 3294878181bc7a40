"""Spaces by name (timm-style): `register_space`, `list_spaces`, `create_space`."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from .base import SearchSpace


class Registry(dict):
    """Name -> factory, filled by a decorator: the part every registry of the search and
    predictor layers shares (spaces, supernets, executors, methods, predictors). Each keeps
    its own `create_*`, whose error says what to do for that kind."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, name: str, factory: Callable) -> None:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = factory

    def register(self, name: str):
        """Decorator: register `factory` (a class or function) under `name`; returns it unchanged."""

        def deco(factory):
            self.add(name, factory)
            return factory

        return deco

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self if fnmatch.fnmatch(n, pattern))


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

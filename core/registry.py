"""One name -> factory registry with per-entry metadata (timm style), shared by every layer.

Each layer keeps thin `register_*` / `list_*` / `create_*` functions over its own `Registry`;
metadata (the spaces a method supports, the targets a predictor fits, a device's kind) is read
from the registry, so contract tests and leaderboards never build an object to learn it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any


class Registry(dict):
    """Name -> factory, filled by a decorator; `meta(name)` holds what the entry declared."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._meta: dict[str, dict[str, Any]] = {}
        _BY_KIND.setdefault(kind, self)

    def add(self, name: str, factory: Callable, **meta: Any) -> None:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = factory
        self._meta[name] = dict(meta)

    def register(self, name: str, **meta: Any):
        """Decorator: register `factory` (a class or function) under `name`; returns it unchanged."""

        def deco(factory):
            self.add(name, factory, **meta)
            return factory

        return deco

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata `name` was registered with (a copy; empty when none was given)."""
        if name not in self:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return dict(self._meta.get(name, {}))

    def names(self, pattern: str = "*", **where: Any) -> list[str]:
        """Sorted names matching the glob `pattern` whose metadata matches `where`.

        A metadata value that is a collection matches when it contains the asked value
        (`names(supports="nb201")` for a method registered with `supports=("nb201", ...)`).
        """
        out = []
        for n in self:
            if not fnmatch.fnmatch(n, pattern):
                continue
            meta = self._meta.get(n, {})
            if all(_matches(meta.get(k), v) for k, v in where.items()):
                out.append(n)
        return sorted(out)


#: The first Registry made for each kind: a lower layer resolves a name that an upper layer
#: registered (a predictor reads its space by name) without importing that layer.
_BY_KIND: dict[str, Registry] = {}


def registry(kind: str) -> Registry | None:
    """The registry of `kind` ("space", "method", ...), or None while nothing has made one."""
    return _BY_KIND.get(kind)


def _matches(have: Any, want: Any) -> bool:
    if isinstance(have, list | tuple | set | frozenset):
        return want in have
    return have == want

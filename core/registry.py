"""One name -> factory registry with per-entry metadata (timm style), shared by every layer.

Each layer keeps thin `register_*` / `list_*` / `create_*` functions over its own `Registry`;
metadata (the capabilities a method needs, the targets a predictor fits, a device's kind) is read
from the registry, so contract tests and leaderboards never build an object to learn it.

Every registry finds its entries one way, `Registry.load`, on its first look-up: it imports the
modules `BUILTINS` declares for its kind (their `register_*` decorators register hwnas's own
entries), then reads the entry points of its group (`GROUPS`: `hwnas.spaces`, `hwnas.methods`,
`hwnas.predictors`, `hwnas.devices`) that other packages declare. An entry point
`name = package.module:Object` is loaded (importing the module, whose `register_*` decorators
may register it); an object still unregistered under `name` is registered by the layer's own
`register_*` with the metadata in its `hwnas_meta` dict. A plugin that fails to load is skipped
with a warning naming it; hwnas keeps working. A built-in that fails to load is an error.

`BUILTINS` names modules of the layers above as strings, the way entry points do: core imports
none of them until a look-up asks. So `registry("space")` answers a lower layer (a predictor
given a space by name) whether or not anything imported the search layer before.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from collections.abc import Callable
from typing import Any

#: registry kind -> the entry-point group other packages register into
GROUPS = {"space": "hwnas.spaces", "method": "hwnas.methods", "predictor": "hwnas.predictors",
          "device": "hwnas.devices"}
#: registry kind -> the modules whose `register_*` calls register hwnas's own entries of that kind
#: (tests/core/test_registry_builtins.py checks that every registering module is listed)
BUILTINS = {
    "space": ("hwnas.search.spaces.nb201", "hwnas.search.spaces.fbnet", "hwnas.search.spaces.mbv3"),
    "method": tuple(f"hwnas.search.methods.{m}" for m in
                    ("random", "evolution", "binas", "gcn", "mgas", "bayesnas", "dinas")),
    "predictor": tuple(f"hwnas.predictors.{m}" for m in
                       ("baselines", "bilinear", "gcn", "meta_gp", "transfer", "auto")),
    "device": ("hwnas.devices.catalog",),
    "supernet for": ("hwnas.search.supernet.nb201", "hwnas.search.supernet.mbv3"),
    "executor": ("hwnas.search.supernet.executor",),
}

log = logging.getLogger(__name__)


class Registry(dict):
    """Name -> factory, filled by a decorator; `meta(name)` holds what the entry declared."""

    def __init__(self, kind: str, plugin_adder: Callable[[str, Any], Any] | None = None, *, shared: bool = True):
        """`shared`: the layer's registry of `kind`, which `registry(kind)` returns (a test's
        throwaway registry passes False)."""
        super().__init__()
        self.kind = kind
        self._meta: dict[str, dict[str, Any]] = {}
        #: how a plugin object is registered (the layer's `register_*`); default: `add`
        self.plugin_adder = plugin_adder
        self._loaded = False
        if shared:
            _BY_KIND.setdefault(kind, self)

    def add(self, name: str, factory: Callable, **meta: Any) -> None:
        if dict.__contains__(self, name):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = factory
        self._meta[name] = dict(meta)

    # ---- the one way entries are found: built-ins, then plugins -------------------------------
    def load(self) -> None:
        """Import this kind's `BUILTINS`, then register the entry points of its group (once;
        later calls do nothing)."""
        if self._loaded:
            return
        self._loaded = True  # a module imported here may look its own registry up
        try:
            for module in BUILTINS.get(self.kind, ()):
                importlib.import_module(module)
        except BaseException:
            self._loaded = False  # the error shows again on the next look-up, never a half-filled registry
            raise
        if self.kind in GROUPS:
            self._load_plugins()

    def _load_plugins(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=GROUPS[self.kind]):
            if dict.__contains__(self, ep.name):
                continue  # a built-in or an earlier plugin keeps its name
            try:
                obj = ep.load()
                if not dict.__contains__(self, ep.name):
                    meta = dict(getattr(obj, "hwnas_meta", {}) or {})
                    if self.plugin_adder is not None:
                        self.plugin_adder(ep.name, obj, **meta)
                    else:
                        self.add(ep.name, obj, **meta)
            except Exception as exc:  # a broken plugin must not break hwnas
                log.warning("%s plugin %r (%s, from %s) was not loaded: %s: %s", self.kind, ep.name, ep.value,
                            GROUPS[self.kind], type(exc).__name__, exc)

    def __contains__(self, name) -> bool:
        self.load()
        return dict.__contains__(self, name)

    def __getitem__(self, name):
        self.load()
        return dict.__getitem__(self, name)

    def __iter__(self):
        self.load()
        return dict.__iter__(self)

    def keys(self):
        self.load()
        return dict.keys(self)

    def get(self, name, default=None):
        self.load()
        return dict.get(self, name, default)

    def __len__(self) -> int:
        self.load()
        return dict.__len__(self)

    def values(self):
        self.load()
        return dict.values(self)

    def items(self):
        self.load()
        return dict.items(self)

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
        (`names(targets="cost")` for a predictor registered with `targets=("accuracy", "cost")`).
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
    """The registry of `kind` ("space", "method", ...), its built-ins loaded; None for a kind that
    declares no built-ins while nothing has made its registry."""
    if kind not in _BY_KIND:
        for module in BUILTINS.get(kind, ()):  # each registers into its layer's registry of `kind`
            importlib.import_module(module)
    reg = _BY_KIND.get(kind)
    if reg is not None:
        reg.load()
    return reg


def _matches(have: Any, want: Any) -> bool:
    if isinstance(have, list | tuple | set | frozenset):
        return want in have
    return have == want

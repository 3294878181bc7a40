"""scikit-learn parameter handling, shared by predictors and searchers.

A class's parameters are the named arguments of its `__init__` (and of its bases' `__init__`),
stored on the object under the same names and nothing else at construction; what `fit` or
`search` learns ends in `_`. `get_params()` returns the parameters only, so
`type(obj)(**obj.get_params())` rebuilds an unfitted twin.
"""

from __future__ import annotations

import inspect
from typing import Any


class Parameters:
    """Mixin: `get_params` / `set_params` from the `__init__` signatures (sklearn's BaseEstimator)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        """Named `__init__` arguments of the class and its bases, in declaration order."""
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Parameters only (fitted state, whose names end in `_`, is not a parameter)."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params: Any):
        """Set parameters by name (an unknown name is a ValueError listing the known ones); returns self."""
        names = self._param_names()
        for k, v in params.items():
            if k not in names:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}; it has {', '.join(names) or 'none'}")
            setattr(self, k, v)
        return self

"""scikit-learn parameter handling, shared by predictors and searchers.

A class's parameters are the named arguments of its `__init__` (and of its bases' `__init__`),
stored on the object under the same names and nothing else at construction; what `fit` or
`search` learns ends in `_`. `get_params()` returns the parameters only, so
`type(obj)(**obj.get_params())` rebuilds an unfitted twin.

`check_params` validates values that come from users (`--param METHOD.PARAM=VALUE`) before a
class is built, from what the signature already says plus a few declared ranges, so a bad value
is one line naming the parameter instead of a traceback deep inside a run.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

#: parameter-name endings that mean a share or probability, in [0, 1]
FRACTION_SUFFIXES = ("_p", "_frac", "_fraction", "_share")


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

    #: name -> (low, high) inclusive bounds, None = open; declared where the signature's
    #: defaults do not say enough (subclasses extend it)
    param_ranges: dict[str, tuple[float | None, float | None]] = {}

    @classmethod
    def _signature_params(cls) -> dict[str, inspect.Parameter]:
        out: dict[str, inspect.Parameter] = {}
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    out.setdefault(p.name, p)
        return out

    @classmethod
    def check_params(cls, params: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
        """`params` checked against the `__init__` signatures: a known name, a value of the
        annotated type (int, float, bool, str, None; integral floats become ints), finite
        numbers, counts >= 1 where the default is >= 1 (>= 0 where it is 0), shares in [0, 1]
        and `param_ranges`. A bad one is a ValueError naming `owner.name`; returns the values."""
        sig = cls._signature_params()
        owner = owner or cls.__name__
        out = {}
        for name, value in params.items():
            if name not in sig:
                raise ValueError(f"{owner} has no parameter {name!r}; it has {', '.join(sig) or 'none'}")
            out[name] = _check_value(f"{owner}.{name}", value, sig[name], cls.param_ranges.get(name))
        return out

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


def _kinds(annotation: Any) -> set[str] | None:
    """'int | None' -> {'int', 'None'}; None when the annotation names another type (not checked)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    kinds = {t.strip() for t in text.replace("Optional[", "").rstrip("]").split("|")}
    return kinds if kinds <= {"int", "float", "bool", "str", "None"} else None


def _check_value(label: str, value: Any, p: inspect.Parameter, declared) -> Any:
    kinds = _kinds(p.annotation) if p.annotation is not p.empty else None
    default = None if p.default is p.empty else p.default
    if kinds is None and default is not None and not isinstance(default, bool):
        kinds = {type(default).__name__} if isinstance(default, int | float | str) else None
    if kinds is None:
        return value
    want = " or ".join(sorted({"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                               "None": "null"}[k] for k in kinds))
    bad = ValueError(f"--param {label}={_show(value)}: must be {want}")
    if value is None:
        if "None" in kinds:
            return None
        raise bad
    if isinstance(value, bool):
        if "bool" in kinds:
            return value
        raise bad
    if isinstance(value, str):
        if "str" in kinds:
            return value
        raise bad
    if not isinstance(value, int | float):
        raise bad
    if "float" not in kinds:
        if "int" not in kinds or not (isinstance(value, int) or math.isfinite(value) and float(value).is_integer()):
            raise bad
        value = int(value)
    if not math.isfinite(value):
        raise ValueError(f"--param {label}={_show(value)}: must be a finite number")
    lo, hi = declared or (None, None)
    if declared is None:
        if label.rsplit(".", 1)[-1].endswith(FRACTION_SUFFIXES):
            lo, hi = 0, 1
        elif isinstance(value, int) and isinstance(default, int) and not isinstance(default, bool) and default >= 0:
            lo = 1 if default >= 1 else 0
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = (f"in [{lo}, {hi}]" if lo is not None and hi is not None else f">= {lo}" if lo is not None
               else f"<= {hi}")
        raise ValueError(f"--param {label}={_show(value)}: must be {rng}")
    return value


def _show(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)

"""One Predictor API (scikit-learn style) and a timm-style registry.

`__init__` only stores parameters; `fit(archs, y)` returns self and sets attributes ending in
`_`; `predict(archs)` returns float64 [n]. Archs are the space's own architecture objects.

Files are format-stable (no pickle, the nn-Meter #131 complaint): `save(dir)` writes
`predictor.json` (registry name, parameters, JSON state, library versions) plus `arrays.npz`
and any library-native file (xgboost JSON). `load_predictor(dir)` rebuilds it.
"""

from __future__ import annotations

import abc
import inspect
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hwnas.core.io import read_json
from hwnas.core.params import Parameters
from hwnas.core.registry import Registry, registry

FORMAT_VERSION = 1
_PREDICTORS = Registry("predictor")


class NotFittedError(ValueError, AttributeError):
    """predict/save called before fit."""


class Predictor(Parameters, abc.ABC):
    """Base of every surrogate. Subclasses implement `_fit`, `_predict`, `_state`, `_set_state`."""

    #: registry name, set by `register_predictor`
    name: str = ""
    #: True for predictors that use other devices' tables handed to `fit(..., prior=...)`
    uses_prior: bool = False
    #: kind of target the predictor is meant for ("any", "cost")
    target_kind: str = "any"

    def __init__(self, space="nb201", seed: int = 0):
        self.space = space  # a space name or a space object (saved by name)
        self.seed = seed

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- the API -------------------------------------------------------------------
    @property
    def space_(self):
        """The space object: `space` itself, or the registered space of that name."""
        if not isinstance(self.space, str):
            return self.space
        sp = self.__dict__.get("_space_obj")
        if sp is None or sp.name != self.space:
            sp = resolve_space(self.space)
            self.__dict__["_space_obj"] = sp
        return sp

    def fit(self, archs: Sequence, y, prior=None) -> Predictor:
        """Fit on (arch, value) pairs; `prior` (PriorTables) is used only where `uses_prior`."""
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(archs) != len(y):
            raise ValueError(f"{self.name}: {len(archs)} archs but {len(y)} target values")
        if len(y) < 2:
            raise ValueError(f"{self.name}: need at least 2 training archs, got {len(y)}")
        if not np.isfinite(y).all():
            raise ValueError(f"{self.name}: target has NaN or infinite values; drop or fill those rows")
        archs = [self.space_.validate(a) for a in archs]
        self._fit(archs, y, prior)
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Sequence, batch_size: int = 4096) -> np.ndarray:
        """Predictions, computed in chunks so that all 15,625 NB201 cells fit in little memory."""
        self._check_fitted()
        archs = [self.space_.validate(a) for a in archs]
        out = [np.asarray(self._predict(archs[i:i + batch_size]), dtype=np.float64).ravel()
               for i in range(0, len(archs), batch_size)]
        return np.concatenate(out) if out else np.zeros(0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_train_"):
            raise NotFittedError(f"{self.name or type(self).__name__} is not fitted; call fit() first")

    @abc.abstractmethod
    def _fit(self, archs: list, y: np.ndarray, prior) -> None: ...

    @abc.abstractmethod
    def _predict(self, archs: list) -> np.ndarray: ...

    # ---- persistence ----------------------------------------------------------------
    def _state(self, folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able state, arrays) of the fitted model; may also write native files in folder."""
        return {}, {}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray], folder: Path) -> None:
        """Inverse of `_state`; a predictor with no fitted state has nothing to restore."""
        return None

    def save(self, path: str | Path) -> Path:
        """Write the fitted predictor into folder `path` (created)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state, arrays = self._state(folder)
        doc = {
            "format_version": FORMAT_VERSION,
            "predictor": self.name,
            "class": f"{type(self).__module__}.{type(self).__name__}",
            "params": {**self.get_params(), "space": self.space_.name},
            "n_train": self.n_train_,
            "state": state,
            "arrays": sorted(arrays),
            "versions": library_versions(),
        }
        import io

        from hwnas.core.io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write_bytes(folder / "arrays.npz", buf.getvalue())
        atomic_write_bytes(folder / "predictor.json", (json.dumps(doc, indent=2, default=_json_default) + "\n").encode())
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        return load_predictor(path)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("hwnas", "numpy", "scipy", "scikit-learn", "xgboost", "xgboost-cpu", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def resolve_space(name: str):
    """The space registered as `name`. Predictors take a space object or its name; a name is read
    from the space registry (`core.registry.registry("space")`, which loads the built-in spaces
    and plugins itself: core.registry.BUILTINS), so predictors never import the search layer."""
    reg = registry("space")
    if reg is None or name not in reg:
        known = ", ".join(reg.names()) if reg else "none"
        raise LookupError(f"space {name!r} is not registered (known: {known}); pass the space object "
                          "as space=..., or register it (search.spaces.register_space or an hwnas.spaces "
                          "entry point)")
    return reg[name]()


def load_predictor(path: str | Path, space=None) -> Predictor:
    """Rebuild a saved predictor; `space` (an object) replaces the saved space name if given."""
    folder = Path(path)
    meta = folder / "predictor.json"
    if not meta.exists():
        raise FileNotFoundError(f"{meta}: no such file; `path` must be a folder written by Predictor.save")
    doc = read_json(meta, "re-fit and save the predictor again")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta}: format_version {doc.get('format_version')} unknown (this build reads {FORMAT_VERSION})")
    for key in ("predictor", "params", "state", "n_train"):
        if key not in doc:
            raise ValueError(f"{meta}: no {key!r} entry; the folder was edited or truncated, re-fit and save it again")
    _check_native_files(meta, doc["state"])
    # JSON has no tuples: sequence parameters (all tuples in __init__ signatures) come back as lists
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["params"].items()}
    if space is not None:
        if not _describes_saved(space, params.get("space")):
            raise ValueError(f"{meta}: saved for space {params.get('space')!r}, not {space.name!r}")
        params["space"] = space
    try:
        model = create_predictor(doc["predictor"], **params)
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for k, v in arrays.items():
            if v.dtype.kind in "fc" and not np.isfinite(v).all():
                raise ValueError(f"array {k!r} holds NaN or inf")
        model._set_state(doc["state"], arrays, folder)
        model.n_train_ = int(doc["n_train"])
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ValueError(f"{folder}: cannot rebuild the saved predictor ({type(exc).__name__}: {exc}); "
                         "the folder was edited or damaged, re-fit and save it again") from None
    return model


def _describes_saved(space, saved: str) -> bool:
    """The given space is the one the predictor was saved for (same description, not just name)."""
    try:
        return resolve_space(saved).describe() == space.describe()
    except LookupError:  # not registered here: the caller's object is the only description there is
        return True


def _check_native_files(meta: Path, state) -> None:
    """A saved state names its native files (xgboost JSON ...) by plain names inside the folder."""
    if not isinstance(state, dict):
        raise ValueError(f"{meta}: 'state' is not a mapping; re-fit and save the predictor again")
    for key, name in state.items():
        if key.endswith("_file") and (not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..")):
            raise ValueError(f"{meta}: {key} {name!r} is not a file name inside the folder; re-fit and save it again")


# ---- registry (timm style) ----------------------------------------------------------------
def register_predictor(name: str, *, targets: tuple[str, ...] | None = None, **defaults):
    """Decorator: register a Predictor class (or factory) under `name`, with default params.

    Metadata read by `list_predictors(targets=...)`: `targets` ("accuracy", "cost"; default
    from the class's `target_kind`), `uses_prior` and `encoding` (the default one, if any).
    """

    def deco(factory):
        def make(**kw):
            obj = factory(**{**defaults, **kw})
            obj.name = name
            return obj

        make.factory = factory  # type: ignore[attr-defined]
        make.defaults = defaults  # type: ignore[attr-defined]
        kind = getattr(factory, "target_kind", "any")
        tg = tuple(targets) if targets else (("cost",) if kind == "cost" else ("accuracy", "cost"))
        enc = defaults.get("encoding", _default(factory, "encoding"))
        _PREDICTORS.add(name, make, targets=tg, uses_prior=bool(getattr(factory, "uses_prior", False)),
                        **({"encoding": enc} if enc else {}))
        return factory

    return deco


_PREDICTORS.plugin_adder = lambda name, obj, **meta: register_predictor(name, **meta)(obj)  # hwnas.predictors


def _default(factory, param: str):
    try:
        p = inspect.signature(factory.__init__).parameters.get(param)
    except (TypeError, ValueError):
        return None
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def list_predictors(pattern: str = "*", **where) -> list[str]:
    """Registered names matching `pattern` and metadata (`targets="cost"`, `uses_prior=True`)."""
    return _PREDICTORS.names(pattern, **where)


def predictor_meta(name: str) -> dict:
    return _PREDICTORS.meta(name)


def create_predictor(name: str, **kwargs) -> Predictor:
    try:
        make = _PREDICTORS[name]
    except KeyError:
        raise KeyError(f"unknown predictor {name!r}; known: {', '.join(list_predictors())}") from None
    return make(**kwargs)


def predictor_class(name: str):
    return _PREDICTORS[name].factory

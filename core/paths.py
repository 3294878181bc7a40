"""Default locations, spelled once: where results and device tables go, where the shared
benchmark tables are found, and how a path is written into a committed result.

Relative defaults (`results/...`) are relative to the working directory, the repository root
when run through the Makefile. `portable(path)` is what every writer under `results/` uses for a
path it records: `$HWNAS_DATA_DIR/...` for a file in the shared data folder, a repository-relative
path for a file in the checkout, never an absolute path of this machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The environment variable naming the folder of benchmark tables made by others.
DATA_DIR_ENV = "HWNAS_DATA_DIR"
#: The repository (checkout) this package is imported from.
REPO_ROOT = Path(__file__).resolve().parents[1]

RESULTS_DIR = Path("results")
TABLES_DIR = RESULTS_DIR / "tables"
ACCURACIES_DIR = RESULTS_DIR / "accuracies"
PREDICTORS_DIR = RESULTS_DIR / "predictors"
LEADERBOARDS_DIR = RESULTS_DIR / "leaderboards"


def default_data_dir() -> Path:
    """`../shared/data` beside the checkout (where this repository's CI keeps the tables)."""
    return REPO_ROOT.parent / "shared" / "data"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The shared data folder: `override`, else $HWNAS_DATA_DIR, else `../shared/data`."""
    if override:
        return Path(override)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else default_data_dir()


def portable(path: str | os.PathLike) -> str:
    """`path` as it may be written into a committed result.

    Inside $HWNAS_DATA_DIR (or the default data folder): `$HWNAS_DATA_DIR/<relative>`; inside the
    repository: relative to it (posix separators); a relative path stays as it is. An absolute
    path elsewhere cannot be made portable and is reduced to its file name.
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = Path(os.path.normpath(p))
    for root in _data_roots():
        rel = _relative(p, root)
        if rel is not None:
            return f"${DATA_DIR_ENV}/{rel}" if rel != "." else f"${DATA_DIR_ENV}"
    rel = _relative(p, REPO_ROOT)
    if rel is not None:
        return rel
    return p.name


#: An absolute path inside a spec string: after the start, ':' or '@' (`table:/x/y.csv:col`).
_ABS_IN_SPEC = re.compile(r"(?:^|(?<=[:@=]))(/[^:@,;\s]+)")


def portable_spec(spec: str, data_only: bool = False) -> str:
    """`portable` applied to every absolute path inside a spec string such as
    `latency_ms<=6.4@table:/data/help.csv:pixel3` or `table:/data/acc.csv:test_acc`.

    `data_only`: rewrite only paths inside the data folder (`$HWNAS_DATA_DIR/...`, which reads
    back anywhere); other paths stay as they are, for a spec that is still to be read from here."""
    def sub(m):
        p = portable(m.group(1))
        return m.group(1) if data_only and not p.startswith("$") else p

    return _ABS_IN_SPEC.sub(sub, spec)


def portable_doc(doc):
    """`portable_spec` applied to every string of a JSON-like document (dicts, lists, strings)."""
    if isinstance(doc, str):
        return portable_spec(doc)
    if isinstance(doc, dict):
        return {k: portable_doc(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [portable_doc(v) for v in doc]
    return doc


_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def expand(path: str | os.PathLike) -> str:
    """A path as written (in a spec, an option, a committed result) made readable: a leading
    `$HWNAS_DATA_DIR` becomes the data folder (set or not), other `$VARS`/`${VARS}` and `~` are
    expanded. Every reader of a spec's path goes through here, so what is hashed for provenance
    is the file that is read. A variable that is not set is a ValueError naming it."""
    s = os.fspath(path)
    prefix = f"${DATA_DIR_ENV}"
    for p in (prefix, f"${{{DATA_DIR_ENV}}}"):
        if s == p or s.startswith(p + "/"):
            return str(data_dir() / s[len(p) + 1:])
    out = os.path.expanduser(os.path.expandvars(s))
    unset = _VAR.search(out)
    if unset:
        name = unset.group(1).strip("{}")
        raise ValueError(f"path {s!r} uses ${name}, which is not set; export {name}=... or write the path out")
    return out


def resolve(path: str | os.PathLike) -> Path:
    """`expand` as a Path."""
    return Path(expand(path))


def _data_roots() -> list[Path]:
    roots = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        roots.append(Path(os.path.normpath(Path(env).absolute())))
    roots.append(default_data_dir())
    return roots


def _relative(p: Path, root: Path) -> str | None:
    for r in {root, root.resolve()}:
        try:
            return p.relative_to(r).as_posix() or "."
        except ValueError:
            pass
        try:
            return p.resolve().relative_to(r).as_posix() or "."
        except (ValueError, OSError):
            pass
    return None

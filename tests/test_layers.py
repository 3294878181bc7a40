"""The stack, kept by a test: devices -> predictors -> search -> bench -> api over the bottom package core.

A package may import only from the packages below it. Every `.py` file of each package is parsed
(nothing is imported or run), and every import counts: module level, inside functions (lazy
imports), under `if TYPE_CHECKING`, and `importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Bottom first. A package may import the ones before it, never the ones after. `api` is the
#: public Python face (hwnas/api.py): it may use every layer, and none of them uses it.
STACK = ("core", "devices", "predictors", "search", "bench", "api")
FORBIDDEN = {pkg: set(STACK[i + 1:]) for i, pkg in enumerate(STACK)}
#: where a layer's files are: its folder, or one module
FILES = {"api": lambda: [REPO / "hwnas" / "api.py"]}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a parsed file; relative imports stay
    inside their own package and are left out."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if (name in ("import_module", "__import__") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                out.append((node.lineno, node.args[0].value))
            elif (name in ("import_module", "__import__") and node.args
                  and isinstance(node.args[0], ast.JoinedStr) and node.args[0].values
                  and isinstance(node.args[0].values[0], ast.Constant)):
                out.append((node.lineno, str(node.args[0].values[0].value)))  # f"hwnas.search.methods.{m}"
    return out


def violations(pkg: str) -> list[str]:
    bad = []
    for path in FILES[pkg]() if pkg in FILES else sorted((REPO / pkg).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, mod in imported_modules(tree):
            top = mod.split(".", 1)[0]
            if top in STACK:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {mod} (write hwnas.{mod})")
            elif top == "hwnas" and mod.split(".")[1:2] and mod.split(".")[1] in FORBIDDEN[pkg]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {mod}")
    return bad


@pytest.mark.parametrize("pkg", STACK)
def test_package_imports_only_lower_layers(pkg):
    assert all(p.is_file() for p in FILES[pkg]()) if pkg in FILES else (REPO / pkg).is_dir(), f"{pkg} is missing"
    bad = violations(pkg)
    allowed = ", ".join(STACK[:STACK.index(pkg)]) or "none of the stack"
    assert not bad, (f"{pkg}/ may import only from {allowed} (the stack is {' -> '.join(STACK)}):\n  "
                     + "\n  ".join(bad))


def test_the_checker_sees_lazy_and_dynamic_imports():
    src = ("import os\n"
           "def f():\n    from hwnas.search.spaces import create_space\n"
           "def g():\n    import importlib\n    importlib.import_module('hwnas.bench.cli')\n"
           "def h(m):\n    __import__(f'hwnas.bench.{m}')\n"
           "from . import sibling\n")
    mods = [m for _, m in imported_modules(ast.parse(src))]
    assert sorted(mods) == ["hwnas.bench.", "hwnas.bench.cli", "hwnas.search.spaces", "importlib", "os"]


#: Inside bench: the engine computes and stores; experiments configure it; reports write it up.
BENCH_ENGINE_NEVER = ("hwnas.bench.experiments", "hwnas.bench.reports")


def test_the_bench_engine_never_imports_experiments_or_reports():
    bad = []
    for path in sorted((REPO / "bench" / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        mods = [(line, mod) for line, mod in imported_modules(tree)]
        mods += [(n.lineno, f"hwnas.bench.{n.module}") for n in ast.walk(tree)  # from ..reports.x import
                 if isinstance(n, ast.ImportFrom) and n.level == 2 and n.module]
        bad += [f"{path.relative_to(REPO)}:{line} imports {mod}" for line, mod in mods
                if mod.startswith(BENCH_ENGINE_NEVER)]
    assert (REPO / "bench" / "engine").is_dir() and not bad, "bench/engine imports:\n  " + "\n  ".join(bad)

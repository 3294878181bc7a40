"""Every registry finds its built-ins one way (core.registry.BUILTINS, loaded on the first look-up
like the entry points of other packages): the list names every module that registers an entry,
and a name resolves without its layer having been imported first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hwnas.core.registry import BUILTINS

REPO = Path(__file__).resolve().parents[2]

#: registry kind -> the decorator / function that registers into it, and the folder it lives in
REGISTERS = {"space": ("register_space", "search/spaces"), "method": ("register_method", "search/methods"),
             "predictor": ("register_predictor", "predictors"), "device": ("register_device", "devices"),
             "supernet for": ("register_supernet", "search/supernet"),
             "executor": ("register_executor", "search/supernet")}


def registering_modules(func: str, folder: str) -> set[str]:
    """`hwnas.<folder>.<module>` of every file under `folder` that calls `func(...)` (decorator
    or call), parsed, not imported."""
    out = set()
    for path in sorted((REPO / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", getattr(n.func, "attr", None)) == func]
        if calls:
            out.add("hwnas." + ".".join(path.relative_to(REPO).with_suffix("").parts))
    return out


@pytest.mark.parametrize("kind", sorted(REGISTERS))
def test_every_registering_module_is_declared(kind):
    func, folder = REGISTERS[kind]
    found = registering_modules(func, folder)
    declared = set(BUILTINS[kind])
    missing = found - declared - {f"hwnas.{folder.replace('/', '.')}.base", f"hwnas.{folder.replace('/', '.')}.registry"}
    assert not missing, f"modules register {kind} entries but core.registry.BUILTINS[{kind!r}] omits them: {missing}"
    assert declared <= found, f"BUILTINS[{kind!r}] lists modules that register nothing: {declared - found}"


def test_a_space_name_resolves_in_a_predictor_without_importing_search():
    code = ("import sys\n"
            "from hwnas.predictors.base import create_predictor\n"
            "p = create_predictor('ridge', space='nb201')\n"
            "print(p.space_.name, type(p.space_).__module__)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["nb201", "hwnas.search.spaces.nb201"]


def test_each_lookup_function_sees_every_builtin_in_a_fresh_interpreter():
    code = ("from hwnas.devices.registry import list_devices\n"
            "from hwnas.search.spaces import list_spaces\n"
            "from hwnas.search.methods import list_methods\n"
            "from hwnas.predictors.base import list_predictors\n"
            "print(len(list_devices()), len(list_spaces()), 'random' in list_methods(), 'gcn' in list_predictors())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    n_dev, n_space, has_random, has_gcn = r.stdout.split()
    assert int(n_dev) >= 8 and int(n_space) >= 4 and has_random == "True" and has_gcn == "True"

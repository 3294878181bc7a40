"""The one-shot methods keep only their algorithm: no module under search/methods/ defines a torch
network (their supernets are built by `search.supernet` from a space's capabilities), and none
reads a space's internals (a space module's constants or networks): only the spaces package's
public names and the capabilities of core.capabilities (issue 24)."""

from __future__ import annotations

import ast
from pathlib import Path

METHODS = Path(__file__).resolve().parents[2] / "search" / "methods"
#: how a base class that is a torch module can be spelled (after `from torch import nn` etc.)
MODULE_BASES = {"nn.Module", "torch.nn.Module", "Module", "Supernet", "nn.Sequential", "torch.nn.Sequential",
                "nn.ModuleList", "Sequential"}


def _name(node: ast.expr) -> str:
    return ast.unparse(node)


def network_classes(src: str) -> list[str]:
    """`Class(Base)` of every class, at any depth (inside functions too), deriving from a torch
    module."""
    return [f"{n.name}({_name(b)}) line {n.lineno}" for n in ast.walk(ast.parse(src))
            if isinstance(n, ast.ClassDef) for b in n.bases if _name(b) in MODULE_BASES]


def test_no_method_module_defines_a_network():
    found = {p.name: network_classes(p.read_text(encoding="utf-8")) for p in sorted(METHODS.glob("*.py"))}
    bad = {k: v for k, v in found.items() if v}
    assert len(found) > 5 and not bad, f"networks belong in search/supernet/: {bad}"


def test_the_check_sees_nested_and_aliased_modules():
    src = ("import torch\nfrom torch import nn\n"
           "def f():\n    class A(nn.Module):\n        pass\n"
           "class B(torch.nn.Module):\n    pass\n"
           "class C:\n    pass\n")
    assert sorted(s.split("(")[0] for s in network_classes(src)) == ["A", "B"]


def space_internals(src: str) -> list[str]:
    """Imports of a module inside the spaces package (`hwnas.search.spaces.<module>`, or
    `..spaces.<module>` relative), which is where a space keeps its constants and networks."""
    out = []
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, ast.ImportFrom):
            mod = ("." * n.level) + (n.module or "")
            if mod.startswith(("hwnas.search.spaces.", "..spaces.")):
                out.append(f"line {n.lineno}: from {mod} import {', '.join(a.name for a in n.names)}")
        elif isinstance(n, ast.Import):
            out += [f"line {n.lineno}: import {a.name}" for a in n.names if a.name.startswith("hwnas.search.spaces.")]
    return out


def test_no_method_imports_a_space_module():
    bad = {p.name: space_internals(p.read_text(encoding="utf-8")) for p in sorted(METHODS.glob("*.py"))}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"methods ask a space for a capability (core.capabilities), not for its module: {bad}"
    assert space_internals("from hwnas.search.spaces.nb201 import EDGES\nfrom hwnas.search.spaces import create_space\n") \
        == ["line 1: from hwnas.search.spaces.nb201 import EDGES"]

"""Draw the house: packages as rooms, imports as arrows, read from the code (nothing is run).

Rooms are the stack's packages and their sub-packages (search.methods, bench.engine, ...),
sized by lines of code; an arrow A -> B counts the import statements in A's files that name B
(lazy imports inside functions included, the same reading as tests/test_layers.py). The output
is a Mermaid flowchart, which GitHub and most Markdown viewers draw.

    python3 tools/draw_house.py [--root DIR] [--title TEXT] > drawing.md

`make house` writes docs/house.md: the drawing of the tree as committed beside the one of the
tree before the house step (read from git, `--before REV`).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.test_layers import STACK, imported_modules  # noqa: E402 (one reading of imports)

#: layers that are one module, not a folder
MODULES = {"api": "hwnas/api.py"}


def room_of(module: str, rooms: set[str]) -> str | None:
    """The deepest room holding `module` (`hwnas.` prefix or not), or None outside the stack."""
    parts = module.split(".")
    if parts[0] == "hwnas":
        parts = parts[1:]
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in rooms:
            return name
    return None


def rooms_of(root: Path) -> dict[str, list[Path]]:
    """Each package folder of the stack (with an __init__.py) and the .py files directly in it."""
    rooms: dict[str, list[Path]] = {}
    for top in STACK:
        if top in MODULES:
            if (root / MODULES[top]).is_file():
                rooms[top] = [root / MODULES[top]]
            continue
        for init in sorted((root / top).rglob("__init__.py")):
            folder = init.parent
            rooms[".".join(folder.relative_to(root).parts)] = sorted(folder.glob("*.py"))
    return rooms


def measure(root: Path) -> tuple[dict[str, int], Counter]:
    rooms = rooms_of(root)
    lines = {name: sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
             for name, files in rooms.items()}
    arrows: Counter = Counter()
    for name, files in rooms.items():
        for path in files:
            pkg = name if name not in MODULES else "hwnas"
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve it
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                    target = room_of(mod, set(rooms))
                    if target and target != name:
                        arrows[(name, target)] += 1
            for _, mod in imported_modules(tree):
                target = room_of(mod, set(rooms))
                if target and target != name:
                    arrows[(name, target)] += 1
    return lines, arrows


def mermaid(lines: dict[str, int], arrows: Counter, title: str) -> str:
    ident = {name: name.replace(".", "_") for name in lines}
    out = [f"### {title}", "", f"{len(lines)} rooms, {sum(lines.values()):,} lines, "
           f"{sum(arrows.values())} import statements between rooms.", "", "```mermaid", "flowchart TD"]
    for top in STACK:
        members = [n for n in lines if n.split(".")[0] == top]
        if not members:
            continue
        out.append(f"  subgraph {top}")
        out += [f'    {ident[n]}["{n}<br/>{lines[n]:,} lines"]' for n in members]
        out.append("  end")
    out += [f"  {ident[a]} -->|{n}| {ident[b]}" for (a, b), n in sorted(arrows.items())]
    out += ["```", ""]
    return "\n".join(out)


def tree_at(rev: str, into: Path) -> Path:
    """The committed tree at `rev`, extracted (git archive) into a temporary folder."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".tar") as f:
        f.write(data)
        f.flush()
        with tarfile.open(f.name) as t:
            t.extractall(into, filter="data")
    return into


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO, help="a checkout to draw (default: this one)")
    ap.add_argument("--before", help="also draw the tree at this git revision, first")
    ap.add_argument("--title", default="The house now")
    a = ap.parse_args(argv)
    parts = []
    if a.before:
        with tempfile.TemporaryDirectory() as tmp:
            parts.append(mermaid(*measure(tree_at(a.before, Path(tmp))), f"Before ({a.before})"))
    parts.append(mermaid(*measure(a.root), a.title))
    sys.stdout.write("\n".join(parts))


if __name__ == "__main__":
    main()

"""predictors/ knows no space by name and imports nothing from search/ or bench/ (issue 13)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "predictors").glob("*.py")) + [ROOT / "devices" / "table.py"]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_predictors_import_neither_search_nor_bench():
    for f in FILES:
        bad = {m for m in _imports(f) if m.split(".")[0] in ("search", "bench")}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_space_name_tests_or_hasattr_on_spaces():
    # a space's name compared with a literal ("nb201") is a name test; comparing two spaces' names is not
    pattern = re.compile(r"\.name\s*[!=]=\s*[\"']|hasattr\(\s*(self\.)?(space_?|sp)\b")
    for f in FILES:
        for i, line in enumerate(f.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{f.relative_to(ROOT)}:{i}: {line.strip()}"

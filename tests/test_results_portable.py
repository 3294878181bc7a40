"""No committed result carries an absolute path of the machine that wrote it (issue 13).

Paths in results are written by `core.paths.portable`: `$HWNAS_DATA_DIR/...` for the shared
benchmark tables, repository-relative for files of the checkout. This scans every file under
results/ that git tracks: text files as text, Parquet files cell by cell and in their metadata.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: an absolute POSIX path (two or more segments) at the start of a value: after a quote, space,
#: backtick, bracket, '=', ':' or '@' (a spec such as `table:/x/y.csv:col`), never inside a URL
ABSOLUTE = re.compile(r"(?:^|(?<=[\s\"'`(\[=:@,]))/(?:[A-Za-z0-9._~+-]+/)+[A-Za-z0-9._~+-]*")
#: a Windows drive path
DRIVE = re.compile(r"(?:^|(?<=[\s\"'`(\[=:@,]))[A-Za-z]:\\\\?[A-Za-z0-9._-]+\\\\")
TEXT_SUFFIXES = {".csv", ".json", ".md", ".txt", ".html", ".tsv", ".yaml", ".yml", ".log"}


def absolute_paths(text: str) -> list[str]:
    return [m.group(0) for m in ABSOLUTE.finditer(text)] + [m.group(0) for m in DRIVE.finditer(text)]


def tracked_results() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "results"], cwd=REPO, capture_output=True, check=True).stdout
        files = [REPO / f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in (REPO / "results").rglob("*") if p.is_file()]
    return [f for f in files if f.is_file()]


def _parquet_strings(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = [v.decode("utf-8", "replace") for v in (table.schema.metadata or {}).values()]
    for col in table.columns:
        if col.type in ("string", "large_string") or str(col.type) in ("string", "large_string"):
            out += [v for v in col.to_pylist() if isinstance(v, str)]
    return out


def offending(path: Path) -> list[str]:
    if path.suffix in TEXT_SUFFIXES:
        return absolute_paths(path.read_text(encoding="utf-8", errors="replace"))
    if path.suffix == ".parquet":
        found = []
        for s in dict.fromkeys(_parquet_strings(path)):
            found += absolute_paths(s)
        return found
    return []


def test_the_detector():
    assert absolute_paths('"checkpoint": "/work/main/runs/x.ckpt"') == ["/work/main/runs/x.ckpt"]
    assert absolute_paths("latency_ms<=6.4@table:/data/help/x.csv:pixel3") == ["/data/help/x.csv"]
    assert absolute_paths("- table: `/home/u/t.csv`, target") == ["/home/u/t.csv"]
    for fine in ("table:$HWNAS_DATA_DIR/help/x.csv:pixel3", "runs/supernet/a.ckpt", "see https://github.com/a/b",
                 "ratio 3/4 and ms/op", "| a / b |", "results/tables/mbv3-fmnist/cpu-t1.parquet"):
        assert absolute_paths(fine) == [], fine


def test_no_absolute_machine_path_in_committed_results():
    files = tracked_results()
    if not files:
        pytest.skip("no results/ in this checkout")
    bad = {}
    for f in files:
        hits = offending(f)
        if hits:
            bad[str(f.relative_to(REPO))] = sorted(set(hits))[:3]
    assert not bad, ("committed results carry absolute paths (write them with core.paths.portable):\n"
                     + "\n".join(f"  {k}: {', '.join(v)}" for k, v in sorted(bad.items())))

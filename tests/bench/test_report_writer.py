"""The one report writer (bench/reports/writer.py): atomic Markdown that says what wrote it and
names no path of this machine, tables rendered one way, figures saved one way; and no module of
bench/ writes a report or a figure around it."""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path

import pytest
from hwnas.bench.reports import writer
from hwnas.core import invocation

REPO = Path(__file__).resolve().parents[2]


def test_markdown_is_written_atomically_and_a_failed_write_keeps_the_old_report(tmp_path, monkeypatch):
    p = tmp_path / "r.md"
    writer.write_markdown(p, ["# R", "", "Written by `make r`.", "", "old"])
    assert p.read_text() == "# R\n\nWritten by `make r`.\n\nold\n"

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        writer.write_markdown(p, ["# R", "", "Written by `make r`.", "", "new"])
    assert p.read_text().endswith("old\n")
    assert [f.name for f in tmp_path.iterdir()] == ["r.md"]  # no temp file left behind


def test_every_report_says_what_wrote_it(tmp_path):
    with pytest.raises(ValueError, match="does not say what wrote it; pass command="):
        writer.write_markdown(tmp_path / "a.md", ["# A", "", "text"])
    assert not (tmp_path / "a.md").exists()
    writer.write_markdown(tmp_path / "a.md", ["# A", "", "- text", ""], command="make a")
    assert (tmp_path / "a.md").read_text() == "# A\n\nWritten by `make a`.\n\n- text\n"
    kept = ["# B", "", "Written by `hwnas b --x 1` (`make b`). More.", "", "| t |", "|---|"]
    writer.write_markdown(tmp_path / "b.md", kept, command="make other")
    assert (tmp_path / "b.md").read_text() == "\n".join(kept) + "\n"  # its own line is kept, none added


def test_written_by_names_the_running_command_else_the_default():
    assert writer.written_by("hwnas x", "make x") == "Written by `hwnas x` (`make x`)."
    invocation.record(["leaderboard", "--track", "nb201", "--seeds", "2"])
    try:
        assert writer.written_by("hwnas x") == "Written by `hwnas leaderboard --track nb201 --seeds 2`."
    finally:
        invocation.record(None)


def test_no_path_of_this_machine_reaches_a_report(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("HWNAS_DATA_DIR", str(data))
    elsewhere = tmp_path / "scratch" / "run" / "table.parquet"
    p = writer.write_markdown(tmp_path / "r.md", [
        "# R", "", "Written by `make r`.", "",
        f"Truth `{data}/help/acc.csv`; spec `latency_ms<=2@table:{data}/lat.csv:pixel3`; table `{elsewhere}`.",
        f"In the checkout: {REPO}/results/tables/x.parquet. Kept: results/a/b.md, github.com/u/r, 3/4, a / b."])
    text = p.read_text()
    assert str(tmp_path) not in text and str(REPO) not in text
    assert "`$HWNAS_DATA_DIR/help/acc.csv`" in text and "@table:$HWNAS_DATA_DIR/lat.csv:pixel3`" in text
    assert "table `table.parquet`" in text and "checkout: results/tables/x.parquet." in text
    assert "Kept: results/a/b.md, github.com/u/r, 3/4, a / b." in text


def test_tables_render_one_way_and_empty_figures_say_so():
    assert writer.table(["method", "regret", "n"], [["random", 0.12345, 20], ["gcn", math.nan, 3], ["ref", "", ""]],
                        "lrr") == ["| method | regret | n |", "|---|---:|---:|", "| random | 0.123 | 20 |",
                                   "| gcn | — | 3 |", "| ref | | |"]
    assert writer.facts_table({"archs": 40, "tau": 0.5, "ci": (0.1, 0.25), "gap": float("nan")}) == [
        "| figure | value |", "| --- | --- |", "| archs | 40 |", "| tau | 0.500 |", "| ci | [0.100, 0.250] |",
        "| gap | — |"]
    with pytest.raises(ValueError, match="align 'l' has 1 letters for 2 columns"):
        writer.table(["a", "b"], [], "l")
    with pytest.raises(ValueError, match="has 1 cells for 2 columns"):
        writer.table(["a", "b"], [["x"]])


def test_figures_are_saved_one_way_and_closed(tmp_path):
    plt = writer.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    p = writer.save_figure(fig, tmp_path / "f.png", "a title")
    assert not plt.fignum_exists(fig.number)
    head = p.read_bytes()
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (w, h) == (4 * writer.FIGURE_DPI, 3 * writer.FIGURE_DPI)
    assert fig.get_suptitle() == "a title"


def _calls(tree: ast.AST):
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            yield n, (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))


def test_no_module_of_bench_writes_a_report_or_a_figure_around_the_writer():
    """Figures only through `save_figure` (no savefig, no matplotlib of its own), Markdown only
    through `write_markdown` (no write_text, no atomic write of a `.md`)."""
    bad = []
    for path in sorted((REPO / "bench").rglob("*.py")):
        if path == REPO / "bench" / "reports" / "writer.py":
            continue
        src = path.read_text(encoding="utf-8")
        tree = ast.parse(src)
        rel = path.relative_to(REPO)
        for node, name in _calls(tree):
            arg0 = ast.get_source_segment(src, node.args[0]) if node.args else ""
            if name in ("savefig", "atomic_save_figure", "write_text") or (
                    name.startswith("atomic_write") and ".md" in arg0):
                bad.append(f"{rel}:{node.lineno} {name}({arg0})")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{rel}:{node.lineno} imports {m}" for m in mods if m.split(".")[0] == "matplotlib"]
    assert not bad, "write reports and figures through bench/reports/writer.py:\n  " + "\n  ".join(bad)

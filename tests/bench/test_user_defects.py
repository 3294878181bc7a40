"""Defects a new user met (table units, partial tables, quiet output, portable rows, the words
the tool shows): each test fails on the code before its fix."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.search.constraints import resolve
from hwnas.search.spaces import create_space

REPO = Path(__file__).resolve().parents[2]
STACK = ("core", "devices", "predictors", "search", "bench", "hwnas")


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture()
def nb201_table(tmp_path):
    """A latency table of 500 NB201 cells whose names carry no unit."""
    sp = create_space("nb201")
    archs = list(sp.iter_all())[:500]
    f = tmp_path / "fleet.csv"
    pd.DataFrame({"arch_str": [sp.to_str(a) for a in archs],
                  "phone": np.linspace(1.0, 9.0, len(archs))}).to_csv(f, index=False)
    return sp, f


def test_a_table_imported_with_its_unit_is_read_with_that_unit(nb201_table, tmp_path):
    sp, f = nb201_table
    out = tmp_path / "imported.parquet"
    r = run("tables", "import", "--space", "nb201", "--unit", "ms", "--out", str(out), str(f))
    assert r.exit_code == 0, r.output
    (b,) = resolve(sp, [f"latency_s<=0.005@table:{out}:phone"])  # 5 ms, the column in ms
    v = b.values(list(sp.iter_all())[:2])
    assert v.tolist() == pytest.approx([1.0, 1.0 + 8.0 / 499])


def test_an_unknown_unit_is_named_as_a_unit(nb201_table):
    sp, f = nb201_table
    with pytest.raises(ValueError, match="'msec' is not a unit; write one of ms"):
        resolve(sp, [f"latency_ms<=5@table:{f}:phone:msec"])
    r = run("tables", "import", "--space", "nb201", "--unit", "msec", str(f))
    assert r.exit_code == 2 and "unit 'msec' is not one of" in r.output


def test_a_partial_table_says_how_much_is_missing_and_what_to_do(nb201_table):
    sp, f = nb201_table
    (b,) = resolve(sp, [f"latency_ms<=5@table:{f}:phone:ms"])
    with pytest.raises(LookupError) as e:
        b.values(list(sp.iter_all()))
    msg = str(e.value)
    assert "15,125 of the 15,625 archs asked have no row" in msg
    assert "covers 500 of the 15,625 archs of nb201" in msg and "give a table of every arch" in msg


def test_an_unknown_space_pattern_is_an_error():
    r = run("spaces", "zzz")
    assert r.exit_code == 2 and "no space matches 'zzz'" in r.output and "nb201" in r.output
    assert "archs" not in r.output  # no header of an empty listing


def test_quiet_hides_progress_bars_and_rows_name_data_portably(data_dir, tmp_path, capfd):
    acc = f"table:{data_dir}/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc"
    con = f"latency_ms<=8@table:{data_dir}/help-latency/help_nasbench201_latency_ms.csv:pixel3"
    args = ["search", "--space", "nb201", "--method", "random", "--accuracy", acc, "--constraint", con,
            "--budget", "3", "--seeds", "1"]
    from hwnas.bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["-q", *args, "--out", str(tmp_path / "q")])
    assert e.value.code == 0
    quiet = capfd.readouterr().err
    assert "search nb201" not in quiet and "run/s" not in quiet
    # the runs name the shared data portably, not by this machine's path
    rows = pd.read_csv(tmp_path / "q" / "runs.csv")
    assert rows.constraint[0] == "latency_ms<=8@table:$HWNAS_DATA_DIR/help-latency/help_nasbench201_latency_ms.csv:pixel3"
    assert str(data_dir) not in (tmp_path / "q" / "runs.csv").read_text()
    assert str(data_dir) not in (tmp_path / "q" / "provenance.json").read_text()
    from hwnas.core.log import bars_off, setup_logging

    setup_logging(0)
    assert not bars_off()  # without -q the bars show


def test_the_running_command_is_recorded_portably_and_forgotten(tmp_path):
    from hwnas.core import invocation

    seen = {}

    @cli.command("probe-23")
    def probe():
        seen["line"] = invocation.command_line("default")

    try:
        r = run("probe-23")
        assert r.exit_code == 0 and seen["line"] == "hwnas probe-23"
    finally:
        cli.commands.pop("probe-23")
    assert invocation.command_line("default") == "default"  # library use after the command ended


def test_every_progress_bar_obeys_quiet():
    """Each tqdm bar of the stack takes `disable=bars_off() ...`, so -q hides it."""
    bad = []
    for pkg in STACK:
        for p in sorted((REPO / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "tqdm":
                    disable = next((k.value for k in node.keywords if k.arg == "disable"), None)
                    if disable is None or "bars_off" not in ast.unparse(disable):
                        bad.append(f"{p.relative_to(REPO)}:{node.lineno}")
    assert not bad, "progress bars that -q does not hide: " + ", ".join(bad)


@pytest.mark.slow
def test_a_board_names_every_flag_that_made_it(data_dir, tmp_path):
    r = run("leaderboard", "--track", "nb201", "--methods", "random", "--seeds", "1", "--budget", "3",
            "--quantile", "0.5", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    written = next(line for line in (tmp_path / "nb201.md").read_text().splitlines() if "Written by" in line)
    assert "--methods random" in written and "--quantile 0.5" in written and "--budget 3" in written
    assert str(tmp_path) not in written  # the output folder, written portably


def test_readme_names_the_extras_setup_installs():
    make = (REPO / "Makefile").read_text()
    extras = re.search(r'pip\)? install -e "?\.\[([a-z,]+)\]', make.replace("$(PIP)", "pip")).group(1)
    readme = (REPO / "README.md").read_text()
    said = re.findall(r"`pip install -e \.\[([a-z,]+)\]`", readme)
    assert said and all(s == extras for s in said), (said, extras)


def test_tables_help_promises_only_its_subcommands():
    from hwnas.bench.commands.tables import tables

    r = run("tables", "-h")
    assert r.exit_code == 0 and "Import tables" in r.output
    verbs = {"inspect", "list", "show", "export", "merge"}
    promised = {w for w in re.findall(r"[a-z]+", tables.help.lower()) if w in verbs}
    assert promised <= set(tables.commands), f"`hwnas tables -h` promises {sorted(promised - set(tables.commands))}"


def _user_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings: messages and report text."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_user_facing_text_cites_no_internal_issue_numbers():
    cite = re.compile(r"\bissues? ?#?\d+\b", re.IGNORECASE)
    bad = []
    for pkg in STACK:
        for p in sorted((REPO / pkg).rglob("*.py")):
            bad += [f"{p.relative_to(REPO)}:{ln}: {s[:60]!r}" for ln, s in _user_strings(p) if cite.search(s)]
    for p in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "results").rglob("*.md"))]:
        bad += [f"{p.relative_to(REPO)}:{i}" for i, line in enumerate(p.read_text().splitlines(), 1) if cite.search(line)]
    assert not bad, "internal issue numbers in user-facing text:\n" + "\n".join(bad)


#: import names of declared extras that need not be installed here (GPU builds)
NOT_INSTALLED_HERE = {"tensorrt": "tensorrt", "pynvml": "nvidia-ml-py", "pycuda": "pycuda",
                      "cuda": "cuda-python"}


def _declared() -> set[str]:
    import tomllib

    doc = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = doc["dependencies"] + [r for extra in doc.get("optional-dependencies", {}).values() for r in extra]
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in reqs}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_every_third_party_import_is_declared():
    declared, dists = _declared(), packages_distributions()
    bad = []
    for pkg in STACK:
        for p in sorted((REPO / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in STACK or top == "__future__":
                        continue
                    owners = {d.lower() for d in dists.get(top, [])} or {NOT_INSTALLED_HERE.get(top, f"?{top}")}
                    if not owners & declared:
                        bad.append(f"{p.relative_to(REPO)}:{node.lineno} imports {top} ({', '.join(sorted(owners))})")
    assert not bad, "imports no dependency in pyproject.toml declares:\n" + "\n".join(bad)


def test_torch_devices_refuse_onnx_with_one_line():
    from hwnas.devices.base import DeviceUnavailable
    from hwnas.devices.torch_eager import TorchEagerDevice

    with pytest.raises(DeviceUnavailable, match="time the ONNX model on cpu"):
        TorchEagerDevice("torch-cpu:threads=1").measure_onnx(b"", {"x": (1, 3, 8, 8)})

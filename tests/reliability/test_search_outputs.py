"""Issue 15: one writer per search folder, runs never without their curve, resume keyed on
provenance, damaged runs files in one line, budgets above the space clamped."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.bench.engine import search

from tests.search.conftest import nb201_tables  # noqa: F401 - the fixture

KW = dict(params={"evolution": {"population": 5}}, progress=False)
_PROBLEMS: dict = {}


@pytest.fixture(autouse=True)
def loaded_once(monkeypatch):
    """Reading the 15,625-row tables takes ~10 s on these shared cores; load each problem once."""
    real = search._load_problem

    def cached(*a):
        if a not in _PROBLEMS:
            _PROBLEMS[a] = real(*a)
        return _PROBLEMS[a]

    monkeypatch.setattr(search, "_load_problem", cached)


def args(tabs, budget=12, seeds=2):
    acc, lat, _, _ = tabs
    return ("nb201", ["random", "evolution"], f"table:{acc}:acc", [f"latency_ms<=6@table:{lat}:dev"], (budget,), seeds)


@pytest.mark.slow
def test_two_searches_into_one_folder_second_stops_at_once(nb201_tables, tmp_path):  # noqa: F811
    acc, lat, _, _ = nb201_tables
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hwnas.bench.cli", "search", "--space", "nb201", "--method", "random",
           "--accuracy", f"table:{acc}:acc", "--constraint", f"latency_ms<=6@table:{lat}:dev",
           "--budget", "300", "--seeds", "6", "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (out / ".hwnas.lock").exists() or not (out / ".hwnas.lock").read_text().strip():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - t0 < 120
            time.sleep(0.1)
        second = subprocess.run([*cmd[:-6], "--budget", "50", "--seeds", "2", "--out", str(out)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and str(out) in lines[0], second.stderr
        assert first.wait(timeout=300) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs.budget) == {300}  # nothing of the first lost, nothing of the second
    assert not (out / ".hwnas.lock").exists()


def test_a_kill_between_the_two_writes_leaves_no_run_without_its_curve(nb201_tables, tmp_path, monkeypatch):  # noqa: F811
    real, calls = search._write, []

    def dying_write(path, rows):
        calls.append(path.name)
        if len(calls) == 3:  # the second run: its first file is written, then the process dies
            real(path, rows)
            raise KeyboardInterrupt
        real(path, rows)

    monkeypatch.setattr(search, "_write", dying_write)
    monkeypatch.setattr(search, "FLUSH_S", 0.0)  # every run written as it ends
    with pytest.raises(KeyboardInterrupt):
        search.run(*args(nb201_tables), tmp_path, **KW)
    keys = ["method", "constraint", "budget", "seed"]
    left_runs = pd.read_csv(tmp_path / "runs.csv")[keys]
    left_curves = pd.read_parquet(tmp_path / "trajectories.parquet")[keys].drop_duplicates()
    assert len(left_runs.merge(left_curves)) == len(left_runs)  # on disk: no run without its curve
    monkeypatch.setattr(search, "_write", real)
    df = search.run(*args(nb201_tables), tmp_path, **KW)
    traj = pd.read_parquet(tmp_path / "trajectories.parquet")
    keys = ["method", "constraint", "budget", "seed"]
    assert len(df) == 4 and not df.duplicated(keys).any()
    curves = traj.groupby(keys).query.agg(["count", "max"])
    assert len(curves) == 4 and (curves["count"] == curves["max"]).all()  # one curve per run, no duplicates


def test_old_runs_without_curves_run_again(nb201_tables, tmp_path):  # noqa: F811
    search.run(*args(nb201_tables), tmp_path, **KW)
    traj = pd.read_parquet(tmp_path / "trajectories.parquet")
    traj[traj.seed == 0].to_parquet(tmp_path / "trajectories.parquet")  # what the old order left
    df = search.run(*args(nb201_tables), tmp_path, **KW)
    traj = pd.read_parquet(tmp_path / "trajectories.parquet")
    assert len(df) == 4 and traj.groupby(["method", "seed"]).ngroups == 4


def test_truncated_last_row_is_dropped_and_run_again(nb201_tables, tmp_path):  # noqa: F811
    full = search.run(*args(nb201_tables), tmp_path, **KW)
    text = (tmp_path / "runs.csv").read_text()
    (tmp_path / "runs.csv").write_text(text[: text.rstrip("\n").rfind("\n") + 12])  # last row cut mid-way
    df = search.run(*args(nb201_tables), tmp_path, **KW)
    assert len(df) == 4 and not df.duplicated(["method", "seed"]).any()
    cols = ["method", "seed", "arch_str", "accuracy"]
    pd.testing.assert_frame_equal(df.sort_values(cols)[cols].reset_index(drop=True),
                                  full.sort_values(cols)[cols].reset_index(drop=True))


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00binary", b"name,value\nx,1\n"])
def test_binary_or_foreign_runs_file_is_one_line_naming_it(nb201_tables, tmp_path, content):  # noqa: F811
    (tmp_path / "runs.csv").write_bytes(content)
    acc, lat, _, _ = nb201_tables
    r = CliRunner().invoke(cli, ["search", "--space", "nb201", "--method", "random", "--accuracy", f"table:{acc}:acc",
                                 "--constraint", f"latency_ms<=6@table:{lat}:dev", "--budget", "5", "--seeds", "1",
                                 "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert str(tmp_path / "runs.csv") in r.output and "--fresh" in r.output
    assert (tmp_path / "runs.csv").read_bytes() == content


def test_resume_across_another_accuracy_table_refuses_and_fresh_backs_up(nb201_tables, tmp_path):  # noqa: F811
    acc, lat, accv, _ = nb201_tables
    search.run(*args(nb201_tables), tmp_path / "o", **KW)
    other = tmp_path / "acc12.csv"
    pd.read_csv(acc).assign(acc=accv - 5).to_csv(other, index=False)
    a = list(args(nb201_tables))
    a[2] = f"table:{other}:acc"
    with pytest.raises(ValueError, match="cannot resume.*accuracy") as ei:
        search.run(*a, tmp_path / "o", **KW)
    assert "--fresh" in str(ei.value) and "\n" not in str(ei.value)
    # same path, content changed: also refused (content hash)
    same = tmp_path / "o2"
    search.run(*args(nb201_tables), same, **KW)
    df = search.run(*a, same, resume=False, **KW)  # --fresh
    assert len(df) == 4 and len(list(same.glob("runs.replaced-*.csv"))) == 1
    assert len(list(same.glob("trajectories.replaced-*.parquet"))) == 1


def test_resume_refuses_a_cost_table_changed_under_its_constraint(nb201_tables, tmp_path):  # noqa: F811
    """The constraint's table is hashed: same path and column, new content -> refused; another
    constraint into the same folder joins it; a sidecar from before the hashes is adopted."""
    import json

    acc, lat, _, _ = nb201_tables
    lat2 = tmp_path / "lat_ms.csv"
    lat2.write_bytes(open(lat, "rb").read())
    a = list(args(nb201_tables))
    a[3] = [f"latency_ms<=6@table:{lat2}:dev"]
    search.run(*a, tmp_path / "o", **KW)
    side = tmp_path / "o" / "provenance.json"
    facts = json.loads(side.read_text())["provenance"]
    assert facts[f"cost_sha256 {a[3][0]}"] and facts["truth"] is None
    other = list(a)
    other[3] = [f"latency_ms<=7@table:{lat2}:dev"]
    assert len(search.run(*other, tmp_path / "o", **KW)) == 8  # another constraint: joins the folder
    # a sidecar written before the cost hashes were recorded: adopted, then the hashes are kept
    old = {k: v for k, v in json.loads(side.read_text())["provenance"].items() if not k.startswith(("cost_", "truth"))}
    side.write_text(json.dumps({"provenance": old}))
    assert len(search.run(*a, tmp_path / "o", **KW)) == 8
    assert f"cost_sha256 {a[3][0]}" in json.loads(side.read_text())["provenance"]
    _PROBLEMS.clear()  # the cached problem would keep the old latencies
    pd.read_csv(lat2).assign(dev=lambda d: d.dev * 0.5).to_csv(lat2, index=False)
    with pytest.raises(ValueError, match="cannot resume.*cost_sha256 latency_ms<=6") as ei:
        search.run(*a, tmp_path / "o", **KW)
    assert "--fresh" in str(ei.value) and "\n" not in str(ei.value)


def test_budget_above_a_finite_space_is_clamped_with_a_note(nb201_tables, tmp_path, caplog):  # noqa: F811
    from hwnas.search.budget import clamp_budgets
    from hwnas.search.spaces import create_space

    sp = create_space("nb201")
    with caplog.at_level("WARNING"):
        assert clamp_budgets(sp, [100, 20000, 10**9]) == [100, 15625]
    assert "clamped to 15625" in caplog.text
    with pytest.raises(ValueError, match="above the limit"):
        clamp_budgets(create_space("mbv3-fmnist"), [10**9])


def test_a_spec_written_with_variables_is_hashed_after_expansion(nb201_tables, tmp_path, monkeypatch):  # noqa: F811
    """Issue 25: `$VAR` and `${VAR}` specs name the file that is read; pointing the same spec at
    another table is refused on resume, not mixed."""
    import json

    from hwnas.core.io import file_sha256

    acc, lat, accv, _ = nb201_tables
    monkeypatch.setenv("ACCDIR", str(acc.parent))
    a = list(args(nb201_tables))
    a[2], a[3] = "table:$ACCDIR/acc.csv:acc", ["latency_ms<=6@table:${ACCDIR}/lat_ms.csv:dev"]
    search.run(*a, tmp_path / "o", **KW)
    facts = json.loads((tmp_path / "o" / "provenance.json").read_text())["provenance"]
    assert facts["accuracy_sha256"] == file_sha256(acc)
    assert facts[f"cost_sha256 {a[3][0]}"] == file_sha256(lat)
    other = tmp_path / "other"
    other.mkdir()
    pd.read_csv(acc).assign(acc=accv - 5).to_csv(other / "acc.csv", index=False)
    (other / "lat_ms.csv").write_bytes(lat.read_bytes())
    monkeypatch.setenv("ACCDIR", str(other))
    with pytest.raises(ValueError, match="cannot resume.*accuracy_sha256"):
        search.run(*a, tmp_path / "o", **KW)


def test_rows_without_provenance_are_refused_unless_fresh_or_adopt(nb201_tables, tmp_path):  # noqa: F811
    search.run(*args(nb201_tables), tmp_path, **KW)
    (tmp_path / "provenance.json").unlink()
    before = (tmp_path / "runs.csv").read_bytes()
    with pytest.raises(ValueError, match="no provenance.json") as ei:
        search.run(*args(nb201_tables), tmp_path, **KW)
    assert "--fresh" in str(ei.value) and "--adopt" in str(ei.value) and "\n" not in str(ei.value)
    assert (tmp_path / "runs.csv").read_bytes() == before and not (tmp_path / "provenance.json").exists()
    assert len(search.run(*args(nb201_tables), tmp_path, adopt=True, **KW)) == 4
    assert (tmp_path / "provenance.json").exists()


@pytest.mark.parametrize("doc", ["null", "[1, 2]", '"text"', '{"provenance": null}', '{"provenance": [1]}'])
def test_a_provenance_file_that_is_not_an_object_is_one_line(nb201_tables, tmp_path, doc):  # noqa: F811
    acc, lat, _, _ = nb201_tables
    cmd = ["search", "--space", "nb201", "--method", "random", "--accuracy", f"table:{acc}:acc",
           "--constraint", f"latency_ms<=6@table:{lat}:dev", "--budget", "5", "--seeds", "1", "--out", str(tmp_path)]
    assert CliRunner().invoke(cli, cmd).exit_code == 0
    (tmp_path / "provenance.json").write_text(doc)
    r = CliRunner().invoke(cli, cmd)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "provenance.json: not a provenance file" in lines[0], r.output
    assert (tmp_path / "provenance.json").read_text() == doc

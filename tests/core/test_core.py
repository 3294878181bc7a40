"""The bottom package: default paths and portable paths, atomic writes, the package logger."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from hwnas.core import io, log, paths


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    d = tmp_path / "shared-data"
    d.mkdir()
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(d))
    return d


def test_defaults_are_spelled_once():
    assert paths.TABLES_DIR.as_posix() == "results/tables"
    from hwnas.bench.engine import profile, validate_lut
    from hwnas.search import constraints

    assert constraints.TABLES_DIR == profile.DEFAULT_OUT == validate_lut.ValidateConfig.out_dir == paths.TABLES_DIR


def test_data_dir_reads_the_environment_then_falls_back(data_env, monkeypatch):
    assert paths.data_dir() == data_env
    assert paths.data_dir("elsewhere") == paths.Path("elsewhere")
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    assert paths.data_dir() == paths.REPO_ROOT.parent / "shared" / "data"


def test_portable_paths(data_env):
    assert paths.portable(data_env / "help" / "x.csv") == "$HWNAS_DATA_DIR/help/x.csv"
    assert paths.portable(paths.REPO_ROOT / "runs" / "a.ckpt") == "runs/a.ckpt"
    assert paths.portable("results/tables/x.parquet") == "results/tables/x.parquet"
    assert not paths.portable("/somewhere/else/t.csv").startswith("/")
    spec = f"latency_ms<=6.4@table:{data_env}/help/x.csv:pixel3"
    assert paths.portable_spec(spec) == "latency_ms<=6.4@table:$HWNAS_DATA_DIR/help/x.csv:pixel3"
    assert paths.portable_doc({"t": [f"{data_env}/a.csv:c"], "n": 3}) == {"t": ["$HWNAS_DATA_DIR/a.csv:c"], "n": 3}
    assert paths.expand("$HWNAS_DATA_DIR/help/x.csv") == str(data_env / "help" / "x.csv")
    assert paths.expand("runs/a.ckpt") == "runs/a.ckpt"


def test_expand_reads_every_variable_and_names_an_unset_one(data_env, monkeypatch):
    """Issue 25: a spec's path is read (and hashed) after `$VARS`, `${VARS}` and `~` expand."""
    monkeypatch.setenv("ACCDIR", "/x/acc")
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    assert paths.expand("$ACCDIR/a.csv") == "/x/acc/a.csv" == paths.expand("${ACCDIR}/a.csv")
    assert paths.expand("${HWNAS_DATA_DIR}/h.csv") == str(data_env / "h.csv")
    assert paths.expand("~/t.csv") == "/home/u/t.csv"
    with pytest.raises(ValueError, match=r"\$NOPE_NOT_SET, which is not set") as ei:
        paths.expand("$NOPE_NOT_SET/a.csv")
    assert "\n" not in str(ei.value)


def test_a_portable_table_spec_reads_back(data_env):
    import pandas as pd
    from hwnas.devices.table import parse_table_spec, read_table_file

    pd.DataFrame({"arch_idx": [0, 1], "lat": [1.0, 2.0]}).to_csv(data_env / "t.csv", index=False)
    spec = f"table:{paths.portable(data_env / 't.csv')}:lat"
    path, col = parse_table_spec(spec)
    assert col == "lat" and read_table_file(path).lat.tolist() == [1.0, 2.0]


def test_atomic_writes_leave_no_temp_and_readable_files(tmp_path):
    p = tmp_path / "sub" / "a.json"
    io.atomic_write_json(p, {"b": 1})
    io.atomic_write_text(tmp_path / "t.md", "x\n")
    assert p.read_text() == '{\n  "b": 1\n}\n' and (tmp_path / "t.md").read_text() == "x\n"
    assert stat.S_IMODE(os.stat(p).st_mode) & 0o044  # group/other may read (mkstemp alone makes 0600)
    assert sorted(f.name for f in p.parent.iterdir()) == ["a.json"]


_WRITER = ("import os, sys, time; sys.path.insert(0, {repo!r}); from hwnas.core import io\n"
           "def stuck(fd): print('writing', flush=True); time.sleep(120)\n"
           "os.fsync = stuck\n"
           "io.atomic_write_bytes({path!r}, b'new')\n")


def test_a_killed_writers_temp_file_is_swept_by_the_next_write_and_nothing_else(tmp_path):
    """Issue 25: kill -9 during a write leaves a temp file; the next write of that target removes
    it (its writer is dead), but not a live writer's temp file nor a user's file of a similar name."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    target = tmp_path / "runs.csv"
    target.write_text("old\n")

    def writer():
        p = subprocess.Popen([sys.executable, "-c", _WRITER.format(repo=str(REPO), path=str(target))],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "writing"
        return p

    dead, live = writer(), writer()
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        temps = {f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")}
        assert len(temps) == 2 and any(f"-{dead.pid}-" in t for t in temps)
        (tmp_path / ".runs.csv.notes").write_text("mine\n")
        (tmp_path / ".runs.csv.x.tmp").write_text("mine too\n")
        io.atomic_write_text(target, "new\n")
        left = {f.name for f in tmp_path.iterdir()}
        assert not any(f"-{dead.pid}-" in t for t in left)  # the killed writer's temp: swept
        assert any(f"-{live.pid}-" in t for t in left)  # a writer still running: kept
        assert {".runs.csv.notes", ".runs.csv.x.tmp", "runs.csv"} <= left and target.read_text() == "new\n"
    finally:
        live.kill()
        live.wait()


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(TypeError):
        io.atomic_write_bytes(p, object())  # not bytes: nothing replaces the file
    assert p.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def _reset_logging():
    lg = logging.getLogger(log.LOGGER_NAME)
    for h in [h for h in lg.handlers if getattr(h, "_hwnas_handler", False)]:
        lg.removeHandler(h)
    lg.setLevel(logging.NOTSET)


def test_setup_logging_levels_and_one_handler(capsys):
    try:
        for verbosity, level in ((0, logging.INFO), (1, logging.DEBUG), (-1, logging.WARNING), (-2, logging.ERROR)):
            assert log.setup_logging(verbosity) == level
        log.setup_logging(0)
        log.setup_logging(0)
        assert len([h for h in logging.getLogger("hwnas").handlers if getattr(h, "_hwnas_handler", False)]) == 1
        logging.getLogger("hwnas.search.methods.x").info("an info line")
        logging.getLogger("hwnas").warning("careful")
        err = capsys.readouterr().err
        assert "an info line" in err and "careful" in err
    finally:
        _reset_logging()


def test_cli_quiet_and_verbose_flags():
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    try:
        for flags, level in (([], logging.INFO), (["-q"], logging.WARNING), (["-qq"], logging.ERROR),
                             (["-v"], logging.DEBUG)):
            r = CliRunner().invoke(cli, [*flags, "spaces", "--json"])
            assert r.exit_code == 0, r.output
            assert logging.getLogger("hwnas").level == level
    finally:
        log.setup_logging(0)
        _reset_logging()


def test_parameters_come_from_init_signatures():
    from hwnas.core.params import Parameters

    class Base(Parameters):
        def __init__(self, space="nb201", seed=0):
            self.space, self.seed = space, seed

    class Child(Base):
        def __init__(self, width=8, **kw):
            super().__init__(**kw)
            self.width = width

        def fit(self):
            self.coef_ = 1
            return self

    c = Child(width=3, seed=2).fit()
    assert c.get_params() == {"width": 3, "space": "nb201", "seed": 2}
    assert type(c)(**c.get_params()).get_params() == c.get_params()
    assert c.set_params(width=4) is c and c.width == 4
    with pytest.raises(ValueError, match="no parameter 'depth'; it has width, space, seed"):
        c.set_params(depth=1)

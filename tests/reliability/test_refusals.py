"""Issue 25: bad options and parameters end in one line naming them, before anything is written."""

from __future__ import annotations

from click.testing import CliRunner
from hwnas.bench.cli import cli


def one_line_error(r) -> str:
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("hwnas: error:"), r.output
    return lines[0]


def test_one_device_given_twice_is_refused_before_any_table_is_made(tmp_path):
    out = tmp_path / "tables"
    r = CliRunner().invoke(cli, ["profile", "--device", "cpu:threads=1,cpu:threads=1", "--space", "nb201",
                                 "--limit", "0", "--no-reference", "--out-dir", str(out),
                                 "--cache-dir", str(tmp_path / "cache")])
    assert "cpu-t1 twice" in one_line_error(r)
    assert not out.exists()

"""Issue 15: one writer per output (profile tables, predictor folders), stale locks taken over,
`inf` refused like NaN, damaged settings files in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hwnas.core import lock

REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time; sys.path.insert(0, {repo!r}); from core.lock import acquire; "
        "acquire({path!r}, is_dir={is_dir}); print('held', flush=True); time.sleep(120)")


def holder(path, is_dir):
    p = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), path=str(path), is_dir=is_dir)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_writer_stops_at_once_naming_the_holder_and_a_stale_lock_is_taken_over(tmp_path):
    p = holder(tmp_path, True)
    try:
        with pytest.raises(lock.LockedError, match=f"pid {p.pid}") as ei:
            lock.acquire(tmp_path, "--out", is_dir=True)
        assert "\n" not in str(ei.value)
    finally:
        p.kill()
        p.wait()
    lf = tmp_path / lock.LOCK_NAME
    assert lf.exists() and lock.is_stale(lf)  # killed: the file names a dead pid, no flock held
    with lock.output_lock(tmp_path, is_dir=True):
        assert json.loads(lf.read_text())["pid"] == os.getpid()
    assert not lf.exists()


def test_two_profiles_of_one_table_second_stops_at_once(tmp_path):
    from hwnas.bench.engine.store import RowStore

    table = tmp_path / "mbv3-fmnist" / "cpu-t1.parquet"
    table.parent.mkdir()
    p = holder(table, False)
    try:
        with pytest.raises(lock.LockedError, match=f"cpu-t1.parquet is being written by pid {p.pid}"):
            RowStore(table).check_writable()
    finally:
        p.kill()
        p.wait()
    s = RowStore(table)
    s.check_writable()
    s.append({"block_key": "a", "latency_ms": 1.0})
    s.finalize()
    assert not (tmp_path / "mbv3-fmnist" / ".cpu-t1.parquet.lock").exists()


def test_two_predictor_runs_into_one_folder_second_stops_at_once(tmp_path):
    from hwnas.bench.engine import predictors

    (tmp_path / "rank_correlation.csv").write_text("predictor,train_size,seed\nx,2,0\n")
    before = (tmp_path / "rank_correlation.csv").read_bytes()
    p = holder(tmp_path, True)
    try:
        with pytest.raises(lock.LockedError, match=f"pid {p.pid}"):
            predictors.evaluate("nb201", str(tmp_path / "no-table.csv"), "acc", tmp_path)
    finally:
        p.kill()
        p.wait()
    assert (tmp_path / "rank_correlation.csv").read_bytes() == before


def test_inf_is_refused_like_nan(tmp_path):
    from hwnas.devices.table import TableError, import_arch_table
    from hwnas.search.spaces import create_space

    sp = create_space("nb201")
    strs = [sp.to_str(a) for a in list(sp.iter_all())[:5]]
    f = tmp_path / "t.csv"
    pd.DataFrame({"arch_str": strs, "acc": [1.0, 2.0, np.inf, 3.0, 4.0]}).to_csv(f, index=False)
    with pytest.raises(TableError, match="row 3: column 'acc' is infinite"):
        import_arch_table(f, sp, ["acc"])


def test_binary_or_truncated_settings_file_is_one_line_naming_it(tmp_path):
    from hwnas.bench.engine.store import read_json_file

    for content in (b"\xff\xfe\x00binary", b'{"space": "nb2'):
        f = tmp_path / "config.json"
        f.write_bytes(content)
        with pytest.raises(ValueError, match="config.json: not a") as ei:
            read_json_file(f)
        assert "\n" not in str(ei.value) and "--fresh" in str(ei.value)


def test_search_help_points_to_no_missing_option():
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    r = CliRunner().invoke(cli, ["search", "--help"])
    assert r.exit_code == 0 and "--list" not in r.output

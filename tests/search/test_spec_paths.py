"""Spec paths go through one place, core.paths.expand: a pool path and a `supernet:PATH` accuracy
source read `~` and a set `$VAR`, and an unset variable is one line naming it and the fix (it
used to pass through os.path.expandvars silently and fail later as a missing file)."""

from __future__ import annotations

import pandas as pd
import pytest
from hwnas.search.accuracy import accuracy_source
from hwnas.search.spaces import create_space
from hwnas.search.spaces.pool import read_pool

UNSET = "HWNAS_TEST_SURELY_UNSET_DIR"


@pytest.fixture
def pool_file(tmp_path):
    sp = create_space("nb201")
    strs = [sp.to_str(sp.from_index(i)) for i in range(0, 15625, 1000)]
    p = tmp_path / "pool.csv"
    pd.DataFrame({"arch_str": strs}).to_csv(p, index=False)
    return p, strs


def _one_line_naming_the_variable(exc: BaseException) -> None:
    msg = str(exc)
    assert "\n" not in msg and f"${UNSET}" in msg and f"export {UNSET}=" in msg


def test_a_pool_path_reads_home_and_a_set_variable(pool_file, monkeypatch):
    p, strs = pool_file
    base = create_space("nb201")
    monkeypatch.setenv("HOME", str(p.parent))
    monkeypatch.setenv("HWNAS_TEST_POOL_DIR", str(p.parent))
    for written in ("~/pool.csv", "$HWNAS_TEST_POOL_DIR/pool.csv", "${HWNAS_TEST_POOL_DIR}/pool.csv"):
        sp = read_pool(base, written)
        assert [sp.to_str(a) for a in sp.iter_all()] == strs, written


def test_a_pool_path_with_an_unset_variable_is_one_line_naming_it(monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(ValueError) as ei:
        read_pool(create_space("nb201"), f"${UNSET}/pool.csv")
    _one_line_naming_the_variable(ei.value)


def test_a_supernet_spec_reads_home_and_a_set_variable(tmp_path, monkeypatch):
    """No checkpoint is there: the refusal names the expanded path, so the spec was expanded."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HWNAS_TEST_CKPT_DIR", str(tmp_path / "ckpts"))
    sp = create_space("nb201")
    for written, read in (("~/net.pt", tmp_path / "net.pt"), ("$HWNAS_TEST_CKPT_DIR/net.pt", tmp_path / "ckpts" / "net.pt")):
        with pytest.raises(FileNotFoundError) as ei:
            accuracy_source(sp, f"supernet:{written}")
        assert f"supernet checkpoint {read} does not exist" in str(ei.value)


def test_a_supernet_spec_with_an_unset_variable_is_one_line_naming_it(monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(ValueError) as ei:
        accuracy_source(create_space("nb201"), f"supernet:${UNSET}/net.pt")
    _one_line_naming_the_variable(ei.value)

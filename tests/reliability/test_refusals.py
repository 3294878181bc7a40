"""Issue 25: bad options and parameters end in one line naming them, before anything is written."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("value, says", [("-1", "must be >= 1"), ("0", "must be >= 1"), ("1.5", "must be an integer"),
                                         ("abc", "must be an integer")])
def test_a_bad_method_parameter_is_one_line_naming_it_and_leaves_no_folder(nb201_tables, tmp_path, value, says):  # noqa: F811
    acc, lat, _, _ = nb201_tables
    out = tmp_path / "new" / "out"
    r = CliRunner().invoke(cli, ["search", "--space", "nb201", "--method", "random,evolution", "--accuracy",
                                 f"table:{acc}:acc", "--constraint", f"latency_ms<=6@table:{lat}:dev", "--budget", "5",
                                 "--seeds", "1", "--out", str(out), "--param", f"evolution.population={value}"])
    assert f"evolution.population={value if value != 'abc' else chr(34) + 'abc' + chr(34)}: {says}" in one_line_error(r)
    assert not (tmp_path / "new").exists()  # a refused run leaves no (empty) folder behind


def test_every_parameter_of_every_method_is_checked():
    from hwnas.search.methods import create_method, list_methods
    from hwnas.search.methods.base import _METHODS

    checked = 0
    for name in list_methods():
        cls = _METHODS[name]
        for p in cls._signature_params().values():
            kinds = str(p.annotation)
            if "int" in kinds or "float" in kinds or "bool" in kinds:
                with pytest.raises(ValueError, match=f"--param {name}.{p.name}=\"abc\": must be"):
                    create_method(name, **{p.name: "abc"})
                checked += 1
            if kinds.startswith("int") and isinstance(p.default, int) and p.default >= 1 and p.name not in cls.param_ranges:
                with pytest.raises(ValueError, match=f"{name}.{p.name}=0: must be >= 1"):
                    create_method(name, **{p.name: 0})
        assert create_method(name, **create_method(name).get_params()).get_params() == create_method(name).get_params()
    assert checked > 100
    with pytest.raises(ValueError, match="evolution.mutation_p=1.5: must be in"):
        create_method("evolution", mutation_p=1.5)
    with pytest.raises(ValueError, match="must be a finite number"):
        create_method("binas", relax=float("nan"))
    assert create_method("evolution", population=20.0).population == 20


@pytest.mark.parametrize("value", ["-1", "0", "many"])
def test_workers_below_one_names_the_option(tmp_path, value):
    r = CliRunner().invoke(cli, ["search", "--space", "nb201", "--method", "random", "--accuracy", "table:x.csv:a",
                                 "--constraint", "latency_ms<=6@cpu-t1", "--out", str(tmp_path / "o"), "--workers", value])
    assert f"--workers {value}: give a number of workers >= 1, or auto" in one_line_error(r)
    assert not (tmp_path / "o").exists()


def test_workers_auto_means_all_cores_and_a_number_is_kept():
    from hwnas.bench.commands.options import check_workers

    assert check_workers(None, None, "auto") is None and check_workers(None, None, None) is None
    assert check_workers(None, None, "3") == 3


from tests.search.conftest import nb201_tables  # noqa: E402, F401 - the fixture


def test_a_refused_search_leaves_no_folder_and_keeps_an_existing_one(tmp_path):
    cmd = ["search", "--space", "nb201", "--method", "random", "--accuracy", f"table:{tmp_path}/none.csv:a",
           "--constraint", "latency_ms<=6@cpu-t1", "--tables-dir", str(tmp_path / "tables")]
    r = CliRunner().invoke(cli, [*cmd, "--out", str(tmp_path / "a" / "b")])
    assert "no table for device 'cpu-t1'" in one_line_error(r)
    assert not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()
    one_line_error(CliRunner().invoke(cli, [*cmd, "--out", str(tmp_path / "mine")]))
    assert (tmp_path / "mine").is_dir()  # a folder the run did not create is not removed

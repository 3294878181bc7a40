"""Units stated by the user for a table column: `table:PATH:COLUMN:UNIT` (issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.devices.table import TableError, parse_table_spec, parse_table_spec_unit
from hwnas.search.constraints import resolve
from hwnas.search.spaces import create_space


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    sp = create_space("nb201")
    archs = list(sp.iter_all())  # a search may read any cell
    lat = np.random.default_rng(1).uniform(5, 30, size=len(archs))
    d = tmp_path_factory.mktemp("units")
    base = {"arch_str": [sp.to_str(a) for a in archs]}
    pd.DataFrame({**base, "pixel2": lat}).to_csv(d / "fleet.csv", index=False)  # no unit anywhere
    pd.DataFrame({**base, "latency_ms": lat}).to_csv(d / "lat.csv", index=False)
    pd.DataFrame({**base, "pixel2": lat / 1000}).to_csv(d / "fleet_s.csv", index=False)  # unit in file name
    pd.DataFrame({**base, "acc": 50 + lat}).to_csv(d / "acc.csv", index=False)
    return d, sp, archs, lat


def test_spec_with_a_unit_parses_and_plain_specs_are_unchanged(tables):
    d, *_ = tables
    assert parse_table_spec_unit(f"table:{d}/fleet.csv:pixel2:ms") == (str(d / "fleet.csv"), "pixel2", "ms")
    assert parse_table_spec(f"table:{d}/fleet.csv:pixel2:ms") == (str(d / "fleet.csv"), "pixel2")
    assert parse_table_spec_unit(f"{d}/fleet.csv:pixel2") == (str(d / "fleet.csv"), "pixel2", None)
    assert parse_table_spec_unit(f"{d}/fleet.csv:ms") == (str(d / "fleet.csv"), "ms", None)  # a column named ms


def test_stated_unit_makes_a_unitless_table_usable(tables):
    d, sp, archs, lat = tables
    (b,) = resolve(sp, [f"latency_ms<=15@table:{d}/fleet.csv:pixel2:ms"])
    np.testing.assert_allclose(b.values(archs), lat)
    (s,) = resolve(sp, [f"latency_ms<=15@table:{d}/fleet.csv:pixel2:s"])  # stated seconds: x 1000
    np.testing.assert_allclose(s.values(archs), lat * 1000)


def test_stated_unit_that_the_names_contradict_is_an_error(tables):
    d, sp, *_ = tables
    with pytest.raises(ValueError, match="unit 's' stated, but 'latency_ms' says 'ms'"):
        resolve(sp, [f"latency_ms<=15@table:{d}/lat.csv:latency_ms:s"])
    with pytest.raises(TableError, match="'fleet_s' says 's'"):
        parse_table_spec(f"{d}/fleet_s.csv:pixel2:ms")
    with pytest.raises(ValueError, match="state it as table:"):
        resolve(sp, [f"latency_ms<=15@table:{d}/fleet.csv:pixel2"])
    with pytest.raises(ValueError, match="bounds energy but"):
        resolve(sp, [f"energy_mj<=15@table:{d}/fleet.csv:pixel2:ms"])


def test_cli_search_with_a_stated_unit_runs_and_a_contradiction_is_one_line(tables, tmp_path):
    from hwnas.bench.cli import cli as main

    d, *_ = tables
    common = ["search", "--space", "nb201", "--method", "random", "--accuracy", f"table:{d}/acc.csv:acc",
              "--budget", "10", "--seeds", "1"]
    ok = CliRunner().invoke(main, [*common, "--constraint", f"latency_ms<=15@table:{d}/fleet.csv:pixel2:ms",
                                   "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, [*common, "--constraint", f"latency_ms<=15@table:{d}/lat.csv:latency_ms:s",
                                    "--out", str(tmp_path / "b")])
    assert bad.exit_code != 0
    msg = bad.output.strip()
    assert msg.count("\n") == 0 and "unit 's' stated" in msg, msg

from __future__ import annotations

import numpy as np
import pytest
from hwnas.search.constraints import parse_constraint, resolve
from hwnas.search.spaces import create_space


@pytest.mark.parametrize("text, bound", [("latency_ms<=25@cpu", 25.0), ("latency_s<=0.025@cpu", 25.0),
                                         ("latency_us<=25000@cpu", 25.0), ("energy_j<=2@x", 2000.0),
                                         ("memory_mb<=1@x", 1024.0 ** 2)])
def test_bounds_are_converted_to_one_unit_per_quantity(text, bound):
    c = parse_constraint(text)
    assert c.bound == pytest.approx(bound) and c.metric.endswith(("_ms", "_mj", "_bytes"))


@pytest.mark.parametrize("text, message", [
    ("latency<=25@cpu", "has no unit"), ("energy_ms<=2@cpu", "not a unit of energy"),
    ("latency_ms<=-1@cpu", "positive"), ("latency_ms<=25", "METRIC_UNIT<=NUMBER@SOURCE"),
])
def test_bad_constraints_are_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_constraint(text)


def test_arch_table_takes_its_unit_from_the_file_name(nb201_tables):
    _, lat_path, _, lat = nb201_tables
    sp = create_space("nb201")
    (b,) = resolve(sp, [f"latency_s<=0.005@table:{lat_path}:dev"])
    archs = [sp.from_index(i) for i in range(10)]
    np.testing.assert_allclose(b.values(archs), lat[:10])
    np.testing.assert_array_equal(b.feasible(archs), lat[:10] <= 5.0)


def test_a_table_without_a_unit_or_of_another_quantity_is_refused(nb201_tables, tmp_path):
    _, lat_path, _, _ = nb201_tables
    sp = create_space("nb201")
    with pytest.raises(ValueError, match="holds latency"):
        resolve(sp, [f"energy_mj<=5@table:{lat_path}:dev"])
    plain = tmp_path / "lat.csv"
    plain.write_text(lat_path.read_text())
    with pytest.raises(ValueError, match="cannot tell the unit"):
        resolve(sp, [f"latency_ms<=5@table:{plain}:dev"])


def test_unknown_device_names_the_profile_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="make profile"):
        resolve(create_space("mbv3-fmnist"), ["latency_ms<=5@nosuchdevice"], tables_dir=tmp_path)


@pytest.fixture
def calibrated_table(tmp_path):
    """A synthetic mbv3-fmnist block table under TABLES/mbv3-fmnist/dev.parquet and a
    calibration of it as validate-lut writes one (digest of the table included)."""
    import json

    import pandas as pd
    from hwnas.core.io import file_sha256

    sp = create_space("mbv3-fmnist")
    rows = [{"block_key": b.key, "kind": "block", "latency_norm_ms": 0.01 * b.params["kernel"] * b.params["expand"]}
            for b in sp.all_blocks()]
    rows += [{"block_key": b.key, "kind": "fixed", "latency_norm_ms": 0.05} for b in sp.fixed_blocks()]
    path = tmp_path / "mbv3-fmnist" / "dev.parquet"
    path.parent.mkdir()
    pd.DataFrame(rows).to_parquet(path)
    doc = {"kind": "lut-linear", "column": "latency_norm_ms", "columns": [0, 1, 3], "intercept": -0.04,
           "coef": [0.8, -0.02, -0.01], "n_train": 30, "table_sha256": file_sha256(path)}
    (path.parent / "dev-lut-normalised.json").write_text(json.dumps(doc))
    return sp, tmp_path, doc


def test_calibrated_device_costs_are_the_whole_network_calibration(calibrated_table):
    sp, tables, doc = calibrated_table
    (plain,) = resolve(sp, ["latency_ms<=1@dev"], tables)
    (cal,) = resolve(sp, ["latency_ms<=1@dev:calibrated"], tables)
    archs = sp.sample_many(50, np.random.default_rng(0))
    counts = np.array([[len(s) for s in a] for a in archs], dtype=float)
    want = -0.04 + 0.8 * plain.values(archs) - 0.02 * counts[:, 0] - 0.01 * counts[:, 2]
    np.testing.assert_allclose(cal.values(archs), want)
    vals, fixed = cal.cost.block_costs()  # what BINAS's solve and the one-shot methods read
    folded = np.array([fixed + sum(vals[k] for k in sp.block_keys(a)) for a in archs])
    np.testing.assert_allclose(folded, want)


def test_a_calibration_of_another_table_or_none_is_one_clear_error(calibrated_table):
    import pandas as pd
    from hwnas.devices.table import TableError

    sp, tables, _ = calibrated_table
    path = tables / "mbv3-fmnist" / "dev.parquet"
    df = pd.read_parquet(path)
    df.loc[0, "latency_norm_ms"] *= 2  # re-profiled since the calibration was fitted
    df.to_parquet(path)
    with pytest.raises(TableError, match="re-profiled since"):
        resolve(sp, ["latency_ms<=1@dev:calibrated"], tables)
    (tables / "mbv3-fmnist" / "dev-lut-normalised.json").unlink()
    with pytest.raises(FileNotFoundError, match="validate-lut"):
        resolve(sp, ["latency_ms<=1@dev:calibrated"], tables)
    assert resolve(sp, ["latency_ms<=1@dev"], tables)  # the plain sum needs no calibration

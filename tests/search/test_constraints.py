from __future__ import annotations

import numpy as np
import pytest

from search.constraints import parse_constraint, resolve
from search.spaces import create_space


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

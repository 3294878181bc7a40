"""Bounds travel as numbers: a Constraint is built from metric, source and bound values
(make_constraint) and reads the same as the text a user writes; a cost quantile needs no made-up
bound; the budget rule lives in search.budget."""

from __future__ import annotations

import numpy as np
import pytest
from hwnas.bench.engine.search import bound_at_quantile
from hwnas.search.budget import check_budget, check_budgets
from hwnas.search.constraints import make_constraint, parse_constraint
from hwnas.search.spaces import create_space


@pytest.mark.parametrize("bound, stated", [(8.481, "8.481"), (25.0, "25"), (0.1, "0.1"), (1.234e-05, "1.234e-05")])
def test_a_constraint_from_values_is_the_one_its_text_parses_to(bound, stated):
    c = make_constraint("latency_ms", "table:$HWNAS_DATA_DIR/lat.csv:Pixel3", bound)
    assert c.text == f"latency_ms<={stated}@table:$HWNAS_DATA_DIR/lat.csv:Pixel3"
    assert parse_constraint(c.text) == c


def test_units_are_converted_and_checked_as_in_text():
    assert make_constraint("latency_s", "cpu-t1", 0.02).bound == pytest.approx(20.0)
    assert make_constraint("latency_ms", "cpu-t1", 5, strict=True) == parse_constraint("latency_ms<5@cpu-t1")
    with pytest.raises(ValueError, match="has no unit"):
        make_constraint("latency", "cpu-t1", 5)
    with pytest.raises(ValueError, match="positive"):
        make_constraint("latency_ms", "cpu-t1", 0)


def test_a_cost_quantile_reads_the_cost_without_a_bound(nb201_tables):
    _, lat_path, _, lat = nb201_tables
    c = make_constraint("latency_ms", f"table:{lat_path}:dev")
    assert c.bound == np.inf and c.text == f"latency_ms@table:{lat_path}:dev"
    b = bound_at_quantile(create_space("nb201"), "latency_ms", f"table:{lat_path}:dev", 0.25)
    assert b == pytest.approx(float(np.quantile(lat, 0.25)))


def test_the_budget_rule_refuses_less_than_one_query():
    assert check_budget(3) == 3 and check_budgets([1, 5]) == [1, 5]
    with pytest.raises(ValueError, match=">= 1 accuracy query"):
        check_budget(0)
    with pytest.raises(ValueError, match=">= 1 accuracy query"):
        check_budgets([5, 0])
    with pytest.raises(ValueError, match=">= 1 accuracy query"):
        check_budgets([])

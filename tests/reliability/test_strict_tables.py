"""Issue 25: tables are read strictly: a cut or short row is an error naming the file and line (not
a number read as 4.6 or a NaN), and a NaN value is refused naming the file, column and arch."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.devices.table import TableError, read_table_file
from hwnas.search.spaces import create_space


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Twenty NB201 cells with an accuracy and a latency column, as pandas writes them."""
    sp = create_space("nb201")
    strs = [sp.to_str(a) for a in list(sp.iter_all())[:20]]
    f = tmp_path_factory.mktemp("t") / "t.csv"
    pd.DataFrame({"arch_str": strs, "acc": [90.0 + i / 7 for i in range(20)],
                  "latency_ms": [4.63185] * 20}).to_csv(f, index=False)
    return f


def cut(src, dest, text_edit):
    dest.write_text(text_edit(src.read_text()))
    return dest


@pytest.mark.parametrize("edit, line, says", [
    (lambda t: t[: t.rfind("4.63185") + 3], 21, "the file ends inside a row"),  # 4.63185 cut to 4.6
    (lambda t: t[: t.rfind(",", 0, len(t) - 2)] + "\n", 21, "2 field(s) where the header has 3"),  # cut before the column
    (lambda t: t.replace(",4.63185\n", "\n", 1), 2, "2 field(s) where the header has 3"),  # a short row inside
    (lambda t: t.replace(",4.63185\n", ",4.63185,9\n", 1), 2, "4 field(s) where the header has 3"),  # a long row
])
def test_a_cut_or_short_row_names_file_and_line(small, tmp_path, edit, line, says):
    f = cut(small, tmp_path / "t.csv", edit)
    with pytest.raises(TableError, match=re.escape(f"line {line}: {says}")) as ei:
        read_table_file(f)
    assert str(f) in str(ei.value) and "\n" not in str(ei.value)


def test_quoted_fields_and_blank_lines_still_read(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text('arch_str,note,acc\n"a,b","x\ny",1.5\n\nc,d,2.5\n')
    df = read_table_file(f)
    assert df.acc.tolist() == [1.5, 2.5] and df.arch_str.tolist() == ["a,b", "c"]


def one_line(r):
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output
    return lines[0]


def test_tables_import_and_predictors_evaluate_refuse_a_cut_last_row(small, tmp_path):
    f = cut(small, tmp_path / "t.csv", lambda t: t[: t.rfind("4.63185") + 3])
    r = CliRunner().invoke(cli, ["tables", "import", "--space", "nb201", "--out", str(tmp_path / "o.parquet"), str(f)])
    assert f"{f} line 21: the file ends inside a row" in one_line(r)
    assert not (tmp_path / "o.parquet").exists()
    r = CliRunner().invoke(cli, ["predictors", "evaluate", "--space", "nb201", "--table", f"table:{f}:latency_ms",
                                 "--train-sizes", "5", "--seeds", "1", "--out", str(tmp_path / "p")])
    assert f"{f} line 21" in one_line(r)


def test_search_refuses_a_cut_row_and_a_nan_latency_naming_file_column_and_arch(nb201_tables, tmp_path):  # noqa: F811
    acc, lat, _, _ = nb201_tables
    cmd = ["search", "--space", "nb201", "--method", "random", "--budget", "5", "--seeds", "1"]
    cut_lat = cut(lat, tmp_path / "lat_ms.csv", lambda t: t[:-4])
    r = CliRunner().invoke(cli, [*cmd, "--accuracy", f"table:{acc}:acc", "--out", str(tmp_path / "o1"),
                                 "--constraint", f"latency_ms<=6@table:{cut_lat}:dev"])
    assert f"{cut_lat} line 15626: the file ends inside a row" in one_line(r)
    df = pd.read_csv(lat)
    df.loc[7, "dev"] = float("nan")
    nan_lat = tmp_path / "nan_ms.csv"
    df.to_csv(nan_lat, index=False)
    r = CliRunner().invoke(cli, [*cmd, "--accuracy", f"table:{acc}:acc", "--out", str(tmp_path / "o2"),
                                 "--constraint", f"latency_ms<=6@table:{nan_lat}:dev"])
    msg = one_line(r)
    assert str(nan_lat) in msg and "row 8: column 'dev' is empty (NaN)" in msg and df.arch_str[7] in msg


from tests.search.conftest import nb201_tables  # noqa: E402, F401 - the fixture

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from hwnas.devices.table import (
    TableError,
    import_arch_table,
    parse_table_spec,
    read_sidecar,
    write_table,
)
from hwnas.search.spaces import create_space

nb = create_space("nb201")
GOOD = [nb.to_str(nb.from_index(i)) for i in range(5)]


def _csv(tmp_path, rows, name="t.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_imports_the_shared_help_tables(data_dir):
    df = import_arch_table(data_dir / "help-latency" / "help_nasbench201_latency_ms.csv", nb)
    assert len(df) == 15625 and df["arch_idx"].tolist() == list(range(15625))
    assert "gold_6240" in df.columns and (df["gold_6240"] > 0).all()
    fb = import_arch_table(data_dir / "help-latency" / "help_fbnet_latency_ms.csv", create_space("fbnet"))
    assert len(fb) == 5000 and fb["arch_str"].str.count(r"\|").eq(21).all()


def test_arch_idx_only_table(tmp_path):
    p = _csv(tmp_path, {"arch_idx": [3, 1], "lat_ms": [1.0, 2.0]})
    df = import_arch_table(p, nb)
    assert df["arch_str"].tolist() == [GOOD[3], GOOD[1]]


@pytest.mark.parametrize("rows, reason", [
    ({"arch_str": [GOOD[0], "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "lat_ms": [1, 2]}, r"row 2: unknown architecture"),
    ({"arch_str": [GOOD[0], GOOD[1], GOOD[0]], "lat_ms": [1, 2, 3]}, r"row 3: duplicate of row 1"),
    ({"arch_str": GOOD[:3], "lat_ms": [1, None, 3]}, r"row 2: column 'lat_ms' is empty \(NaN\)"),
    ({"arch_str": GOOD[:3], "lat_ms": [1, 2, -3]}, r"row 3: column 'lat_ms' is negative"),
    ({"arch_str": GOOD[:2], "lat_ms": [1, "fast"]}, r"row 2: column 'lat_ms' value 'fast' is not a number"),
    ({"arch_idx": [0, 99999], "lat_ms": [1, 2]}, r"row 2: unknown architecture .*out of range"),
    ({"arch_idx": [0, 1], "arch_str": [GOOD[0], GOOD[2]], "lat_ms": [1, 2]}, r"row 2: arch_idx 1 does not match"),
    ({"name": ["a"], "lat_ms": [1]}, r"no architecture column"),
])
def test_bad_rows_are_named(tmp_path, rows, reason):
    with pytest.raises(TableError, match=reason):
        import_arch_table(_csv(tmp_path, rows), nb)


def test_missing_column_and_corrupt_file(tmp_path):
    p = _csv(tmp_path, {"arch_str": GOOD[:2], "lat_ms": [1, 2]})
    with pytest.raises(TableError, match="missing column.*energy_mj"):
        import_arch_table(p, nb, columns=["energy_mj"])
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(TableError, match="corrupt or truncated"):
        import_arch_table(bad, nb)
    with pytest.raises(TableError, match="no such file"):
        import_arch_table(tmp_path / "nope.csv", nb)


def test_write_table_is_atomic_and_has_a_sidecar(tmp_path):
    df = pd.DataFrame({"arch_str": GOOD[:2], "lat_ms": [1.0, 2.0]})
    p = write_table(df, tmp_path / "x" / "t.parquet", meta={"device": "cpu"})
    assert pd.read_parquet(p).equals(df)
    assert (tmp_path / "x" / "t.csv").exists()
    meta = read_sidecar(p)
    assert meta["device"] == "cpu" and "project_version" in meta
    assert not [f for f in (tmp_path / "x").iterdir() if f.name.startswith(".")]


def test_table_spec_parsing():
    assert parse_table_spec("table:/a/b.csv:gold_6240") == ("/a/b.csv", "gold_6240")
    assert parse_table_spec("/a/b.csv") == ("/a/b.csv", None)
    assert parse_table_spec("table:C:/x/b.parquet") == ("C:/x/b.parquet", None)


def test_cli_bad_row_is_one_line_without_traceback(tmp_path):
    p = _csv(tmp_path, {"arch_str": [GOOD[0], GOOD[0]], "lat_ms": [1, 2]})
    r = subprocess.run([sys.executable, "-m", "hwnas.bench.cli", "tables", "import", "--space", "nb201",
                        "--out", str(tmp_path / "o.parquet"), str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 2: duplicate of row 1" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.parquet").exists()


def test_cli_import_writes_the_table(tmp_path):
    p = _csv(tmp_path, {"arch_str": GOOD[:3], "lat_ms": [1, 2, 3]})
    out = tmp_path / "o.parquet"
    r = subprocess.run([sys.executable, "-m", "hwnas.bench.cli", "tables", "import", "--space", "nb201",
                        "--unit", "ms", "--out", str(out), str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert pd.read_parquet(out)["lat_ms"].tolist() == [1.0, 2.0, 3.0]
    assert read_sidecar(out)["unit"] == "ms"

"""Tables keyed by architecture: reading, validating and writing them safely.

Imported tables (others' measurements, benchmark accuracies) are CSV or Parquet with `arch_idx`
or `arch_str` (FBNet: HELP's `op_idx_list`) plus numeric metric columns. The space is passed in
(duck-typed: `from_str`, `to_str`, optional `from_index`/`to_index`), so this module needs no
import of `search`.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hwnas.core.capabilities import Enumerable
from hwnas.core.io import atomic_write_bytes
from hwnas.core.paths import expand

ARCH_COLUMNS = ("arch_idx", "arch_str", "op_idx_list")


class TableError(ValueError):
    """A table that cannot be used as it is; the message names the file, row and reason."""


def read_table_file(path: str | os.PathLike) -> pd.DataFrame:
    """Read CSV or Parquet; one clear error for a missing, empty, truncated or unknown file.

    Every table a command reads comes through here, and CSV is read strictly (`check_csv_rows`):
    a row with fewer or more fields than the header, or a file that ends inside a row, is an
    error naming the file and line (pandas would fill a cut row with NaN, or read `4.63185` cut
    to `4.6` as 4.6)."""
    p = Path(expand(path))
    if not p.exists():
        raise TableError(f"{p}: no such file; check the path (benchmark tables live in $HWNAS_DATA_DIR)")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt") or suffix == ".gz" and p.name.lower().endswith(".csv.gz"):
            raw = p.read_bytes()
            if suffix == ".gz":
                import gzip

                raw = gzip.decompress(raw)
            check_csv_rows(p, raw)
            return pd.read_csv(io.BytesIO(raw))
    except TableError:
        raise
    except Exception as exc:  # pyarrow / pandas raise many types for corrupt files
        raise TableError(
            f"{p}: cannot be read as {suffix[1:]} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "the file is corrupt or truncated: re-export or re-measure it"
        ) from None
    raise TableError(f"{p}: unknown table format {suffix!r}; use .csv or .parquet")


def check_csv_rows(path: str | os.PathLike, raw: bytes) -> None:
    """TableError naming the file and line when the CSV text `raw` ends inside a row (no final
    newline) or a row has another number of fields than the header. Blank lines are allowed."""
    if not raw.strip():
        return
    if not raw.endswith(b"\n"):
        line = raw.count(b"\n") + 1
        raise TableError(f"{path} line {line}: the file ends inside a row (no final newline), so that row may be "
                         "cut short; re-export the table (or end the file with a newline if the row is complete)")
    if b'"' in raw:  # quoted fields may hold commas and newlines: the csv module counts them
        import csv

        text = raw.decode("utf-8", errors="replace")
        reader = csv.reader(io.StringIO(text))
        width = len(next(reader))
        counts = ((reader.line_num, len(row)) for row in reader if row)
    else:  # fast path: commas per line, vectorised
        a = np.frombuffer(raw, dtype=np.uint8)
        ends = np.flatnonzero(a == 10)
        commas = np.concatenate([[0], np.cumsum(a == 44)[ends]])
        per_line = np.diff(commas) + 1
        starts = np.concatenate([[0], ends[:-1] + 1])
        blank = np.array([not raw[s:e].strip() for s, e in zip(starts, ends, strict=True)]) if (
            (ends - starts <= 1).any() or b" \n" in raw or b"\t" in raw) else np.zeros(len(ends), bool)
        width = int(per_line[0])
        bad = np.flatnonzero((per_line != width) & ~blank)
        counts = [(int(i) + 1, int(per_line[i])) for i in bad[:1]]
    for line, n in counts:
        if n != width:
            raise TableError(f"{path} line {line}: {n} field(s) where the header has {width}; the row is cut short "
                             "or damaged: re-export the table")


#: unit suffix -> (quantity, factor to the canonical unit of that quantity: ms, mJ, bytes)
UNITS: dict[str, tuple[str, float]] = {
    "ms": ("latency", 1.0), "us": ("latency", 1e-3), "s": ("latency", 1e3),
    "mj": ("energy", 1.0), "uj": ("energy", 1e-3), "j": ("energy", 1e3),
    "bytes": ("memory", 1.0), "kb": ("memory", 1024.0), "mb": ("memory", 1024.0 ** 2),
}


def unit_of(name: str) -> tuple[str, float] | None:
    """'latency_ms' -> ('latency', 1.0); 'pixel3' -> None (no unit in the name)."""
    suffix = name.lower().rsplit("_", 1)[-1] if "_" in name else ""
    return UNITS.get(suffix)


#: file name endings of the tables `read_table_file` reads
TABLE_SUFFIXES = (".csv", ".csv.gz", ".txt", ".parquet", ".pq")


def check_unit(unit: str) -> str:
    """A unit a user states for a table (`tables import --unit`): one of UNITS (lower case) or
    '%'; anything else is a TableError naming the accepted ones."""
    u = unit.strip().lower()
    if u not in UNITS and u != "%":
        raise TableError(f"unit {unit!r} is not one of {', '.join(UNITS)}, %")
    return u


def _split_column(s: str) -> tuple[str, str | None]:
    path, sep, column = s.rpartition(":")
    if not sep or not path or "/" in column or column.lower().endswith((".csv", ".parquet")):
        return s, None
    return path, column


def parse_table_spec_unit(spec: str) -> tuple[str, str | None, str | None]:
    """'table:PATH:COLUMN:UNIT' (or any form `parse_table_spec` reads) -> (path, column, unit).

    UNIT is one of UNITS, stated by the user for a column whose names carry none. A unit that
    the column's name (or, failing that, the file's name) spells differently is an error.
    """
    s = spec[len("table:"):] if spec.startswith("table:") else spec
    head, sep, last = s.rpartition(":")
    unit = None
    if sep and last.lower() in UNITS:
        path, column = _split_column(head)
        if column is not None:
            s, unit = head, last.lower()
    elif sep:
        path, column = _split_column(head)
        if column is not None and path.lower().endswith(TABLE_SUFFIXES):  # PATH.csv:COLUMN:<not a unit>
            raise TableError(f"table spec {spec!r}: {last!r} is not a unit; write one of {', '.join(UNITS)} "
                             f"(e.g. table:{path}:{column}:ms)")
    path, column = _split_column(s)
    if unit is not None:
        named = next((n for n in (column.replace("_norm_", "_"), Path(path).stem) if unit_of(n)), None)
        if named is not None and UNITS[named.lower().rsplit("_", 1)[-1]] != UNITS[unit]:
            raise TableError(f"table spec {spec!r}: unit {unit!r} stated, but {named!r} says "
                             f"{named.lower().rsplit('_', 1)[-1]!r}; drop the stated unit or fix the name")
    return expand(path), column, unit


def parse_table_spec(spec: str) -> tuple[str, str | None]:
    """'table:PATH:COLUMN[:UNIT]' or 'PATH:COLUMN' or 'PATH' -> (path, column or None); a PATH
    written portably as `$HWNAS_DATA_DIR/...` (core.paths.portable) comes back expanded. A
    stated UNIT is checked against the names (parse_table_spec_unit) and not returned."""
    path, column, _ = parse_table_spec_unit(spec)
    return path, column


def _arch_column(df: pd.DataFrame, space) -> str:
    for col in ("arch_str", "op_idx_list", "arch_idx"):
        if col in df.columns:
            if col == "arch_idx" and not isinstance(space, Enumerable):
                continue
            return col
    if "arch_idx" in df.columns:
        raise TableError(
            f"space {space.name!r} has no arch index; the table needs an 'arch_str' column"
        )
    raise TableError(
        f"no architecture column: expected one of {', '.join(ARCH_COLUMNS)}; found {', '.join(map(str, df.columns[:8]))}"
    )


def import_arch_table(
    path: str | os.PathLike,
    space,
    columns: list[str] | None = None,
    allow_negative: bool = False,
    allow_nan: bool = False,
) -> pd.DataFrame:
    """Validate a table for `space`; returns `arch_str` (canonical), `arch_idx` if the space has
    one, and the metric columns as float64, in the file's row order.

    Raises TableError on the first bad row, naming the row (1-based, as in the file's data
    lines), the architecture and the reason, plus how many other rows are bad.
    """
    p = Path(path)
    df = read_table_file(p)
    if df.empty:
        raise TableError(f"{p}: the table has no rows")
    key = _arch_column(df, space)
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise TableError(
                f"{p}: missing column(s) {', '.join(missing)}; available: {', '.join(c for c in df.columns if c not in ARCH_COLUMNS)}"
            )
        metrics = list(columns)
    else:
        metrics = [c for c in df.columns if c not in ARCH_COLUMNS and c not in ("arch", "cellstr")]
        if not metrics:
            raise TableError(f"{p}: no metric columns besides {key}")

    problems: list[str] = []
    arch_strs: list[str | None] = []
    arch_ids: list[int | None] = []
    has_index = isinstance(space, Enumerable)
    # a stated arch_idx to check against arch_str (read once: per-row DataFrame lookups were most of the time)
    stated = df["arch_idx"].tolist() if key != "arch_idx" and "arch_idx" in df.columns and has_index else None
    for i, raw in enumerate(df[key].tolist()):
        try:
            if key == "arch_idx":
                if isinstance(raw, float) and not float(raw).is_integer() or pd.isna(raw):
                    raise ValueError(f"arch_idx {raw!r} is not an integer")
                arch = space.from_index(int(raw))
            else:
                arch = space.from_str(str(raw))
            arch_strs.append(space.to_str(arch))
            arch_ids.append(space.to_index(arch) if has_index else None)
            if stated is not None and pd.notna(stated[i]) and int(stated[i]) != arch_ids[-1]:
                problems.append(f"row {i + 1}: arch_idx {stated[i]} does not match arch_str (its index is {arch_ids[-1]})")
        except ValueError as exc:
            problems.append(f"row {i + 1}: unknown architecture {str(raw)[:80]!r} ({exc})")
            arch_strs.append(None)
            arch_ids.append(None)

    out = pd.DataFrame({"arch_str": arch_strs})
    if has_index:
        out.insert(0, "arch_idx", pd.array(arch_ids, dtype="Int64"))
    seen: dict[str, int] = {}
    for i, a in enumerate(arch_strs):
        if a is None:
            continue
        if a in seen:
            problems.append(f"row {i + 1}: duplicate of row {seen[a] + 1} ({a[:80]})")
        else:
            seen[a] = i

    def arch(i: int) -> str:
        return f"(arch {str(arch_strs[i] if arch_strs[i] is not None else df[key].iat[i])[:160]})"

    for col in metrics:
        values = pd.to_numeric(df[col], errors="coerce")
        bad_type = values.isna() & df[col].notna()
        for i in np.flatnonzero(bad_type.to_numpy())[:3]:
            problems.append(f"row {i + 1}: column {col!r} value {df[col].iat[i]!r} is not a number {arch(i)}")
        for i in np.flatnonzero(np.isinf(values.to_numpy(dtype="float64", na_value=np.nan)))[:3]:
            problems.append(f"row {i + 1}: column {col!r} is infinite ({values.iat[i]}) {arch(i)}; give a finite number")
        if not allow_nan:
            for i in np.flatnonzero((df[col].isna()).to_numpy())[:3]:
                problems.append(f"row {i + 1}: column {col!r} is empty (NaN) {arch(i)}; give a number or drop the row")
        if not allow_negative:
            for i in np.flatnonzero((values < 0).to_numpy())[:3]:
                problems.append(f"row {i + 1}: column {col!r} is negative ({values.iat[i]}) {arch(i)}")
        out[col] = values.astype("float64").to_numpy()

    if problems:
        problems.sort(key=lambda s: int(s.split(":")[0].split()[1]))
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise TableError(f"{p} {problems[0]}{more}")
    return out


def write_table(df: pd.DataFrame, path: str | os.PathLike, meta: dict[str, Any] | None = None,
                csv_mirror: bool = True) -> Path:
    """Atomically write Parquet (+ CSV mirror) and a JSON sidecar `<path>.json`."""
    import io

    p = Path(path)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(p, buf.getvalue())
    if csv_mirror:
        atomic_write_bytes(p.with_suffix(".csv"), df.to_csv(index=False).encode())
    if meta is not None:
        write_sidecar(p, meta)
    return p


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.stem + ".meta.json")


def project_version() -> str:
    try:
        from importlib.metadata import version

        return version("hwnas")
    except Exception:
        return "0+unknown"


def write_sidecar(path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """`<stem>.meta.json` beside the table: provenance that travels with the numbers."""
    full = {"project_version": project_version(), "written_at": now_iso(), **meta}
    sc = sidecar_path(path)
    atomic_write_bytes(sc, (json.dumps(full, indent=2, sort_keys=True, default=str) + "\n").encode())
    return sc


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    sc = sidecar_path(path)
    if not sc.exists():
        return {}
    try:
        return json.loads(sc.read_text())
    except json.JSONDecodeError as exc:
        raise TableError(f"{sc}: corrupt sidecar ({exc}); delete it to rewrite it") from None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

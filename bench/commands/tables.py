from __future__ import annotations

from pathlib import Path

import click
from hwnas.bench.commands import options
from hwnas.core.paths import TABLES_DIR, portable


@click.group()
def tables() -> None:
    """Import tables measured by others (validated, with a sidecar naming their source and unit)."""


@tables.command("import")
@options.space(help="Space the table's architectures belong to (see `hwnas spaces`).")
@click.option("--columns", default=None, help="Comma-separated metric columns to keep (default: all numeric).")
@click.option("--unit", default=None, help="Unit of the metric columns whose names carry none (ms, us, s, mJ, uJ, J, bytes, kB, MB, or %), "
                   "recorded in the sidecar; constraints on the table read it from there.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Output Parquet (default results/tables/<space>/imported-<name>.parquet).")
@click.option("--allow-negative", is_flag=True, help="Accept negative values (e.g. deltas).")
@click.argument("file", type=click.Path(dir_okay=False))
def import_(space: str, columns: str | None, unit: str | None, out: str | None,
            allow_negative: bool, file: str) -> None:
    """Validate FILE (CSV/Parquet with arch_idx or arch_str plus metric columns) for a space."""
    from hwnas.core.io import file_sha256
    from hwnas.devices.table import check_unit, import_arch_table, write_table
    from hwnas.search.spaces import create_space

    if unit is not None:
        unit = check_unit(unit)
    sp = create_space(space)
    cols = [c.strip() for c in columns.split(",")] if columns else None
    df = import_arch_table(file, sp, columns=cols, allow_negative=allow_negative)
    dest = Path(out) if out else TABLES_DIR / sp.name / f"imported-{Path(file).stem}.parquet"
    write_table(df, dest, meta={
        "kind": "imported", "space": sp.name, "source": portable(Path(file).resolve()),
        "source_sha256": file_sha256(file), "unit": unit, "rows": len(df),
        "columns": [c for c in df.columns if c not in ("arch_idx", "arch_str")],
    }, csv_mirror=False)
    click.echo(f"imported {len(df)} rows x {df.shape[1] - 2 + ('arch_idx' not in df)} metrics for {sp.name} -> {dest}")

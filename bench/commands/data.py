"""`hwnas data`: the data sets the boards and examples read, and which are on this machine."""

from __future__ import annotations

import click


@click.command()
@click.option("--no-verify", is_flag=True, help="Skip the SHA-256 check (only presence and columns).")
@click.option("--details", is_flag=True, help="Also print each file's origin, licence, columns and checksum.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue and the check as JSON.")
def data(no_verify: bool, details: bool, as_json: bool) -> None:
    """List every data set the boards and examples use, with its origin and licence, and check
    what is under $HWNAS_DATA_DIR (and Fashion-MNIST's folder): present, missing, checksum
    mismatch or columns missing. README "Data on a new machine" says how to bring each file."""
    import json
    from dataclasses import asdict

    from hwnas.bench.engine.datasets import CATALOGUE, MISSING, PRESENT, check, root_of

    rows = [(ds, check(ds, verify=not no_verify)) for ds in CATALOGUE]
    if as_json:
        click.echo(json.dumps([{**asdict(ds), **st} for ds, st in rows], indent=2))
        return
    roots = sorted({(ds.root, str(root_of(ds))) for ds in CATALOGUE})
    click.echo("  ".join(f"{name} = {path}" for name, path in roots))
    width = max(len(ds.path) for ds in CATALOGUE)
    for ds, st in rows:
        click.echo(f"{st['status']:<18} {ds.path:<{width}}  {ds.what}" + (f"  [{st['detail']}]" if st["detail"] else ""))
        if details:
            click.echo(f"{'':<19}origin: {ds.origin}\n{'':<19}licence: {ds.licence}\n"
                       f"{'':<19}columns: {', '.join(ds.columns) or '(idx image file)'}\n"
                       f"{'':<19}sha256: {ds.sha256}\n{'':<19}used by: {ds.used_by}")
    counts = {s: sum(st["status"] == s for _, st in rows) for s in dict.fromkeys(st["status"] for _, st in rows)}
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items())
               + ("" if counts.get(PRESENT) == len(rows) else
                  f"; README 'Data on a new machine' says how to bring {'them' if counts.get(MISSING) else 'each'}"))

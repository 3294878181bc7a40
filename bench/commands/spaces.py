from __future__ import annotations

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full description as JSON.")
@click.argument("pattern", default="*")
def spaces(pattern: str, as_json: bool) -> None:
    """List registered search spaces with their sizes."""
    import json

    from hwnas.search.spaces import create_space, list_spaces

    names = list_spaces(pattern)
    if not names:
        raise LookupError(f"no space matches {pattern!r}; known: {', '.join(list_spaces())}")
    rows = [create_space(n).describe() for n in names]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'space':<16}{'archs':>26}  {'input':<12}{'classes':>8}")
    for d in rows:
        size = d["size"]
        shown = f"{size:,}" if size < 10**12 else f"{size:.3e}"
        click.echo(f"{d['name']:<16}{shown:>26}  {'x'.join(map(str, d['input_shape'])):<12}{d['num_classes']:>8}")

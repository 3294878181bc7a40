from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def search(args) -> None:
    """Run a search method under measured constraints."""
    not_built("search", "search layer, a later issue")

from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def leaderboard(args) -> None:
    """Build leaderboards from search results."""
    not_built("leaderboard", "search layer, a later issue")

"""Stand-in for a subcommand whose stage is not built yet: it fails loudly, never silently."""

from __future__ import annotations

import click


def not_built(name: str, issue: str) -> None:
    raise click.ClickException(
        f"`hwnas {name}` is not built yet ({issue}); nothing was run"
    )

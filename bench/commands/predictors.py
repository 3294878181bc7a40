from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.group()
def predictors() -> None:
    """Accuracy and cost predictors."""


@predictors.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def evaluate(args) -> None:
    """Compare predictors by rank correlation over train sizes and seeds."""
    not_built("predictors evaluate", "predictors, issue 6")

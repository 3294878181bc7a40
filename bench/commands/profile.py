from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def profile(args) -> None:
    """Measure every distinct block of a space on a device and write its table."""
    not_built("profile", "device layer, issue 3")


@click.command("validate-lut", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def validate_lut(args) -> None:
    """Measure whole networks end to end and compare with the table's sum."""
    not_built("validate-lut", "device layer, issue 3")

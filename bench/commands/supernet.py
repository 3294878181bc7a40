from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.group()
def supernet() -> None:
    """Weight-sharing supernets."""


@supernet.command("train", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def supernet_train(args) -> None:
    """Train a supernet on a dataset."""
    not_built("supernet train", "supernets, issue 5")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sample(args) -> None:
    """Evaluate sampled subnets of a trained supernet."""
    not_built("sample", "supernets, issue 5")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args) -> None:
    """Train one architecture stand-alone for a short budget."""
    not_built("train", "supernets, issue 5")

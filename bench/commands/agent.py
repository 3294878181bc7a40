from __future__ import annotations

import click

from bench.commands._pending import not_built


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent(args) -> None:
    """Serve measurements of ONNX models to a remote host (edge / mobile targets)."""
    not_built("agent", "remote agent, issue 4")

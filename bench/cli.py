"""The `hwnas` command. Each subcommand lives in `bench/commands/<name>.py`.

Bad input surfaces as one line and a non-zero exit: errors that are the user's to fix are
`ValueError` (malformed input: ArchError, TableError, ...), `LookupError` (unknown names) and
`OSError` (files, devices). Anything else is a bug and keeps its traceback. `--debug` (or
HWNAS_DEBUG=1) shows the traceback for every error.

Library code logs through the package logger (`core.log`); this command sends it to stderr:
INFO by default (notes, per-epoch lines), `-v` adds DEBUG, `-q` leaves warnings only, `-qq`
errors only. Progress bars are not logging; -q hides them as well.
"""

from __future__ import annotations

import os
import sys

import click
from hwnas.bench.commands import COMMANDS
from hwnas.core.invocation import record
from hwnas.core.log import setup_logging

USER_ERRORS = (ValueError, LookupError, OSError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


class HwnasGroup(click.Group):
    def main(self, args=None, *a, **kw):
        record(list(sys.argv[1:] if args is None else args))  # reports name the command that made them
        try:
            return super().main(args, *a, **kw)
        finally:
            record(None)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            if os.environ.get("HWNAS_DEBUG"):
                raise
            click.echo(f"hwnas: error: {_message(exc)}", err=True)
            ctx.exit(2)


@click.group(cls=HwnasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks (same as HWNAS_DEBUG=1).")
@click.option("-v", "--verbose", count=True, help="More log output (-v: debug messages).")
@click.option("-q", "--quiet", count=True, help="Less output (-q: warnings only and no progress bars, -qq: errors only).")
@click.version_option(package_name="hwnas", prog_name="hwnas")
def cli(debug: bool, verbose: int, quiet: int) -> None:
    """Hardware-aware NAS: measure device tables, fit predictors, search under constraints."""
    setup_logging(verbose - quiet)
    if debug:
        os.environ["HWNAS_DEBUG"] = "1"


for _cmd in COMMANDS:
    cli.add_command(_cmd)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="hwnas")


if __name__ == "__main__":
    main(sys.argv[1:])

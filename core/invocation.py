"""The command line that is running, for the "Written by" line of the reports it writes.

`hwnas` records its arguments when it starts (`bench/cli.py`) and forgets them when it ends; a
report names the command that made it with every flag as typed (paths made portable), and falls
back to a line of its own when called from Python.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from hwnas.core.paths import portable_spec

_ARGS: list[str] | None = None


def record(args: Sequence[str] | None) -> None:
    """Remember the arguments of the running `hwnas` command (None forgets them)."""
    global _ARGS
    _ARGS = None if args is None else [str(a) for a in args]


def command_line(default: str) -> str:
    """`hwnas ARGS...` of the running command, absolute paths written portably; `default` when
    no command is running (library use)."""
    if not _ARGS:
        return default
    return "hwnas " + shlex.join(portable_spec(a) for a in _ARGS)

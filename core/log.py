"""The package logger. Library modules log through `logging.getLogger(__name__)` (children of
"hwnas" by name or by the handler set here); only the `hwnas` command configures output.

Verbosity: 0 = INFO (progress lines, notes), 1+ = DEBUG, -1 = WARNING, -2 and below = ERROR.
Progress bars (tqdm) are not logging, but `-q` hides them too: every bar passes
`disable=bars_off()` (or'ed with its own switch).
"""

from __future__ import annotations

import logging
import sys

#: The name of the package logger; every package of the stack logs under it.
LOGGER_NAME = "hwnas"

_HANDLER_FLAG = "_hwnas_handler"
#: set by `setup_logging`: True when the command was asked for less than INFO output (-q)
_QUIET = False


def bars_off() -> bool:
    """Whether progress bars are hidden: the command runs with -q (or -qq). Library use, where
    nothing called `setup_logging`, keeps them."""
    return _QUIET


def get_logger(name: str | None = None) -> logging.Logger:
    """The package logger ("hwnas") or one of its children (`hwnas.<name>`)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def level_for(verbosity: int) -> int:
    if verbosity >= 1:
        return logging.DEBUG
    if verbosity == 0:
        return logging.INFO
    if verbosity == -1:
        return logging.WARNING
    return logging.ERROR


def setup_logging(verbosity: int = 0, stream=None) -> int:
    """Send the package's log records to `stream` (stderr) as plain lines; returns the level.

    Safe to call more than once (the handler is replaced, not added twice). Module loggers
    (`hwnas.search.methods.binas`, ...) are the package logger's children and inherit it.
    """
    global _QUIET
    level = level_for(verbosity)
    _QUIET = level > logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s" if level <= logging.DEBUG else "%(message)s"
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(logging.Formatter(fmt))
    setattr(handler, _HANDLER_FLAG, True)
    lg = logging.getLogger(LOGGER_NAME)
    for h in list(lg.handlers):
        if getattr(h, _HANDLER_FLAG, False):
            lg.removeHandler(h)
    lg.addHandler(handler)
    lg.setLevel(level)
    return level


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (click's test runner and
    pytest swap it), not the stream that was current when logging was set up."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


"""The one way a report is written: Markdown and figures of every board, study and summary.

- Markdown (`write_markdown`): one file, ending in one newline, written atomically (core.io), with
  every absolute path of this machine written portably (`$HWNAS_DATA_DIR/...`, repository-relative,
  else the file name: core.paths.portable), and a "Written by `<command>`" line: a report that
  does not say what wrote it gets one under its title, from the command its caller names.
- Tables: `table` (a header and rows of cells, one row per line: `| a | b |`, `|---|---:|`) and
  `facts_table` (figure | value, one per line); cells are formatted by the caller, numbers by
  `fmt` when they come as numbers, and an empty figure is shown as such, never as `nan`.
- Figures (`pyplot`, `save_figure`): pyplot on the file-only Agg backend, then suptitle, tight
  layout, one dpi, an atomic PNG write and closing the figure.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from hwnas.core.invocation import command_line
from hwnas.core.io import atomic_save_figure, atomic_write_text
from hwnas.core.paths import portable

#: every report figure's resolution (dots per inch)
FIGURE_DPI = 110
#: how a report says what wrote it (the command follows, in backticks)
WRITTEN_BY = "Written by `"
#: how an empty figure is shown in a table
EMPTY = "—"

#: an absolute path of this machine inside text: at least two segments, starting the text or after a
#: space, a quote, a bracket or a spec separator (`table:/x/y.csv:col`), not inside a URL or a ratio
_ABS_PATH = re.compile(r"(?:(?<=^)|(?<=[\s`'\"(\[<:=@]))(/(?:[\w.$~+-]+/)+[\w.$~+-]*[\w$~+-])", re.MULTILINE)


def portable_text(text: str) -> str:
    """`text` with every absolute path of this machine written as `core.paths.portable` writes it."""
    return _ABS_PATH.sub(lambda m: portable(m.group(1)), text)


def written_by(default: str, make: str | None = None) -> str:
    """"Written by `hwnas ...` (`make TARGET`)." for the running command (`default` from Python)."""
    return f"{WRITTEN_BY}{command_line(default)}`" + (f" (`{make}`)" if make else "") + "."


def write_markdown(path: str | os.PathLike, lines: str | Iterable[str], command: str | None = None) -> Path:
    """Write a Markdown report atomically; returns its path.

    `lines` (joined by newlines) is the report; it ends in exactly one newline. A report without a
    "Written by `...`" line gets one from `command` (the command or make target that writes it,
    e.g. `written_by(...)`'s text or "make predictors") after its title; a report with neither is a
    ValueError: every committed report says what wrote it. Absolute paths become portable.
    """
    text = lines if isinstance(lines, str) else "\n".join(lines)
    if WRITTEN_BY not in text:
        if not command:
            raise ValueError(f"{Path(path).name}: the report does not say what wrote it; pass command= "
                             "(the command or make target that writes it)")
        line = command if command.startswith(WRITTEN_BY) else f"{WRITTEN_BY}{command}`."
        head, sep, rest = text.partition("\n")
        if head.startswith("#"):  # under the title, a paragraph of its own
            text = f"{head}\n\n{line}\n\n{rest.lstrip(chr(10))}" if sep else f"{head}\n\n{line}"
        else:
            text = f"{line}\n\n{text}"
    text = portable_text(text).rstrip("\n") + "\n"
    atomic_write_text(path, text)
    return Path(path)


def fmt(v, spec: str = ".3f") -> str:
    """One table cell: a float by `spec` (empty figures shown as EMPTY), anything else as `str`."""
    if isinstance(v, float):
        return EMPTY if math.isnan(v) else format(v, spec)
    return str(v)


def table(header: Sequence[str], rows: Iterable[Sequence], align: str | None = None) -> list[str]:
    """A Markdown table's lines: `| h1 | h2 |`, the rule (`---` left, `---:` right per letter of
    `align`, e.g. "llr"; default all left), then one line per row (cells through `fmt`; an empty
    cell is `| |`). A row with another number of cells than the header is a ValueError."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    lines = ["| " + " | ".join(header) + " |", rule]
    for r in rows:
        cells = [fmt(c) for c in r]
        if len(cells) != len(header):
            raise ValueError(f"table row {cells} has {len(cells)} cells for {len(header)} columns")
        lines.append("|" + "".join(f" {c} |" if c else " |" for c in cells))
    return lines


def facts_table(facts: Mapping, header: tuple[str, str] = ("figure", "value")) -> list[str]:
    """The figure | value table of a report's facts: floats to three decimals, an interval (a
    pair of floats) as [low, high], an empty figure as EMPTY."""
    def cell(v) -> str:
        if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, float) for x in v):
            return f"[{fmt(v[0])}, {fmt(v[1])}]"
        return fmt(v)

    return [f"| {header[0]} | {header[1]} |", "| --- | --- |"] + [f"| {k} | {cell(v)} |" for k, v in facts.items()]


def pyplot():
    """`matplotlib.pyplot`, with the Agg backend selected first (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, title: str | None = None, title_size: float = 10,
                dpi: int = FIGURE_DPI) -> Path:
    """Suptitle (when given), tight layout, atomic write of the PNG, close; returns its path."""
    if title is not None:
        fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)

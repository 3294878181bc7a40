"""What every report figure does before and after its own drawing: pyplot on the file-only Agg
backend (no display needed), then title, tight layout, an atomic PNG write and closing the figure."""

from __future__ import annotations

import os

from hwnas.core.io import atomic_save_figure


def pyplot():
    """`matplotlib.pyplot`, with the Agg backend selected first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | os.PathLike, title: str | None = None, title_size: float = 10, dpi: int = 110) -> None:
    """Suptitle (when given), tight layout, atomic write of the PNG, close."""
    if title is not None:
        fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=dpi)
    pyplot().close(fig)

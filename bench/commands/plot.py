"""`hwnas plot RUNS_DIR`: redraw a search folder's plots."""

from __future__ import annotations

import click


@click.command()
@click.argument("runs_dir", type=click.Path(file_okay=False))
def plot(runs_dir: str) -> None:
    """Draw RUNS_DIR/regret.png (best-so-far regret against queries, per method) and
    RUNS_DIR/reads.png (the archs read: accuracy vs cost, with the bound and the picks)."""
    from hwnas.bench.reports.search_plots import plot_search

    for p in plot_search(runs_dir):
        click.echo(f"-> {p}")

"""`hwnas dev`: the development runs behind the methods' and predictors' choices. They read
development tasks and seeds only (devices no board uses), never a board's cells."""

from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.bench.commands.options import csv as _csv
from hwnas.core import paths


@click.group()
def dev() -> None:
    """Development runs (choices are made here, never on a board's cells)."""


@dev.command("acquisition")
@options.seeds(default=8, help="Seeds 0..K-1 per task.")
@options.out_dir((paths.RESULTS_DIR / "search" / "acquisition-dev").as_posix(), help=None)
@click.option("--variants", default=None, help="Comma-separated subset of the variants (default: all).")
@click.option("--tasks", type=int, default=None, help="Only the first N development tasks.")
@click.option("--report-only", is_flag=True, help="Rewrite the report from the runs; run nothing.")
def acquisition(seeds, out, variants, tasks, report_only) -> None:
    """BINAS / GCN acquisition variants and the baselines on the development tasks."""
    from hwnas.bench.experiments.acquisition_dev import report, run

    click.echo(report(out) if report_only else run(out, seeds, variants=_csv(variants) or None, tasks=tasks))


@dev.command("predictors")
@click.option("--k", type=int, default=10, show_default=True, help="Samples of the target device.")
@click.option("--seeds", "seed_text", default=None,
              help="Development sample seeds, e.g. 100-105 or 100,101 (default: the first six).")
def predictors(k, seed_text) -> None:
    """`auto`'s member-weighting rules on the development devices and sample seeds."""
    from hwnas.bench.experiments.protocol_dev import DEVELOPMENT_SEEDS, run

    click.echo(run(k, seed_text or f"{DEVELOPMENT_SEEDS[0]}-{DEVELOPMENT_SEEDS[5]}"))

from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.bench.commands.options import csv as _csv
from hwnas.core.paths import PREDICTORS_DIR


@click.group()
def predictors() -> None:
    """Accuracy and cost predictors."""


@predictors.command()
@options.space()
@click.option("--table", "table", required=True,
              help="Table file (CSV/Parquet with arch_idx or arch_str), optionally table:PATH:COLUMN; "
                   "or a sampled-accuracy file from `hwnas sample`.")
@click.option("--target", default=None, help="Target column (accuracy, or a latency/energy column).")
@click.option("--predictors", "names", default=None, help="Comma-separated predictor names (default: all that fit the target).")
@click.option("--train-sizes", default="10,100,1000", show_default=True, help="Comma-separated train sizes.")
@options.seeds(help="Seeds 0..K-1 per train size.")
@options.out_dir()
@click.option("--prior-tables", default=None, help="Comma-separated PATH:COLUMN of other devices' tables (for `transfer`).")
@click.option("--mode", type=click.Choice(["auto", "accuracy", "cost"]), default="auto", show_default=True,
              help="Cost mode adds within_10pct and ranks low values as best; auto reads the column/file name.")
@options.fresh()
def evaluate(space, table, target, names, train_sizes, seeds, out, prior_tables, mode, fresh) -> None:
    """Compare predictors by rank correlation over train sizes and seeds."""
    from hwnas.bench.engine.predictors import evaluate as run
    from hwnas.bench.reports.predictor_report import report_evaluation

    try:
        sizes = tuple(int(s) for s in _csv(train_sizes))
    except ValueError:
        raise ValueError(f"--train-sizes must be comma-separated integers, got {train_sizes!r}") from None
    df = run(space, table, target, out, predictors=_csv(names) or None, train_sizes=sizes, seeds=seeds,
             prior_tables=_csv(prior_tables) or None, mode=mode, fresh=fresh)
    report_evaluation(df, out)
    click.echo(f"{len(df)} rows -> {out}/rank_correlation.csv, summary.md, learning_curve.png")


@predictors.command()
@options.out_dir(PREDICTORS_DIR.as_posix(), help=None)
@options.seeds(help=None)
@click.option("--only", default=None, help="Comma-separated experiment name prefixes to run (default: all).")
@click.option("--report-only", is_flag=True, help="Fit nothing: rewrite the summaries from the rows already in OUT.")
def standard(out, seeds, only, report_only) -> None:
    """The standard comparison of `make predictors` (NB201 accuracy, HELP latency, few-shot)."""
    from hwnas.bench.experiments.predictor_standard import standard as run

    lines = run(out, seeds=seeds, only=_csv(only) or None, report_only=report_only)
    click.echo("\n".join(lines))


@predictors.command("ws-fitting")
@options.out_dir(PREDICTORS_DIR.as_posix(), help=None)
@options.seeds(default=3, help="Seeds (draws of the N cells and model seeds).")
@click.option("--sizes", default="100,1000,5000", show_default=True, help="Comma-separated numbers of cells read.")
@options.fresh(help="Refit everything (default: keep the fits already written in OUT).")
def ws_fitting(out, seeds, sizes, fresh) -> None:
    """Does fitting a model to supernet-read NB201 cells rank them better than the supernet?"""
    from hwnas.bench.experiments.ws_fitting import run

    try:
        ns = tuple(int(s) for s in _csv(sizes))
    except ValueError:
        raise ValueError(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    click.echo(run(out, sizes=ns, seeds=seeds, resume=not fresh).read_text())

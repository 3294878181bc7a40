from __future__ import annotations

import click


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@click.group()
def predictors() -> None:
    """Accuracy and cost predictors."""


@predictors.command()
@click.option("--space", required=True, help="Search space name (see `hwnas spaces`).")
@click.option("--table", "table", required=True,
              help="Table file (CSV/Parquet with arch_idx or arch_str), optionally table:PATH:COLUMN; "
                   "or a sampled-accuracy file from `hwnas sample`.")
@click.option("--target", default=None, help="Target column (accuracy, or a latency/energy column).")
@click.option("--predictors", "names", default=None, help="Comma-separated predictor names (default: all that fit the target).")
@click.option("--train-sizes", default="10,100,1000", show_default=True, help="Comma-separated train sizes.")
@click.option("--seeds", default=5, show_default=True, type=int, help="Seeds 0..K-1 per train size.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--prior-tables", default=None, help="Comma-separated PATH:COLUMN of other devices' tables (for `transfer`).")
@click.option("--mode", type=click.Choice(["auto", "accuracy", "cost"]), default="auto", show_default=True,
              help="Cost mode adds within_10pct and ranks low values as best; auto reads the column/file name.")
@click.option("--fresh", is_flag=True, help="Discard rows already in OUT instead of resuming.")
def evaluate(space, table, target, names, train_sizes, seeds, out, prior_tables, mode, fresh) -> None:
    """Compare predictors by rank correlation over train sizes and seeds."""
    from bench.pipelines.predictors import evaluate as run

    try:
        sizes = tuple(int(s) for s in _csv(train_sizes))
    except ValueError:
        raise ValueError(f"--train-sizes must be comma-separated integers, got {train_sizes!r}") from None
    df = run(space, table, target, out, predictors=_csv(names) or None, train_sizes=sizes, seeds=seeds,
             prior_tables=_csv(prior_tables) or None, mode=mode, fresh=fresh)
    click.echo(f"{len(df)} rows -> {out}/rank_correlation.csv, summary.md, learning_curve.png")


@predictors.command()
@click.option("--out", default="results/predictors", show_default=True, type=click.Path(file_okay=False))
@click.option("--seeds", default=5, show_default=True, type=int)
@click.option("--only", default=None, help="Comma-separated experiment name prefixes to run (default: all).")
def standard(out, seeds, only) -> None:
    """The standard comparison of `make predictors` (NB201 accuracy, HELP latency, few-shot)."""
    from bench.pipelines.predictors import standard as run

    lines = run(out, seeds=seeds, only=_csv(only) or None)
    click.echo("\n".join(lines))

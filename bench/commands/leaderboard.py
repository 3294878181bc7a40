from __future__ import annotations

import click

from bench.commands.search import _csv, _ints


@click.command()
@click.option("--track", type=click.Choice(["nb201", "mbv3-fmnist"]), default="nb201", show_default=True)
@click.option("--out", default="results/leaderboards", show_default=True, type=click.Path(file_okay=False))
@click.option("--methods", default=None, help="Comma-separated methods (default: every method that runs on the space).")
@click.option("--seeds", default=5, show_default=True, type=int)
@click.option("--budget", default="100", show_default=True, help="Accuracy queries per run; comma-separated for several.")
@click.option("--quantile", default=0.25, show_default=True, type=float,
              help="Each bound is this quantile of the device's cost over the space.")
@click.option("--supernet", default=None, help="Checkpoint for the mbv3-fmnist track.")
@click.option("--device", default="cpu-t1", show_default=True, help="Device table id for the mbv3-fmnist track.")
@click.option("--tables-dir", default="results/tables", show_default=True)
@click.option("--data", default="fashion-mnist", show_default=True)
@click.option("--param", "params", multiple=True, help="METHOD.PARAM=VALUE; repeatable.")
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default="serial", show_default=True)
@click.option("--workers", default=None, type=int)
def leaderboard(track, out, methods, seeds, budget, quantile, supernet, device, tables_dir, data, params, executor,
                workers) -> None:
    """Every method under the same measured constraints and budget -> OUT/<track>.md|csv|png."""
    from bench.pipelines import leaderboard as pipeline
    from bench.pipelines.search import parse_params

    if not 0 < quantile < 1:
        raise ValueError(f"--quantile must be between 0 and 1, got {quantile}")
    md = pipeline.run(track, out, methods=_csv(methods) or None, seeds=seeds, budgets=_ints(budget, "--budget"),
                      quantile=quantile, supernet=supernet, device=device, tables_dir=tables_dir, data=data,
                      params=parse_params(params), executor=executor, workers=workers)
    click.echo(md.read_text())

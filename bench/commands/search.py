from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.bench.commands.options import csv as _csv
from hwnas.bench.commands.options import ints as _ints


@click.command()
@options.space()
@click.option("--method", "methods", required=True, help="Comma-separated methods, e.g. random,evolution,binas (an unknown name lists the known ones).")
@click.option("--accuracy", required=True, help="table:PATH:COLUMN (benchmark table) or supernet:CKPT.")
@click.option("--truth", default=None,
              help="table:PATH:COLUMN that scores each pick (true_accuracy, regret); default: the accuracy source.")
@click.option("--constraint", "constraints", multiple=True, required=True,
              help="METRIC_UNIT<=BOUND@SOURCE, e.g. 'latency_ms<=25@cpu-t1' or '...@table:PATH:COLUMN'; repeatable.")
@options.budget()
@options.seeds(help="Seeds 0..K-1 per method and budget.")
@options.out_dir(help="Output folder (runs.csv, trajectories.parquet).")
@options.params()
@options.data(help="Dataset of a supernet accuracy source.")
@options.tables_dir()
@options.executor()
@options.workers()
@options.fresh(help="Discard runs already in OUT instead of resuming.")
@options.adopt()
@click.option("--pool", type=click.Path(dir_okay=False), default=None,
              help="A table (Parquet/CSV) whose arch_str column lists the only archs to search, as a finite space "
                   "with exact optima, like NB201 (e.g. a `hwnas device-bench` table, or your own list).")
@click.option("--estimate-store", type=click.Path(file_okay=False), default=None,
              help="Folder where runs share a supernet source's estimates (each run is charged what an estimate "
                   "cost when made), e.g. .cache/supernet-estimates.")
@click.option("--final-reads", type=click.IntRange(min=0), default=None,
              help="k: every method ends with the same k final validation reads of its own top candidates; each "
                   "row records the method's own top-1 pick (model_arch_str, k=0) beside its k-validated pick "
                   "(default: each method's own rule).")
def search(space, methods, accuracy, truth, constraints, budget, seeds, out, params, data, tables_dir, executor, workers,
           fresh, adopt, pool, estimate_store, final_reads) -> None:
    """Run search methods under measured constraints (resumable)."""
    from hwnas.bench.engine import search as pipeline

    if fresh and adopt:
        raise ValueError("--fresh and --adopt contradict each other (start over, or keep the rows); pass one")

    df = pipeline.run(space, _csv(methods), accuracy, list(constraints), _ints(budget, "--budget"), seeds, out,
                      params=pipeline.parse_params(params), data=data, tables_dir=tables_dir, resume=not fresh,
                      executor=executor, workers=workers, truth=truth,
                      estimate_store=estimate_store, adopt=adopt, pool=pool, final_reads=final_reads)
    s = pipeline.summarise(df)
    click.echo(s.to_string(index=False))
    from hwnas.bench.reports.search_plots import plot_search

    plots = plot_search(out)
    click.echo(f"{len(df)} runs -> {out}/runs.csv, trajectories.parquet; plots: {', '.join(p.name for p in plots)}")

from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.bench.commands.options import csv as _csv
from hwnas.bench.commands.options import ints as _ints
from hwnas.core.paths import LEADERBOARDS_DIR


@click.command()
@click.option("--track", type=click.Choice(["nb201", "nb201-ws", "mbv3-fmnist", "mbv3-fmnist-table"]), default="nb201",
              show_default=True, help="nb201, nb201-ws: the NB201 tables; mbv3-fmnist: every method on the "
                                      "chain space (picks timed and trained); mbv3-fmnist-table: query methods on "
                                      "a device-bench pool searched as a table (--pool).")
@options.out_dir(LEADERBOARDS_DIR.as_posix(), help=None)
@click.option("--methods", default=None, help="Comma-separated methods (default: every method that runs on the space).")
@options.seeds(help=None)
@options.budget()
@click.option("--quantile", default=None,
              help="Bounds at these quantiles of each device's cost over the space, comma-separated "
                   "(default: 0.25,0.5,0.75 on the NB201 tracks, 0.25,0.5 on the chain track, "
                   "0.1,0.25,0.5,0.75 on the table track).")
@click.option("--supernet", default=None, help="Checkpoint for the mbv3-fmnist track.")
@click.option("--device", default="cpu-t1", show_default=True, help="Device table id for the mbv3-fmnist track.")
@options.tables_dir(help=None)
@options.data(help=None)
@options.params(help="METHOD.PARAM=VALUE; repeatable.")
@options.executor(help=None)
@options.workers(help=None)
@click.option("--report-only", is_flag=True,
              help="Rewrite the board from the runs already in OUT, running nothing.")
@click.option("--stages", default="search,measure,train,report", show_default=True,
              help="Chain track: which stages run (search, measure: picks timed end to end, train: picks "
                   "trained stand-alone, report); each resumes.")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="Chain track: the stand-alone reference set (default results/accuracies/<space>/standalone.parquet).")
@click.option("--pool", type=click.Path(dir_okay=False), default=None,
              help="Table track: the pool table (default results/device-bench/mbv3-fmnist/cpu-t1.parquet). Chain "
                   "track: judge picks against this pool's best arch under each bound (measured latency), picks "
                   "trained as a pool row (the pool's protocol, its first seed); an incomplete pool is said and "
                   "its regret left empty.")
@click.option("--final-reads", type=click.IntRange(min=0), default=10, show_default=True,
              help="Chain track: k, the final validation reads every method gets; the board shows each "
                   "method's own top-1 pick (k=0) beside its k-validated pick.")
@click.option("--guard", type=float, default=None,
              help="Chain track: share kept below each bound while searching (default: the 90th percentile of "
                   "the calibrated table's error on validate-lut's held-out networks).")
def leaderboard(track, out, methods, seeds, budget, quantile, supernet, device, tables_dir, data, params, executor,
                workers, report_only, stages, reference, pool, guard, final_reads) -> None:
    """Every method under the same measured constraints and budget -> OUT/<track>.md|csv|png."""
    from hwnas.bench.engine.search import parse_params
    from hwnas.bench.experiments import leaderboard as pipeline

    try:
        qs = tuple(float(q) for q in _csv(quantile)) or None
    except ValueError:
        raise ValueError(f"--quantile must be comma-separated numbers, got {quantile!r}") from None
    if qs and not all(0 < q < 1 for q in qs):
        raise ValueError(f"--quantile values must be between 0 and 1, got {quantile}")
    if track == "mbv3-fmnist":
        from dataclasses import replace
        from pathlib import Path

        from hwnas.bench.engine.protocol import POOL_PROTOCOL, StandaloneProtocol
        from hwnas.bench.experiments import chain_board
        from hwnas.core.paths import ACCURACIES_DIR

        if reference:
            ref = Path(reference)
        else:  # judged against a pool: picks trained with its protocol, the reference set's is another
            ref = None if pool else ACCURACIES_DIR / track / "standalone.parquet"
        board = chain_board.ChainBoard(
            space=track, device=device, supernet=supernet, methods=tuple(_csv(methods)) or None,
            quantiles=qs or (0.25, 0.5), seeds=seeds, budget=_ints(budget, "--budget")[0],
            params=parse_params(params), data=data, tables_dir=Path(tables_dir), out=Path(out),
            reference=ref, stages=("report",) if report_only else tuple(_csv(stages)), executor=executor,
            workers=workers, guard=guard, final_reads=final_reads, pool=Path(pool) if pool else None,
            # judged against a pool: a pick is trained as a pool row is, with the pool protocol's first
            # seed only (the pool's val_acc; its second seed, on a third of the pool, states the noise)
            protocol=replace(POOL_PROTOCOL, seeds=POOL_PROTOCOL.seeds[:1]) if pool else StandaloneProtocol())
        click.echo(chain_board.run(board).read_text())
        return
    if track == "mbv3-fmnist-table":
        from hwnas.bench.experiments import table_board

        kw = {"pool": pool or table_board.DEFAULT_POOL, "quantile": qs, "tables_dir": tables_dir}
        if report_only:
            md = table_board.report(out, seeds=seeds, budgets=_ints(budget, "--budget"), **kw)
        else:
            md = table_board.run(out, methods=_csv(methods) or None, seeds=seeds, budgets=_ints(budget, "--budget"),
                                 params=parse_params(params), executor=executor, workers=workers, **kw)
        click.echo(md.read_text())
        return
    if report_only:
        click.echo(pipeline.report(track, out, seeds=seeds, budgets=_ints(budget, "--budget")).read_text())
        return
    md = pipeline.run(track, out, methods=_csv(methods) or None, seeds=seeds, budgets=_ints(budget, "--budget"),
                      quantile=qs, tables_dir=tables_dir, data=data,
                      params=parse_params(params), executor=executor, workers=workers)
    click.echo(md.read_text())

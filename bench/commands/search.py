from __future__ import annotations

import click


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _ints(value: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(value))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {value!r}") from None


@click.command()
@click.option("--space", required=True, help="Search space name (see `hwnas spaces`).")
@click.option("--method", "methods", required=True, help="Comma-separated methods, e.g. random,evolution,binas (an unknown name lists the known ones).")
@click.option("--accuracy", required=True, help="table:PATH:COLUMN (benchmark table) or supernet:CKPT.")
@click.option("--constraint", "constraints", multiple=True, required=True,
              help="METRIC_UNIT<=BOUND@SOURCE, e.g. 'latency_ms<=25@cpu-t1' or '...@table:PATH:COLUMN'; repeatable.")
@click.option("--budget", default="100", show_default=True, help="Accuracy queries per run; comma-separated for several.")
@click.option("--seeds", default=5, show_default=True, type=int, help="Seeds 0..K-1 per method and budget.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (runs.csv, trajectories.parquet).")
@click.option("--param", "params", multiple=True, help="METHOD.PARAM=VALUE, e.g. evolution.population=20; repeatable.")
@click.option("--data", default="fashion-mnist", show_default=True, help="Dataset of a supernet accuracy source.")
@click.option("--tables-dir", default="results/tables", show_default=True, help="Where device tables live.")
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default="serial", show_default=True,
              help="Where runs execute: in-process, a process pool, or Ray (RAY_ADDRESS joins a cluster).")
@click.option("--workers", default=None, type=int, help="Workers for process/ray (default: all cores).")
@click.option("--fresh", is_flag=True, help="Discard runs already in OUT instead of resuming.")
def search(space, methods, accuracy, constraints, budget, seeds, out, params, data, tables_dir, executor, workers,
           fresh) -> None:
    """Run search methods under measured constraints (resumable)."""
    from bench.pipelines import search as pipeline

    df = pipeline.run(space, _csv(methods), accuracy, list(constraints), _ints(budget, "--budget"), seeds, out,
                      params=pipeline.parse_params(params), data=data, tables_dir=tables_dir, resume=not fresh,
                      executor=executor, workers=workers)
    s = pipeline.summarise(df)
    click.echo(s.to_string(index=False))
    click.echo(f"{len(df)} runs -> {out}/runs.csv, trajectories.parquet")

from __future__ import annotations

import os

# spin-waiting OpenMP threads thrash when other jobs share the cores; set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
from hwnas.bench.commands import options  # noqa: E402
from hwnas.bench.commands.options import csv as _csv  # noqa: E402


@click.command("device-bench")
@options.space(required=False, default="mbv3-fmnist", show_default=True, help="A chain space (see `hwnas spaces`).")
@click.option("--device", default="cpu:threads=1", show_default=True,
              help="The device the pool is timed on (its block table, with validate-lut's calibration, must exist).")
@click.option("--stages", default="select,train,reproduce,report", show_default=True,
              help="Comma-separated, in order: select, time, train, reproduce, supernet, report. `time` needs a "
                   "quiet machine, so it is not in the default; `reproduce` retrains 5 rows drawn at random with "
                   "`hwnas train --arch A --seed S`; `supernet` needs --supernet (each checkpoint is a try, kept).")
@click.option("--n", "n", default=300, show_default=True, type=int, help="Archs in the pool.")
@click.option("--supernet", type=click.Path(dir_okay=False), default=None,
              help="Supernet stage: the checkpoint whose ranking of the pool the report measures.")
@click.option("--select-seed", default=0, show_default=True, type=int, help="Seeds which archs the pool holds.")
@click.option("--out-dir", default="results/device-bench", show_default=True, type=click.Path(file_okay=False),
              help="Writes OUT_DIR/<space>/<device-id>{-pool,-runs,-networks,}.parquet, .md and .png.")
@options.tables_dir()
@options.executor(default="process")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Training workers (one torch thread each); Ray: actors.")
@click.option("--limit", default=None, type=int, help="Train at most this many runs now (the rest on a rerun).")
@click.option("--copy-from", type=click.Path(file_okay=False, exists=True), default=None,
              help="First copy the pool, runs and timing tables of a run writing into this folder (a job outside "
                   "the repository) into --out-dir, each read once, e.g. with --stages report to commit its rows.")
def device_bench(space, device, stages, n, supernet, select_seed, out_dir, tables_dir, executor, workers, limit,
                 copy_from) -> None:
    """Your own NB201-style table of a chain space on a device: a pool of archs spread over its
    latency range, each timed end to end and trained stand-alone (the pool protocol:
    bench/engine/protocol.py). Every stage resumes where it stopped."""
    from pathlib import Path

    from hwnas.bench.experiments.device_bench import DeviceBenchConfig, run

    cfg = DeviceBenchConfig(space=space, device=device, n=n, select_seed=select_seed, out_dir=Path(out_dir),
                            tables_dir=Path(tables_dir), executor=executor, workers=workers, limit=limit,
                            supernet=Path(supernet) if supernet else None)
    out = run(cfg, _csv(stages), command=f"hwnas device-bench --space {space} --device {device}",
              copy_from_dir=copy_from)
    for k, v in out.items():
        click.echo(f"{k}: {v}")

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads libgomp (see supernet.py)

import click  # noqa: E402
from hwnas.bench.commands import options  # noqa: E402

OUT_HELP = "Reference file (Parquet; + .csv mirror and .json sidecar)."


@click.group()
def standalone() -> None:
    """The chain track's stand-alone ground truth (reference set, supernet check, report)."""


@standalone.command("train")
@options.space()
@click.option("--table", required=True, type=click.Path(dir_okay=False),
              help="Measured block table whose latency range the set is stratified over (e.g. cpu-t1.parquet).")
@options.out_file(help=OUT_HELP)
@click.option("--n", "n", default=40, show_default=True, type=int, help="Archs in the reference set.")
@options.seed(help="Seeds the pool the set is chosen from.")
@click.option("--archs", "archs_file", default=None, type=click.Path(dir_okay=False),
              help="Train these archs too (one string per line, or a table with arch_str).")
@click.option("--limit", default=None, type=int, help="Stop after N runs (a rerun continues).")
@options.executor(default="process")
@click.option("--workers", default="2", show_default=True, callback=options.check_workers, metavar="N|auto",
              help="Runs at a time (one thread each): a number >= 1, or auto (all cores).")
def standalone_train(space, table, out, n, seed, archs_file, limit, executor, workers) -> None:
    """Train the reference set with every protocol seed (resumable; rows land as they finish)."""
    from hwnas.bench.engine.standalone import train_reference
    from hwnas.bench.engine.supernet import sample_archs
    from hwnas.search.spaces import create_space

    sp = create_space(space)
    archs = sample_archs(sp, 0, 0, archs_file) if archs_file else None
    df = train_reference(sp, table, out, n=n, seed=seed, archs=archs, executor=executor,
                         workers=workers, limit=limit,
                         selection=f"{len(archs)} archs listed in {os.path.basename(archs_file)}" if archs else None)
    click.echo(f"{df['arch_str'].nunique()} archs, {len(df)} runs -> {out}")


@standalone.command("supernet")
@options.space()
@click.option("--supernet", "checkpoint", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Checkpoint from `hwnas supernet train`.")
@options.out_file(help=OUT_HELP)
@click.option("--calib-images", default=512, show_default=True, type=int)
@options.workers(help=None)
def standalone_supernet(space, checkpoint, out, calib_images, workers) -> None:
    """Fill `supernet_val_acc`: the supernet's estimate of every reference arch (whole val split)."""
    from hwnas.bench.engine.standalone import add_supernet_estimates
    from hwnas.search.spaces import create_space

    df = add_supernet_estimates(create_space(space), out, checkpoint, calib_images=calib_images, workers=workers)
    click.echo(f"supernet estimates of {df['arch_str'].nunique()} archs -> {out}")


@standalone.command("report")
@options.out_file(help=OUT_HELP)
@click.option("--report-dir", required=True, type=click.Path(file_okay=False))
def standalone_report(out, report_dir) -> None:
    """Trade-off, seed noise, supernet ranking (Kendall tau) and the two plots."""
    import pandas as pd
    from hwnas.bench.reports.standalone_report import write_report
    from hwnas.devices.table import read_sidecar

    p, f = write_report(pd.read_parquet(out), report_dir, read_sidecar(out), command="make standalone")
    click.echo(f"{p}: gap {f['decile_gap_pp']:.2f} pp, seed std {f['seed_std_pp']:.2f} pp, spread "
               f"{f['spread_std_pp']:.2f} pp, tau supernet {f.get('tau_supernet_vs_standalone', float('nan')):.3f}")


@standalone.command("predictors")
@options.space()
@options.out_file(help=OUT_HELP)
@click.option("--samples", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Supernet-sampled subnets (`hwnas sample` output).")
@click.option("--predictors", "names", default="auto,gcn,xgb-graf,rf-graf,ridge,bilinear", show_default=True)
@click.option("--sizes", default="50,100,200", show_default=True)
@options.seeds(default=3)
@click.option("--report-dir", required=True, type=click.Path(file_okay=False))
def standalone_predictors(space, out, samples, names, sizes, seeds, report_dir) -> None:
    """Fit predictors on supernet samples; Kendall tau against the stand-alone truth."""
    import pandas as pd
    from hwnas.bench.reports.standalone_report import (
        figures,
        predictor_study,
        write_predictor_study,
    )
    from hwnas.devices.table import read_sidecar
    from hwnas.search.spaces import create_space

    if not read_sidecar(out).get("complete"):
        click.echo(f"{out}: the reference set is not complete yet (`make standalone` resumes it); predictors vs "
                   f"stand-alone truth skipped, {report_dir} left as it is")
        return
    ref = pd.read_parquet(out)
    df = predictor_study(create_space(space), pd.read_parquet(samples), ref, options.csv(names),
                         options.ints(sizes, "--sizes"), seeds)
    p = write_predictor_study(df, report_dir, figures(ref), command="make predictors")
    click.echo(f"{len(df)} fits -> {p}")

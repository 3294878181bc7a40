from __future__ import annotations

import os

# OpenMP threads that spin-wait thrash when other jobs share the cores (measured here: 2 spinning
# threads trained 7x slower than 1 under load); must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
from hwnas.bench.commands import options  # noqa: E402
from hwnas.bench.engine.protocol import POOL_PROTOCOL  # noqa: E402


@click.group()
def supernet() -> None:
    """Weight-sharing supernets."""


@supernet.command("train")
@options.space(help="Space name (mbv3-*, nb201; see `hwnas spaces`).")
@options.data()
@options.out_file(help="Checkpoint file (written every epoch).")
@options.resume(help="Continue from --out if it exists (after a kill).")
@click.option("--force", is_flag=True, help="Train afresh over an existing --out (the old checkpoint is kept as *.replaced-*).")
@options.seed(help="Seeds splits, paths, init; same seed = same weights on CPU.")
@options.train()
@options.sampler()
@click.option("--kernel-transform", is_flag=True, help="OFA's learned kernel transform instead of a plain centre crop (mbv3).")
@options.monitor_val()
def supernet_train(space, data, epochs, out, resume, force, seed, batch_size, lr, sampler, sandwich_random,
                   distill, train_per_epoch, kernel_transform, threads, monitor_val) -> None:
    """Train a supernet on a dataset's train split."""
    import time
    from pathlib import Path

    from hwnas.bench.engine.store import backup
    from hwnas.core.lock import output_lock
    from hwnas.search.data import load_dataset
    from hwnas.search.spaces import create_space
    from hwnas.search.supernet import TrainConfig, train_supernet

    if resume and force:
        raise ValueError("--resume and --force contradict each other; pass one")
    sp = create_space(space)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, sampler=sampler,
                      sandwich_random=sandwich_random, distill=distill, train_per_epoch=train_per_epoch,
                      seed=seed, threads=threads, monitor_val=monitor_val).validate()
    t0 = time.perf_counter()
    with output_lock(out, "--out", is_dir=False):  # one writer; also proves the folder writable now
        _check_writable(out)
        if Path(out).exists() and not resume:
            if not force:
                raise FileExistsError(f"{out} already holds a checkpoint; pass --resume to continue it or --force "
                                      "to train it again (the old one is kept as *.replaced-*)")
            backup(out)
        ds = load_dataset(data, shape=sp.input_shape, seed=seed)
        cfg_sn = {"kernel_transform": True} if kernel_transform else {}
        tr = train_supernet(sp, ds, cfg, out=out, resume=resume, supernet_config=cfg_sn)
    h = tr.history_[-1] if tr.history_ else {}
    click.echo(f"supernet {sp.name}: {len(tr.history_)} epoch(s) in checkpoint {out} "
               f"({time.perf_counter() - t0:.0f} s this run); last epoch: "
               + ", ".join(f"{k}={v:.2f}" for k, v in h.items() if k.startswith("val_acc")))


@click.command()
@options.space(help="Space of the supernet.")
@click.option("--supernet", "checkpoint", required=True, type=click.Path(dir_okay=False), help="Checkpoint from `hwnas supernet train`.")
@click.option("--n", "n", default=200, show_default=True, type=int, help="Number of subnets (random, distinct).")
@options.out_file(help="Parquet output (+ .csv mirror, .meta.json).")
@click.option("--archs", "archs_file", default=None, type=click.Path(dir_okay=False), help="Evaluate these archs instead (one string per line, or a table with arch_str).")
@options.data()
@options.seed(help="Seeds the archs, splits and calibration images.")
@click.option("--calib-images", default=512, show_default=True, type=int, help="Training images for BN recalibration per subnet.")
@click.option("--val-images", default=None, type=int, help="Validation images per subnet (default: whole val split).")
@options.workers(help="Worker processes: a number >= 1, or auto (all cores; the default).")
@options.executor("process", choices=None, help="serial | process (a Ray backend can be registered).")
@click.option("--summary", "summary_path", default=None, type=click.Path(dir_okay=False), help="Also write a Markdown summary (std, best).")
@options.fresh(help="Start over when --out was made from another checkpoint, seed or settings (the old file is kept as *.replaced-*).")
@options.adopt(help="Take rows in --out that have no provenance file as made from this checkpoint, seed and settings.")
def sample(space, checkpoint, n, out, archs_file, data, seed, calib_images, val_images, workers,
           executor, summary_path, fresh, adopt) -> None:
    """Evaluate sampled subnets of a trained supernet (resumable)."""
    import time
    from pathlib import Path

    from hwnas.bench.engine.store import backup, check_provenance
    from hwnas.bench.engine.supernet import run_facts, sample_subnets, summary
    from hwnas.bench.reports.supernet_report import write_samples_summary
    from hwnas.bench.reports.writer import written_by
    from hwnas.core.io import file_sha256
    from hwnas.core.lock import output_lock
    from hwnas.search.spaces import create_space
    from hwnas.search.supernet import load_checkpoint

    if n < 1 and not archs_file:
        raise ValueError(f"--n must be >= 1, got {n}")
    if fresh and adopt:
        raise ValueError("--fresh and --adopt contradict each other (start over, or keep the rows); pass one")
    sp = create_space(space)
    t0 = time.perf_counter()
    with output_lock(out, "--out", is_dir=False):  # one writer; also proves the folder writable now
        _check_writable(out)
        if summary_path:
            _check_writable(summary_path)
        load_checkpoint(checkpoint)  # a damaged or foreign checkpoint: one line before anything runs
        # resume only rows made from the same checkpoint (content), seed and settings
        facts = {"space": sp.name, "checkpoint_sha256": file_sha256(checkpoint), "seed": seed, "data": data,
                 "calib_images": calib_images, "val_images": val_images, "archs": archs_file}
        side = str(out) + ".provenance.json"
        if fresh:
            for p in (out, side):
                backup(p)
        if Path(out).exists() and not Path(side).exists():
            if not adopt:
                raise ValueError(f"{out} holds results but no {Path(side).name}, so what they were made from cannot "
                                 "be checked; pass --fresh to start over (the old file is kept as *.replaced-*) or "
                                 "--adopt to take them as made from this checkpoint, seed and settings")
            check_provenance(side, facts, resume=False)
        check_provenance(side, facts, resume=True, name=out)
        df = sample_subnets(sp, checkpoint, out, n=n, seed=seed, data=data, archs_file=archs_file,
                            calib_images=calib_images, val_images=val_images, workers=workers,
                            executor=executor)
    s = summary(df)
    if summary_path:
        write_samples_summary(df, summary_path, run_facts(out, checkpoint),
                              written_by(f"hwnas sample --space {space}"))
    click.echo(f"{s['n']} subnets -> {out}: val_acc best {s['best_val_acc']:.2f}%, mean "
               f"{s['mean_val_acc']:.2f}%, std {s['std_val_acc']:.2f} pp ({time.perf_counter() - t0:.0f} s)")


@click.command()
@options.space(help=None)
@click.option("--arch", required=True, help="Architecture string (see `hwnas spaces`).")
@options.data(default=POOL_PROTOCOL.data)
@options.seed(help="Training seed (init, shuffles); the val/test split is fixed by --split-seed.")
@click.option("--split-seed", default=POOL_PROTOCOL.split_seed, show_default=True, type=int,
              help="Seeds the val split.")
@click.option("--epochs", default=POOL_PROTOCOL.epochs, show_default=True, type=int)
@click.option("--train-per-epoch", default=POOL_PROTOCOL.train_per_epoch, show_default=True, type=int,
              help="Images per epoch.")
@click.option("--threads", default=POOL_PROTOCOL.threads, show_default=True, type=int,
              help="Torch threads (results repeat exactly only with the same number).")
@options.out_file(required=False, help="Write the result as JSON.")
def train(space, arch, data, seed, split_seed, epochs, train_per_epoch, threads, out) -> None:
    """Train one architecture stand-alone (val and test accuracy).

    The defaults are the device-bench pool's protocol (bench/engine/protocol.py,
    POOL_PROTOCOL: 2 epochs x 10,000 images, one thread), so `--arch A --seed S` and no other
    flag reruns the pool row (A, S) of `make device-bench`. The 40-arch reference set of
    `make standalone` used 3 epochs x 20,000 images: add `--epochs 3 --train-per-epoch 20000`."""
    from dataclasses import asdict, replace

    from hwnas.bench.engine.standalone import _init, _train
    from hwnas.core.io import atomic_write_json
    from hwnas.search.spaces import create_space

    sp = create_space(space)
    arch_str = sp.to_str(sp.from_str(arch))
    proto = replace(POOL_PROTOCOL, data=data, split_seed=split_seed, epochs=epochs, train_per_epoch=train_per_epoch,
                    seeds=(seed,), threads=threads)
    proto.train_config(seed)  # validates
    _init(sp.name, {**asdict(proto), "seeds": [seed]}, threads=threads)
    r = _train((arch_str, seed))
    rec = {"space": sp.name, **r, "protocol": proto.key()}
    if out:
        atomic_write_json(out, rec)
    click.echo(f"{arch_str}: val_acc {r['val_acc']:.2f}%, test_acc {r['test_acc']:.2f}% after {epochs} epoch(s) "
               f"({r['train_wall_s']:.0f} s)")


def _check_writable(path) -> None:
    """Fail now, not after an epoch or a pass, when `path` cannot be written."""
    import tempfile
    from pathlib import Path

    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=".probe-"):
            pass
        if p.exists() and not os.access(p, os.W_OK):
            raise PermissionError(13, "the file is read-only")
    except OSError as exc:
        raise OSError(f"cannot write {p} ({exc.strerror or exc}); choose a writable location") from None

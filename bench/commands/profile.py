"""`hwnas profile` and `hwnas validate-lut` (device layer)."""

from __future__ import annotations

from pathlib import Path

import click
from hwnas.bench.commands import options

timing_options = options.timing


def _timing(rel_ci: float, max_s: float, batch: int, warmup_s: float = 0.2, min_runs: int = 20,
            round_runs: int = 10):
    from hwnas.devices.timing import TimingConfig

    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    if max_s <= 0 or warmup_s < 0:
        raise ValueError(f"--max-s must be > 0 and --warmup-s >= 0, got {max_s}, {warmup_s}")
    return TimingConfig(rel_ci=rel_ci, max_s=max_s, warmup_s=warmup_s, min_runs=min_runs,
                        round_runs=round_runs)


@click.command()
@click.option("--device", "device", required=True,
              help="Device spec, or a comma-separated list profiled in parallel (cpu, cpu:threads=1, cuda, trt, "
                   "trt-native:fp16, torch-cpu, remote:URL).")
@options.space(help="Search space (see `hwnas spaces`).")
@options.resume(help="Continue an existing (or killed) run; measured rows are kept.")
@click.option("--force", is_flag=True, help="Measure again even though the table exists.")
@click.option("--limit", type=int, default=None, help="Stop after N blocks (a later --resume continues).")
@click.option("--sample", type=int, default=None, help="Measure N sampled whole networks instead of every block.")
@options.seed(help="Seed of --sample.")
@click.option("--chunk", type=int, default=8, show_default=True,
              help="Rows per atomic append (a kill loses at most this many measurements).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/onnx", show_default=True,
              help="ONNX export cache (by block key).")
@click.option("--memory-only", is_flag=True,
              help="Fill the measured peak_mem_bytes of an existing CPU table's rows without timing anything "
                   "(memory does not depend on the machine's load; latency columns stay as they were).")
@timing_options
def profile(device, space, resume, force, limit, sample, seed, chunk, cache_dir, memory_only, rel_ci, max_s, warmup_s,
            min_runs, round_runs, batch, out_dir, no_reference) -> None:
    """Measure every distinct block of a space on a device and write its table."""
    from hwnas.bench.engine.profile import ProfileConfig
    from hwnas.bench.engine.profile import profile as run_profile
    from hwnas.search.spaces import create_space

    create_space(space)  # unknown space: one line before any device starts
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be >= 0, got {limit}")
    if sample is not None and sample < 1:
        raise ValueError(f"--sample must be >= 1, got {sample}")
    from hwnas.devices.registry import split_specs

    specs = split_specs(device)  # run_profile checks them (bad, unavailable, repeated) before measuring
    if memory_only:
        _memory_only(specs, space, Path(out_dir), sample, batch, Path(cache_dir))
        return
    pc = ProfileConfig(space=space, devices=specs, out_dir=Path(out_dir), timing=_timing(rel_ci, max_s, batch, warmup_s, min_runs, round_runs),
                       resume=resume, force=force, limit=limit, sample=sample, seed=seed, batch=batch,
                       reference=not no_reference, cache_dir=Path(cache_dir), chunk=chunk)
    for r in run_profile(pc):
        state = "complete" if r["complete"] else f"partial ({r['rows']}/{r['total']}; rerun with --resume)"
        click.echo(f"{r['device_id']}: measured {r['measured']} in {r['wall_s']:.1f} s "
                   f"({r['unstable']} unstable) -> {r['path']} [{state}]")
        if r["stale"]:
            click.echo(f"note: {r['stale']} row(s) of {r['path']} are not blocks of the current {space} definition "
                       "(the space changed since they were measured); they are kept but unused", err=True)


def _memory_only(specs, space_name: str, out_dir: Path, sample, batch: int, cache_dir: Path) -> None:
    from hwnas.bench.engine.memory_pass import fill_measured_memory
    from hwnas.bench.engine.profile import table_path
    from hwnas.devices.registry import create_device
    from hwnas.search.spaces import create_space

    space = create_space(space_name)
    for spec in specs:
        dev = create_device(spec)
        if getattr(dev, "provider", None) != "cpu":
            raise ValueError(f"--memory-only measures onnxruntime's CPU memory; {spec!r} is not a cpu device")
        path = table_path(out_dir, space.name, dev.device_id, "-networks" if sample else "")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no table to fill; profile it first (without --memory-only)")
        r = fill_measured_memory(path, space, threads=dev.threads, batch=batch, cache_dir=cache_dir)
        click.echo(f"{dev.device_id}: measured the memory of {r['filled']} row(s) in {r['wall_s']:.1f} s "
                   f"({r['missing']} still empty) -> {path}")


@click.command("validate-lut")
@click.option("--device", required=True, help="Device spec (its block table must exist).")
@options.space(help="Search space.")
@click.option("--samples", type=int, default=60, show_default=True, help="Whole networks to measure.")
@options.seed()
@click.option("--test-frac", type=float, default=0.5, show_default=True,
              help="Share of the networks held out to evaluate the calibrated predictor.")
@options.resume(help="Reuse network measurements of a killed run.")
@timing_options
def validate_lut(device, space, samples, seed, test_frac, resume, rel_ci, max_s, warmup_s, min_runs,
                 round_runs, batch, out_dir, no_reference) -> None:
    """Measure whole networks end to end and compare with the table's sum."""
    from hwnas.bench.engine.validate_lut import ValidateConfig, validate
    from hwnas.bench.reports import lut_validation
    from hwnas.bench.reports.writer import written_by

    if samples < 4:
        raise ValueError(f"--samples must be >= 4 (train and test splits), got {samples}")
    if not 0 < test_frac < 1:
        raise ValueError(f"--test-frac must be in (0, 1), got {test_frac}")
    vc = ValidateConfig(space=space, device=device, samples=samples, seed=seed, test_frac=test_frac,
                        out_dir=Path(out_dir), timing=_timing(rel_ci, max_s, batch, warmup_s, min_runs, round_runs), batch=batch,
                        resume=resume, reference=not no_reference)
    out = validate(vc)
    rep = lut_validation.write_report(out["base"], out["report"], out["per_network"], out["info"], out["memory"],
                                      written_by(f"hwnas validate-lut --device {device} --space {space}"))
    click.echo(out["summary"])
    click.echo(f"report -> {rep['md']}")

"""`hwnas measure MODEL.onnx --device ...`: one model timed end to end by the suite's protocol."""

from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.devices.timing import TimingConfig

_TIMING = options.defaults(TimingConfig)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", default="cpu:threads=1", show_default=True,
              help="Where to time it: cpu[:threads=N], cuda, trt[:fp16], trt-native[:fp16], remote:URL, "
                   "or a plugin's device.")
@click.option("--input-shape", default=None,
              help="Shape of a dynamic input, batch included: 1x3x224x224 (the model's one input) or "
                   "NAME=1x3x224x224,NAME2=...; static inputs need none.")
@click.option("--rel-ci", type=float, default=_TIMING["rel_ci"], show_default=True,
              help="Stop when the 95% CI half-width of the median is within this fraction.")
@click.option("--max-s", type=float, default=_TIMING["max_s"], show_default=True,
              help="Time cap in seconds (the row is flagged unstable when hit).")
@click.option("--warmup-s", type=float, default=_TIMING["warmup_s"], show_default=True,
              help="Warm-up time (at least 10 runs as well).")
@click.option("--min-runs", type=int, default=_TIMING["min_runs"], show_default=True,
              help="Runs before the stop rule applies.")
@click.option("--round-runs", type=int, default=_TIMING["round_runs"], show_default=True,
              help="Runs per interleaving round (model, then reference).")
@click.option("--no-reference", is_flag=True,
              help="Do not interleave with the reference network (raw figures only; not drift compensated).")
@options.out_file(required=False, help="Append the row to this .csv or .parquet table (created when absent).")
def measure(model, device, input_shape, rel_ci, max_s, warmup_s, min_runs, round_runs, no_reference, out) -> None:
    """Time an ONNX model end to end on a device: latency (drift compensated against the reference
    network), memory and energy where the device reads them; one summary line, and a table row with --out."""
    from pathlib import Path

    from hwnas.bench.engine import measure as pipeline
    from hwnas.core.io import file_sha256
    from hwnas.core.paths import portable

    cfg = TimingConfig(rel_ci=rel_ci, max_s=max_s, warmup_s=warmup_s, min_runs=min_runs, round_runs=round_runs)
    m = pipeline.measure_model(model, device, pipeline.parse_shapes(input_shape), cfg, reference=not no_reference)
    name = Path(model).name
    click.echo(pipeline.summary_line(m, name))
    if out:
        row = pipeline.measurement_row(m, portable(Path(model).resolve()), file_sha256(model))
        click.echo(f"row -> {pipeline.append_row(out, row)}")

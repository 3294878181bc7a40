"""`hwnas gpu-check`: the GPU path end to end on a machine with an NVIDIA GPU, in one report."""

from __future__ import annotations

import click
from hwnas.bench.commands import options
from hwnas.bench.commands.options import csv as _csv

BACKENDS = "cuda,trt,trt:fp16,trt-native,trt-native:fp16,torch-cuda"


@click.command("gpu-check")
@options.out_dir("runs/gpu-check", help="Folder of the tables and the report.")
@click.option("--space", default="mbv3-fmnist", show_default=True, help="Space whose blocks every backend profiles.")
@click.option("--samples", type=int, default=8, show_default=True, help="Whole networks of the end-to-end validation.")
@click.option("--backends", default=BACKENDS, show_default=True, help="Comma-separated GPU backends.")
@click.pass_context
def gpu_check(ctx, out, space, samples, backends) -> None:
    """Profile, validate and time every GPU backend; OUT/gpu-check.md says pass / FAIL / not measured
    per item. Exit status 1 when a check failed, 2 without an NVIDIA GPU (one line)."""
    from hwnas.bench.experiments.gpu_check import main

    ctx.exit(main(out, space, samples, tuple(_csv(backends))))

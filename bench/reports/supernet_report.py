"""The summary of `hwnas sample --summary`: what the sampled subnets' accuracies look like (count,
best, mean, spread) and what the supernet and the sampling cost, as a Markdown table and the same
figures as JSON beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hwnas.bench.engine.supernet import summary
from hwnas.core.io import atomic_write_json

from .writer import facts_table, write_markdown


def write_samples_summary(df: pd.DataFrame, path: str | Path, extra: dict | None, command: str) -> Path:
    """PATH (Markdown) and PATH with .json: the engine's `summary` of the rows, then `extra`
    (run facts: `bench.engine.supernet.run_facts`)."""
    s = {**summary(df), **(extra or {})}
    p = Path(path)
    atomic_write_json(p.with_suffix(".json"), s, default=str)
    return write_markdown(p, ["# Supernet-sampled subnet accuracies", "", *facts_table(s, ("quantity", "value"))],
                          command=command)

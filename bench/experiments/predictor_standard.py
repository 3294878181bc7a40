"""The standard predictor comparison of `make predictors` (`hwnas predictors standard`): every
experiment of predictor_experiments.py run on the engine (predictors.evaluate), then the summaries.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
from hwnas.core import paths

from ..engine.predictors import StaleResults, evaluate, load_target
from ..reports.predictor_report import latency_ceilings, report_evaluation, standard_summary
from ..reports.writer import write_markdown
from .predictor_experiments import SAMPLES, standard_experiments

log = logging.getLogger(__name__)

#: what the "Written by" line of every experiment's summary names
STANDARD_COMMAND = "Written by `make predictors` (`hwnas predictors standard`)."


def standard(out_root: str | os.PathLike = paths.PREDICTORS_DIR, data_dir: str | os.PathLike | None = None,
             seeds: int = 5, only: list[str] | None = None, progress: bool = True,
             report_only: bool = False) -> list[str]:
    """Every experiment of the standard comparison; returns the lines of the top-level summary.
    `report_only`: fit nothing, rewrite every summary from the rows already computed (an
    experiment with none is left out)."""
    data = paths.data_dir(data_dir)
    out_root = Path(out_root)
    results: dict[str, pd.DataFrame] = {}
    groups: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for e in standard_experiments(data):
        if only and not any(e.name.startswith(o) for o in only):
            continue
        sizes = e.train_sizes
        if e.group == "supernet":  # the sample file may hold fewer archs than 1000 + test
            from hwnas.search.spaces import create_space

            try:
                n_rows = len(load_target(create_space(e.space), e.table, None, e.mode).y)
            except (ValueError, LookupError) as exc:  # written by another pipeline for an older space
                log.warning("%s skipped: %s", e.name, exc)
                skipped[e.name] = "the sample file does not match the current space: " + str(exc).split(" (and ", 1)[0]
                continue
            sizes = tuple(s for s in sizes if s <= n_rows // 2) or (n_rows // 2,)
        if report_only and not (out_root / e.name / "rank_correlation.csv").exists():
            skipped[e.name] = "no rows computed yet"
            continue
        try:
            results[e.name] = df = evaluate(e.space, e.table, None, out_root / e.name, predictors=list(e.predictors),
                                       train_sizes=sizes, seeds=e.seeds or seeds, prior_tables=list(e.prior_tables),
                                       mode=e.mode, progress=progress, title=e.name, size_limits=dict(e.size_limits),
                                       fit=not report_only)
            report_evaluation(df, out_root / e.name, e.name, STANDARD_COMMAND)
        except StaleResults as exc:
            if not report_only:
                raise
            skipped[e.name] = "its rows were computed on other inputs; `make predictors` recomputes them"
            log.warning("%s skipped: %s", e.name, str(exc).splitlines()[0])
            continue
        groups[e.name] = e.group
    help201 = data / "help-latency/help_nasbench201_latency_ms.csv"
    devices = sorted({n.split("/", 1)[1] if "/" in n else n.split("help-nb201-", 1)[1] for n, g in groups.items()
                      if g == "help-protocol" or n.startswith("help-nb201-")})
    ceilings = latency_ceilings(help201, devices)
    lines = standard_summary(results, groups, SAMPLES if SAMPLES.exists() else None, ceilings, skipped)
    if not only:
        write_markdown(out_root / "summary.md", lines)
    return lines

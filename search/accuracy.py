"""The accuracy a search reads, built from its spec (beside search/constraints.py, which builds
the costs it is bounded by): `table:PATH:COLUMN` (a benchmark table) or `supernet:CKPT`
(subnets scored on a trained supernet). Paths go through `core.paths.expand` (`~`, `$VARS`; an
unset variable is an error naming it)."""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.core.paths import expand


def accuracy_source(space, spec: str, data: str = "fashion-mnist", estimate_store: str | os.PathLike | None = None,
                    evaluator: str = "process"):
    """'table:PATH:COLUMN' (a benchmark table) or 'supernet:CKPT' (subnets scored on a supernet;
    with `estimate_store`, a folder where runs share its estimates: search/supernet/estimate_store.py).
    `evaluator`: the executor that scores subnets ("serial" inside a search worker, which must
    not start a pool of its own)."""
    from hwnas.search.methods import FunctionAccuracy, TableAccuracy

    if spec.startswith("table:"):
        return TableAccuracy(space, spec)  # devices.table.parse_table_spec expands its path
    if spec.startswith("supernet:"):
        ckpt = Path(expand(spec[len("supernet:"):]))
        if not ckpt.exists():
            raise FileNotFoundError(f"supernet checkpoint {ckpt} does not exist; train one with "
                                    f"`hwnas supernet train --space {space.name}` (make supernet)")
        from hwnas.search.supernet import SubnetEvaluator

        scorer = SubnetEvaluator(space, ckpt, data=data, store=estimate_store, executor=evaluator)
        return FunctionAccuracy(lambda archs: scorer(archs), name=f"supernet:{ckpt.name}",
                                remote_cpu=lambda: scorer.remote_cpu_s_)
    raise ValueError(f"accuracy source {spec!r}: expected table:PATH:COLUMN or supernet:CKPT")

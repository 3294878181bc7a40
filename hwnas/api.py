"""hwnas from Python: open a space with its tables, query any metric of an arch, time a model.

The small public face of the suite (the top of the stack: it imports from every layer, nothing
imports it)::

    import hwnas.api as hw

    nb = hw.open_space("nb201", accuracy="table:$HWNAS_DATA_DIR/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc")
    nb.query(0)                                   # {'arch_idx': 0, 'arch_str': '|avg_pool_3x3~0|+...', 'accuracy': ...}
    nb.query(123, "latency_ms@table:$HWNAS_DATA_DIR/help-latency/help_nasbench201_latency_ms.csv:pixel3")
    nb.values("accuracy", range(100))             # a numpy array, one value per arch
    hw.measure("model.onnx", device="cpu:threads=1")   # a Measurement (latency, memory, energy)

An arch is given as the space's arch string, its index (spaces with an index, like NB201's
official `arch_idx`), or the space's own arch object. A metric is named by a string:

- `"accuracy"` (or any name given in `open_space(..., metrics={NAME: SPEC})`);
- `"table:PATH:COLUMN"`: a column of an architecture table (benchmark accuracy, HELP latency);
- `"METRIC_UNIT@SOURCE"`: a cost as constraints read it (`latency_ms@cpu-t1` sums the block table
  `hwnas profile` measured, `latency_ms@cpu-t1:calibrated` corrects that sum by the whole-network
  calibration, `latency_ms@table:PATH:COLUMN[:UNIT]` reads an arch table), converted to the unit
  the name asks for (`latency_s@...` gives seconds);
- `"predictor:FOLDER"`: what a predictor saved with `Predictor.save(FOLDER)` predicts.

Nothing here is a figure of its own: every value is read from the table, the predictor or the
device named, and a missing row is an error that says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.bench.engine.measure import measure_model
from hwnas.core.paths import TABLES_DIR
from hwnas.devices.measurement import Measurement
from hwnas.devices.timing import TimingConfig

__all__ = ["OpenSpace", "measure", "open_space"]


def open_space(name: str, accuracy: str | None = None, metrics: Mapping[str, str] | None = None,
               tables_dir: str | os.PathLike = TABLES_DIR) -> OpenSpace:
    """A space (`hwnas spaces` lists them) with the tables its metrics are read from.

    `accuracy`: the spec that `"accuracy"` names (e.g. `table:PATH:COLUMN`); `metrics`: more
    names for specs (`{"pixel3": "latency_ms@table:...:pixel3"}`); `tables_dir`: where device ids
    find their block tables (`<tables_dir>/<space>/<device-id>.parquet`).
    """
    from hwnas.search.spaces import create_space

    named = dict(metrics or {})
    if accuracy is not None:
        named.setdefault("accuracy", accuracy)
    return OpenSpace(create_space(name), named, Path(tables_dir))


@dataclass
class OpenSpace:
    """A search space and the sources of its metrics; `query` reads them per arch."""

    space: object
    metrics: dict[str, str] = field(default_factory=dict)
    tables_dir: Path = TABLES_DIR
    _readers: dict = field(default_factory=dict, repr=False)

    # ---- archs ------------------------------------------------------------------------------
    def arch(self, arch):
        """The space's arch object from an index, an arch string or an arch."""
        sp = self.space
        if isinstance(arch, int | np.integer) and not isinstance(arch, bool):
            if not hasattr(sp, "from_index"):
                raise ValueError(f"space {sp.name!r} has no arch index; give arch strings")
            return sp.from_index(int(arch))
        if isinstance(arch, str):
            return sp.from_str(arch)
        return sp.validate(arch)

    def arch_str(self, arch) -> str:
        return self.space.to_str(self.arch(arch))

    # ---- metrics ----------------------------------------------------------------------------
    def values(self, metric: str, archs: Iterable) -> np.ndarray:
        """`metric` of every arch in `archs` (indices, strings or arch objects), as float64."""
        resolved = [self.arch(a) for a in archs]
        return np.asarray(self._reader(metric)(resolved), dtype=np.float64)

    def query(self, arch, metrics: str | Sequence[str] | None = None) -> dict:
        """One arch's metrics as a dict: its index (where the space has one), its string and each
        metric asked (default: every named metric), like HW-NAS-Bench's `query_by_index`."""
        a = self.arch(arch)
        names = [metrics] if isinstance(metrics, str) else list(metrics) if metrics is not None else list(self.metrics)
        if not names:
            raise ValueError("no metric to read: name one (e.g. 'latency_ms@cpu-t1') or open the space with "
                             "accuracy=... / metrics={...}")
        out = {"arch_str": self.space.to_str(a)}
        if hasattr(self.space, "to_index"):
            out = {"arch_idx": int(self.space.to_index(a)), **out}
        for name in names:
            out[name] = float(self._reader(name)([a])[0])
        return out

    def query_by_index(self, index: int, metrics: str | Sequence[str] | None = None) -> dict:
        """`query` of the arch with this index (NB201: the official `arch_idx`)."""
        return self.query(int(index), metrics)

    def measure(self, arch, device: str = "cpu:threads=1", batch: int = 1, timing: TimingConfig = TimingConfig(),
                reference: bool = True) -> Measurement:
        """Build the arch's network (`space.build`) and time it end to end on `device` (see `measure`)."""
        a = self.arch(arch)
        shape = (batch, *self.space.input_shape)
        return measure(self.space.build(a), device, input_shape=shape, timing=timing, reference=reference)

    def _reader(self, metric: str):
        if metric not in self._readers:
            self._readers[metric] = self._make_reader(self.metrics.get(metric, metric), metric)
        return self._readers[metric]

    def _make_reader(self, spec: str, name: str):
        sp = self.space  # every path below goes through core.paths.expand (`~`, `$VARS`)
        if spec.startswith("predictor:"):
            from hwnas.core.paths import expand
            from hwnas.predictors.base import load_predictor

            p = load_predictor(expand(spec[len("predictor:"):]))
            return p.predict
        if spec.startswith("table:"):
            from hwnas.search.methods import TableAccuracy

            return TableAccuracy(sp, spec).peek
        if "@" in spec:
            from hwnas.search.constraints import cost_model, make_constraint

            head, _, source = spec.partition("@")
            model = cost_model(sp, make_constraint(head, source), self.tables_dir)  # no bound: the cost only
            factor = _unit_factor(head)
            return lambda archs: model.predict(archs) / factor
        known = ", ".join(self.metrics) or "none named"
        raise KeyError(f"metric {name!r}: not a named metric ({known}) nor a spec (table:PATH:COLUMN, "
                       "METRIC_UNIT@SOURCE such as latency_ms@cpu-t1, predictor:FOLDER)")


def _unit_factor(metric: str) -> float:
    """The factor from `metric`'s unit to its quantity's canonical unit (latency_s: 1000)."""
    from hwnas.devices.table import unit_of

    unit = unit_of(metric)
    return unit[1] if unit else 1.0


def measure(model, device: str = "cpu:threads=1", input_shape: Sequence[int] | Mapping | None = None,
            timing: TimingConfig = TimingConfig(), reference: bool = True) -> Measurement:
    """Time an ONNX model (a path or bytes) or a `torch.nn.Module` end to end on `device` by the
    suite's protocol (warm-up, repeats to a confidence target, interleaved with the reference
    network after calibrating it); the same as `hwnas measure`.

    `input_shape`: a module's input shape with the batch, e.g. (1, 3, 32, 32); for an ONNX model
    only where an input is dynamic ({"x": (1, 3, 224, 224)}, or one shape for a single input).
    Returns the Measurement: `latency_norm_ms` (drift compensated) beside the raw `latency_ms`,
    `peak_mem_bytes` and `energy_mj` where the device reads them (None, with its source "none",
    where it does not).
    """
    shapes = input_shape
    if input_shape is not None and not isinstance(input_shape, Mapping):
        shapes = {"": tuple(input_shape)} if not _is_module(model) else tuple(input_shape)
    return measure_model(model, device, shapes, timing, reference)


def _is_module(model) -> bool:
    return not isinstance(model, bytes | str | os.PathLike)

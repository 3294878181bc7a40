"""Hardware constraints as users write them ("latency_ms<=25@cpu-t1") and the cost models behind them.

Units live in names and are checked (a lookup table in seconds against a budget in ms is the
classic HardCoRe-NAS user bug): the metric carries its unit, every bound is converted to one
canonical unit per quantity (ms, mJ, bytes), and the table column must say its unit too, in its
own name or in its file's name (HELP's `help_nasbench201_latency_ms.csv` columns are device names).

A constraint's source is where its numbers were measured:
- `table:PATH:COLUMN` (or `table:PATH:COLUMN:UNIT`, the unit stated for a column whose names
  carry none; a stated unit the names contradict is an error): an architecture table
  (`arch_str` / `arch_idx` / `op_idx_list` rows, e.g.
  HELP's latency of every NB201 cell on a phone): exact look-up per arch;
- `table:PATH[:COLUMN]` of a block table (`hwnas profile` output): sum of the arch's blocks plus
  the fixed parts (devices/lut.py);
- a device id (`cpu-t1`): the block table `results/tables/<space>/<device-id>.parquet`;
- `cpu-t1:calibrated`: that sum corrected by the whole-network calibration `hwnas validate-lut`
  fitted on this very table (blocks timed alone overestimate whole networks): the latency a
  re-measured pick is judged by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hwnas.core import paths
from hwnas.devices.table import UNITS, unit_of

CANONICAL = {"latency": "ms", "energy": "mj", "memory": "bytes"}
_QUANTITY_WORDS = {"latency": "latency", "energy": "energy", "mem": "memory", "memory": "memory",
                   "params": "memory", "peak_mem": "memory", "param": "memory"}
_RE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|<)\s*([0-9.eE+-]+)\s*@\s*(\S+)\s*$")
TABLES_DIR = paths.TABLES_DIR


@dataclass(frozen=True)
class Constraint:
    """`metric <= bound` (bound in the quantity's canonical unit), measured on `source`."""

    metric: str
    quantity: str
    bound: float
    source: str
    strict: bool = False
    text: str = ""

    @property
    def column(self) -> str:
        return f"{self.metric.rsplit('_', 1)[0]}_{CANONICAL[self.quantity]}"

    def satisfied(self, value) -> np.ndarray | bool:
        v = np.asarray(value, dtype=np.float64)
        return v < self.bound if self.strict else v <= self.bound


def parse_constraint(text: str) -> Constraint:
    """The constraint a user wrote, `METRIC_UNIT<=NUMBER@SOURCE` (`<` for a strict bound)."""
    m = _RE.match(text.lower()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"constraint {text!r} is not METRIC_UNIT<=NUMBER@SOURCE, e.g. 'latency_ms<=25@cpu-t1'")
    metric, op, number, _ = m.groups()
    source = text.split("@", 1)[1].strip()  # keep the path's case
    _metric_unit(metric, text)
    try:
        bound = float(number)
    except ValueError:
        raise ValueError(f"constraint {text!r}: bound {number!r} is not a number") from None
    if not np.isfinite(bound):
        raise ValueError(f"constraint {text!r}: the bound must be a positive number")
    return make_constraint(metric, source, bound, strict=op == "<", text=text.strip())


def make_constraint(metric: str, source: str, bound: float = np.inf, strict: bool = False,
                    text: str | None = None) -> Constraint:
    """A constraint from values, nothing to parse: `metric` with its unit (`latency_ms`), `bound`
    in that unit (infinite, the default: no bound, only the cost is read), measured on `source`.
    `text` (how it is stated, and a search's row key) defaults to `METRIC<=BOUND@SOURCE`."""
    metric, source, bound = metric.strip().lower(), source.strip(), float(bound)
    if text is None:  # the bound as the shortest number that reads back as it (8.481, 25, 0.1)
        number = repr(bound).removesuffix(".0")
        text = f"{metric}{'<' if strict else '<='}{number}@{source}" if np.isfinite(bound) else f"{metric}@{source}"
    canonical, quantity, factor = _metric_unit(metric, text)
    if np.isnan(bound) or bound <= 0:
        raise ValueError(f"constraint {text!r}: the bound must be a positive number")
    return Constraint(metric=canonical, quantity=quantity, bound=bound * factor, source=source, strict=strict,
                      text=text)


def _metric_unit(metric: str, text: str) -> tuple[str, str, float]:
    """(the metric in its quantity's canonical unit, the quantity, the factor to that unit); a
    metric without a unit, or with a unit of another quantity than its name says, is refused."""
    unit = unit_of(metric)
    if unit is None:
        raise ValueError(f"constraint {text!r}: metric {metric!r} has no unit; write it with one of "
                         f"{', '.join('_' + u for u in UNITS)} (e.g. latency_ms)")
    quantity, factor = unit
    word = metric.rsplit("_", 1)[0]
    if _QUANTITY_WORDS.get(word, quantity) != quantity:
        raise ValueError(f"constraint {text!r}: unit _{metric.rsplit('_', 1)[1]} is not a unit of {word}")
    return f"{word}_{CANONICAL[quantity]}", quantity, factor


class CostModel:
    """Cost of archs in the constraint's canonical unit; `exact` says whether it is a measured
    value per arch (an arch table) or a sum of measured blocks (a model of the whole network)."""

    exact: bool = False
    description: str = ""
    #: the files the costs are read from (a search's provenance hashes them, so a resume never
    #: mixes runs made under a table that has since changed)
    sources: tuple[Path, ...] = ()

    def predict(self, archs) -> np.ndarray:
        raise NotImplementedError


class ArchTableCost(CostModel):
    exact = True

    def __init__(self, space, path: Path, column: str, factor: float):
        from hwnas.devices.table import import_arch_table

        t = import_arch_table(path, space, [column])  # a NaN cost is refused, never read as infeasible
        self._values = dict(zip(t["arch_str"], t[column].to_numpy(np.float64) * factor, strict=True))
        self.space, self.description = space, f"{path.name}:{column} (arch table, measured per arch)"
        self.sources = (Path(path),)

    def predict(self, archs) -> np.ndarray:
        strs = [self.space.to_str(a) for a in archs]
        out = np.array([self._values.get(s, np.nan) for s in strs], dtype=np.float64)
        missing = [s for s, v in zip(strs, out, strict=True) if np.isnan(v) and s not in self._values]
        if missing:
            raise LookupError(self._coverage_message(missing, len(strs)))
        return out

    def _coverage_message(self, missing: list[str], asked: int) -> str:
        """How much of the space the table covers and what to do about the rest: a partial table
        fails on the archs a search visits, so name the count, not only the first one."""
        size = int(self.space.size())
        covers = f"the table covers {len(self._values):,} of the {size:,} archs of {self.space.name}"
        return (f"{self.description}: {len(missing):,} of the {asked:,} archs asked have no row "
                f"(first: {missing[0][:80]!r}); {covers}. A constraint is looked up for any arch a method or "
                "the optimum visits: give a table of every arch (measure the missing ones and append them), "
                "or constrain a block table (`hwnas profile`), or fit a cost predictor on these rows "
                "(`hwnas predictors`) and give its predictions as a full table")


class BlockTableCost(CostModel):
    def __init__(self, space, path: Path, column: str, factor: float):
        from hwnas.devices.lut import BlockTable

        self.table = BlockTable.from_file(path, column)
        self.space, self.factor = space, factor
        self.description = f"{path.name}:{column} (sum of measured blocks + fixed parts)"
        self.sources = (Path(path),)

    def predict(self, archs) -> np.ndarray:
        return np.array([self.table.network_sum(self.space, a) for a in archs]) * self.factor

    def block_costs(self) -> tuple[dict[str, float], float]:
        """Block key -> cost, and the fixed parts' cost, in the canonical unit (for BINAS's solve)."""
        return ({k: v * self.factor for k, v in self.table.values.items()},
                self.table.fixed_sum(self.space) * self.factor)


class CalibratedBlockTableCost(BlockTableCost):
    """The block sum corrected by `hwnas validate-lut`'s whole-network calibration
    (a + b * sum + c_s * blocks in stage s; DESIGN.md, "Additivity"): what whole networks
    measure, where the plain sum of blocks timed alone overestimates them."""

    def __init__(self, space, path: Path, column: str, factor: float):
        from hwnas.devices.lut import calibration_path, read_calibration
        from hwnas.predictors.baselines import LUTSumPredictor

        super().__init__(space, path, column, factor)
        doc = read_calibration(path, column)
        if doc is None:
            raise FileNotFoundError(f"{path}: no whole-network calibration ({calibration_path(path, column).name}); "
                                    f"run `hwnas validate-lut --space {space.name} --device ...` first, or drop "
                                    "':calibrated'")
        self.model = LUTSumPredictor.from_calibration(space, path, doc)  # the calibrated `lut-sum`
        self.description = f"{path.name}:{column} calibrated on whole networks ({calibration_path(path, column).name})"
        self.sources = (Path(path), calibration_path(path, column))

    def predict(self, archs) -> np.ndarray:
        return self.model.predict(archs) * self.factor

    def block_costs(self) -> tuple[dict[str, float], float]:
        """The calibration is additive, so it folds into per-block costs: b * value + c_s for a
        block of stage s, and b * fixed + a. A block key shared by stages whose c_s differ has
        no single cost (a ValueError says so)."""
        from hwnas.core.capabilities import Chain

        m = self.model
        scale = m.coef_[m.columns_.index(0)]
        per_stage = {j - 1: c for j, c in zip(m.columns_, m.coef_, strict=True) if j > 0}
        stage_of: dict[str, float] = {}
        if isinstance(self.space, Chain):  # elsewhere one count of all blocks (devices.lut.stage_counts)
            for s, st in enumerate(self.space.stages):
                for b in range(st.max_depth):
                    for ch in range(len(st.choices)):
                        key, term = self.space.block_spec(s, b == 0, ch).key, per_stage.get(s, 0.0)
                        if stage_of.setdefault(key, term) != term:
                            raise ValueError(f"{self.description}: block {key!r} sits in stages with different "
                                             "calibration terms, so it has no single cost; constrain the plain "
                                             "table sum (drop ':calibrated')")
        vals = {k: (scale * v + stage_of.get(k, per_stage.get(0, 0.0))) * self.factor
                for k, v in self.table.values.items()}
        return vals, (scale * self.table.fixed_sum(self.space) + m.intercept_) * self.factor


CALIBRATED = ":calibrated"


def cost_model(space, constraint: Constraint, tables_dir: str | Path = TABLES_DIR) -> CostModel:
    """The cost model that answers `constraint` for `space`; every unit mismatch is an error."""
    from hwnas.devices.table import parse_table_spec_unit, read_table_file

    src = constraint.source
    stated = None
    if src.startswith("table:"):
        try:
            path_s, column, stated = parse_table_spec_unit(src)
        except ValueError as exc:
            raise ValueError(f"constraint {constraint.text!r}: {exc}") from None
        path = Path(path_s)
    else:
        device = src.removesuffix(CALIBRATED)
        path, column = Path(tables_dir) / space.name / f"{device}.parquet", None
        if not path.exists():
            raise FileNotFoundError(f"constraint {constraint.text!r}: no table for device {src!r} at {path}; "
                                    f"run `make profile DEVICE=... SPACE={space.name}` or give table:PATH:COLUMN")
    if not path.exists():
        raise FileNotFoundError(f"constraint {constraint.text!r}: table {path} does not exist")
    df = read_table_file(path)
    if "block_key" in df.columns:
        if column is None:
            column = next((c for c in (f"{constraint.metric.rsplit('_', 1)[0]}_norm_ms", constraint.column)
                           if c in df.columns), constraint.column)
        factor = _factor(constraint, column, path, stated)
        if src.endswith(CALIBRATED):
            return CalibratedBlockTableCost(space, path, column, factor)
        return BlockTableCost(space, path, column, factor)
    if column is None:
        raise ValueError(f"constraint {constraint.text!r}: {path} is an architecture table; name the column "
                         "as table:PATH:COLUMN")
    if column not in df.columns:
        raise LookupError(f"constraint {constraint.text!r}: {path} has no column {column!r}")
    return ArchTableCost(space, path, column, _factor(constraint, column, path, stated))


def _factor(constraint: Constraint, column: str, path: Path, stated: str | None = None) -> float:
    """Factor from the column's unit (stated as table:PATH:COLUMN:UNIT, else its name, else its
    file's name) to the canonical unit; a stated unit that the names contradict was refused
    when the spec was read (devices.table.parse_table_spec_unit)."""
    unit = (UNITS[stated] if stated else unit_of(column.replace("_norm_", "_")) or _imported_unit(path)
            or unit_of(path.stem))
    if unit is None:
        raise ValueError(f"{path}:{column}: cannot tell the unit of this column; state it as "
                         f"table:{path}:{column}:UNIT (UNIT one of {', '.join(UNITS)}), or name the column "
                         f"or the file with a unit suffix (e.g. latency_ms)")
    quantity, factor = unit
    if quantity != constraint.quantity:
        raise ValueError(f"constraint {constraint.text!r} bounds {constraint.quantity} but {path.name}:{column} "
                         f"holds {quantity}")
    return factor


def _imported_unit(path: Path) -> tuple[str, float] | None:
    """The unit `hwnas tables import --unit` recorded in the table's sidecar, if one of UNITS."""
    from hwnas.devices.table import read_sidecar

    stated = read_sidecar(path).get("unit")
    return UNITS.get(str(stated).lower()) if stated else None


@dataclass
class BoundConstraint:
    """A constraint with the cost model that answers it."""

    constraint: Constraint
    cost: CostModel

    def values(self, archs) -> np.ndarray:
        return self.cost.predict(archs)

    def feasible(self, archs) -> np.ndarray:
        return np.asarray(self.constraint.satisfied(self.values(archs)), dtype=bool)


def resolve(space, texts, tables_dir: str | Path = TABLES_DIR) -> list[BoundConstraint]:
    """Parse and bind every constraint text (or Constraint) for `space`."""
    out = []
    for t in texts:
        c = t if isinstance(t, Constraint) else parse_constraint(t)
        out.append(BoundConstraint(c, cost_model(space, c, tables_dir)))
    return out

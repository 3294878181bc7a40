"""`table:PATH:COLUMN`: a device measured by others, read-only.

The table is either a block table (a `block_key` column, as `hwnas profile` writes) or an
architecture table (`arch_str` / `arch_idx`, e.g. HELP's latency of NB201 cells on phones).
It answers look-ups; asking it to measure is a clear error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import Device, safe_id
from .table import TableError, import_arch_table, parse_table_spec, read_sidecar, read_table_file


class TableDevice(Device):
    measures = False

    def __init__(self, spec: str):
        path, column = parse_table_spec(spec)
        if column is None:
            raise ValueError(f"device {spec!r}: give the metric column, as table:PATH:COLUMN")
        self.spec = spec if spec.startswith("table:") else f"table:{spec}"
        self.path = Path(path)
        self.column = column
        self.device_id = safe_id(f"table-{self.path.stem}-{column}")
        df = read_table_file(self.path)
        if column not in df.columns:
            raise TableError(f"{self.path}: no column {column!r}; available: {', '.join(map(str, df.columns[:12]))}")
        self._df = df

    def info(self) -> dict:
        d = {"device": self.spec, "device_id": self.device_id, "source_table": str(self.path),
             "column": self.column, "measured_by": "others (read-only)"}
        meta = read_sidecar(self.path)
        if meta:
            d["source_meta"] = meta
        return d

    def lookup_blocks(self, keys: list[str]) -> pd.Series:
        """Values by block key; a key the table lacks is a clear error naming it."""
        if "block_key" not in self._df.columns:
            raise TableError(f"{self.path}: not a block table (no 'block_key' column)")
        s = self._df.drop_duplicates("block_key", keep="last").set_index("block_key")[self.column]
        missing = [k for k in keys if k not in s.index]
        if missing:
            raise LookupError(f"{self.path}: no row for block {missing[0]!r} ({len(missing)} missing); profile it first")
        return s.loc[keys]

    def lookup_archs(self, space, archs) -> list[float]:
        """Values by architecture, through devices/table.py's validating import."""
        t = import_arch_table(self.path, space, [self.column]).set_index("arch_str")[self.column]
        out = []
        for a in archs:
            s = space.to_str(a)
            if s not in t.index:
                raise LookupError(f"{self.path}: no row for architecture {s[:80]!r}")
            out.append(float(t.loc[s]))
        return out

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg=None, ref_onnx=None, ref_latency_ms=None):
        raise ValueError(f"device {self.spec!r} is a table measured by others and cannot measure; "
                         "use it for look-ups, or pick a measuring device (hwnas profile --device cpu)")

"""A resumable, append-only measurement table.

Rows are appended in chunks: each chunk is one Parquet part file written atomically (temp file,
fsync, rename) in `.<stem>.parts/` beside the table, so `kill -9` loses at most the rows not yet
flushed and never leaves half a file. `finalize()` merges the table and its parts (deduplicated
by key, the newest wins), writes the table atomically with its CSV mirror, then removes the
parts. Resuming reads both, so a kill between those two steps duplicates nothing.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from devices.table import TableError, atomic_write_bytes, read_table_file, write_sidecar

LIST_COLUMNS = ("samples_ms", "extra_ratios")  # kept in Parquet, left out of the CSV mirror


class RowStore:
    def __init__(self, path: str | os.PathLike, key: Sequence[str] = ("block_key",), chunk: int = 8):
        self.path = Path(path)
        self.key = list(key)
        self.chunk = max(1, int(chunk))
        self.parts_dir = self.path.with_name(f".{self.path.stem}.parts")
        self._pending: list[dict] = []
        self._seq = 0

    # ---- reading ------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists() or (self.parts_dir.is_dir() and any(self.parts_dir.glob("part-*.parquet")))

    def _parts(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part-*.parquet")) if self.parts_dir.is_dir() else []

    def load(self) -> pd.DataFrame:
        """Table plus flushed parts, deduplicated; a corrupt file is a TableError (nothing is
        overwritten: the caller stops before writing)."""
        frames = []
        if self.path.exists():
            frames.append(read_table_file(self.path))
        for p in self._parts():
            frames.append(read_table_file(p))
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        missing = [k for k in self.key if k not in df.columns]
        if missing:
            raise TableError(f"{self.path}: not a profile table (no {', '.join(missing)} column); "
                             "move it away or choose another --out-dir")
        return df.drop_duplicates(self.key, keep="last").reset_index(drop=True)

    def done_keys(self) -> set[tuple]:
        df = self.load()
        if df.empty:
            return set()
        return set(map(tuple, df[self.key].astype(str).to_numpy().tolist()))

    # ---- writing ------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail before measuring anything when the output folder cannot be written."""
        d = self.path.parent
        try:
            d.mkdir(parents=True, exist_ok=True)
            # a unique probe: parallel devices check the same folder from threads of one process
            with tempfile.NamedTemporaryFile(dir=d, prefix=".probe-"):
                pass
        except OSError as exc:
            raise OSError(f"cannot write to {d} ({exc.strerror or exc}); choose a writable --out-dir") from None

    def append(self, row: dict) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        existing = self._parts()
        if self._seq == 0 and existing:
            self._seq = max(int(p.stem.split("-")[1]) for p in existing)
        self._seq += 1
        buf = io.BytesIO()
        pd.DataFrame(self._pending).to_parquet(buf, index=False)
        atomic_write_bytes(self.parts_dir / f"part-{self._seq:06d}-{os.getpid()}.parquet", buf.getvalue())
        self._pending = []

    def finalize(self, meta: dict | None = None, sort_by: Sequence[str] | None = None) -> pd.DataFrame:
        """Merge parts into the table (atomic), write CSV mirror and sidecar, drop the parts."""
        self.flush()
        df = self.load()
        if sort_by and not df.empty:
            df = df.sort_values(list(sort_by), kind="stable").reset_index(drop=True)
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(self.path, buf.getvalue())
        csv = df.drop(columns=[c for c in df.columns if c in LIST_COLUMNS or c.endswith("_list")])
        atomic_write_bytes(self.path.with_suffix(".csv"), csv.to_csv(index=False).encode())
        if meta is not None:
            write_sidecar(self.path, {**meta, "rows": len(df)})
        for p in self._parts():
            p.unlink(missing_ok=True)
        try:
            self.parts_dir.rmdir()
        except OSError:
            pass
        return df

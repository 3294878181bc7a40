"""A shared, persistent store of a supernet's subnet estimates.

A leaderboard's query methods read the same supernet for many (method, bound, seed) runs and
ask for many of the same subnets; each estimate (BN recalibration + the whole val split) costs
seconds of CPU. The estimate is a deterministic function of the checkpoint's bytes and the
evaluation settings, so the store keys on a digest of both plus the arch string, and every
process that scores the same supernet the same way shares it (SQLite: concurrent writers are
serialised by its own file lock).

Each entry keeps the CPU seconds the estimate cost when it was made, and a run that reads it
from the store is charged those seconds: search costs do not depend on which run asked first.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from hwnas.core.io import file_sha256


def evaluation_key(checkpoint: str | Path, **settings) -> str:
    """Digest of the checkpoint's content and the settings that decide an estimate."""
    body = json.dumps({"checkpoint_sha256": file_sha256(checkpoint), **settings}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class EstimateStore:
    """arch_str -> (val_acc %, CPU seconds it cost) for one evaluation key, in `folder`."""

    def __init__(self, folder: str | Path, key: str):
        self.path = Path(folder) / f"{key[:16]}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS estimate (key TEXT, arch_str TEXT, val_acc REAL, cpu_s REAL, "
                       "PRIMARY KEY (key, arch_str))")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per call (a store is used from many processes); commits on success."""
        with closing(sqlite3.connect(self.path, timeout=120)) as db, db:
            yield db

    def get(self, arch_strs: list[str]) -> dict[str, tuple[float, float]]:
        """The stored (val_acc, cpu_s) of those of `arch_strs` that are in the store."""
        out: dict[str, tuple[float, float]] = {}
        with self._connect() as db:
            for i in range(0, len(arch_strs), 500):  # SQLite's bound-parameter limit
                part = arch_strs[i:i + 500]
                q = f"SELECT arch_str, val_acc, cpu_s FROM estimate WHERE key = ? AND arch_str IN ({','.join('?' * len(part))})"
                out.update({s: (a, c) for s, a, c in db.execute(q, [self.key, *part])})
        return out

    def put(self, entries: dict[str, tuple[float, float]]) -> None:
        """Add (val_acc, cpu_s) per arch; an arch already stored keeps its first entry."""
        with self._connect() as db:
            db.executemany("INSERT OR IGNORE INTO estimate VALUES (?, ?, ?, ?)",
                           [(self.key, s, float(a), float(c)) for s, (a, c) in entries.items()])

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM estimate WHERE key = ?", [self.key]).fetchone()[0]

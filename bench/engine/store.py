"""A resumable, append-only measurement table.

Rows are appended in chunks: each chunk is one Parquet part file written atomically (temp file,
fsync, rename) in `.<stem>.parts/` beside the table, so `kill -9` loses at most the rows not yet
flushed and never leaves half a file. `finalize()` merges the table and its parts (deduplicated
by key, the newest wins), writes the table atomically with its CSV mirror, then removes the
parts. Resuming reads both, so a kill between those two steps duplicates nothing.

One writer per table: `check_writable()` also takes the table's exclusive lock (core/lock.py),
held until `finalize()` (or the process ends); a second run on the same table stops at once with
one line naming the holder, instead of measuring every block under the first one's load.
"""

from __future__ import annotations

import io
import os
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from hwnas.core import lock
from hwnas.core.io import atomic_write_bytes, file_sha256
from hwnas.core.paths import resolve
from hwnas.devices.table import TableError, read_table_file, write_sidecar

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
        """Fail before measuring anything when the output folder cannot be written, or when
        another process is writing this table (its lock is taken here, released by finalize)."""
        d = self.path.parent
        self.lock()  # creates the folder (and removes it again, if left empty, when released)
        try:
            # a unique probe: parallel devices check the same folder from threads of one process
            with tempfile.NamedTemporaryFile(dir=d, prefix=".probe-"):
                pass
        except OSError as exc:
            self.unlock()
            raise OSError(f"cannot write to {d} ({exc.strerror or exc}); choose a writable --out-dir") from None

    def lock(self) -> None:
        if not getattr(self, "_locked", False):
            lock.acquire(self.path, "--out-dir", is_dir=False)
            self._locked = True
            self._unlock_at_gc = weakref.finalize(self, lock.release, self.path, False)

    def unlock(self) -> None:
        if getattr(self, "_locked", False):
            self._locked = False
            self._unlock_at_gc.detach()
            lock.release(self.path, is_dir=False)

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
        self.unlock()
        return df


# ---- helpers the pipelines that write whole-folder results share ------------------------------
def locked_output(param: str = "out", what: str = "--out"):
    """Decorator: hold the exclusive lock of the folder passed as `param` for the whole call, so
    a second run into the same folder stops at once with one line (core/lock.py)."""
    import functools
    import inspect

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            target = sig.bind_partial(*args, **kwargs).arguments.get(param)
            if target is None:
                return fn(*args, **kwargs)
            with lock.output_lock(target, what, is_dir=True):
                return fn(*args, **kwargs)

        return wrapper

    return deco


def read_csv_rows(path: str | os.PathLike, key: Sequence[str], what: str = "results table",
                  fix: str = "move it away, choose another --out or pass --fresh") -> pd.DataFrame:
    """Read a CSV this suite wrote, to resume from it. A binary or foreign file is one line naming
    it; a truncated last line (no final newline) and rows with an empty key are dropped, so those
    rows run again."""
    import logging

    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a text CSV {what} (binary or another encoding); {fix}") from None
    if "\0" in text:
        raise ValueError(f"{p}: not a text CSV {what} (binary data); {fix}")
    dropped = 0
    if text and not text.endswith("\n"):  # every row the suite writes ends with a newline
        text = text[: text.rfind("\n") + 1]
        dropped += 1
    if not text.strip():
        return pd.DataFrame(columns=list(key))
    try:
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p}: not a readable CSV {what} ({first}); {fix}") from None
    missing = [k for k in key if k not in df.columns]
    if missing:
        raise ValueError(f"{p}: not a {what} written by hwnas (no column(s) {', '.join(missing)}); {fix}")
    bad = df[list(key)].isna().any(axis=1)
    dropped += int(bad.sum())
    df = df[~bad].reset_index(drop=True)
    if dropped:
        logging.getLogger("hwnas").warning("%s: dropped %d incomplete row(s) (a truncated write); they run again",
                                           p, dropped)
    return df


def read_json_file(path: str | os.PathLike, what: str = "settings file",
                   fix: str = "move it away, choose another --out or pass --fresh"):
    """A JSON file this suite wrote; binary, truncated or foreign content is one line naming it."""
    import json

    p = Path(path)
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        kind = "binary or another encoding" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
        raise ValueError(f"{p}: not a {what} written by hwnas ({kind}); {fix}") from None


def backup(path: str | os.PathLike) -> Path | None:
    """Rename an existing output to `<stem>.replaced-<time><suffix>` (what --fresh keeps)."""
    import time

    p = Path(path)
    if not p.exists():
        return None
    dest = p.with_name(f"{p.stem}.replaced-{time.strftime('%Y%m%dT%H%M%S')}{p.suffix}")
    n = 1
    while dest.exists():
        dest = p.with_name(f"{p.stem}.replaced-{time.strftime('%Y%m%dT%H%M%S')}-{n}{p.suffix}")
        n += 1
    os.replace(p, dest)
    return dest


def source_digest(spec: str) -> str | None:
    """Content hash of the file behind an accuracy/cost spec (table:PATH:COL[:UNIT],
    supernet:CKPT, PATH), read after `$VARS` and `~` are expanded (core.paths.expand): the file
    hashed is the file read. None when the spec names no file (nothing to hash)."""
    from hwnas.devices.table import parse_table_spec

    kind, sep, body = spec.partition(":")
    if sep and kind == "table":
        cands = [parse_table_spec(spec)[0]]
    elif sep and kind == "supernet":
        cands = [body]
    else:
        cands = [spec, spec.rsplit(":", 1)[0]]
    for cand in cands:
        if cand and resolve(cand).is_file():
            return file_sha256(resolve(cand))
    return None


def check_provenance(sidecar: str | os.PathLike, facts: dict, resume: bool = True,
                     name: str | os.PathLike | None = None) -> None:
    """Resume only what was made from the same sources and settings.

    `facts` (content hashes of inputs, seeds, settings) are stored in `sidecar`; a resume whose
    facts differ refuses with one line naming the first difference. A fact only one side has is
    no difference (results made before a fact was recorded, or a run over another constraint
    into the same folder): the sidecar keeps the union. Without `resume` the caller has backed
    the old outputs up; the new facts are written.
    """
    import json

    p = Path(sidecar)
    norm = json.loads(json.dumps(facts, sort_keys=True, default=str))
    if resume and p.exists():
        doc = read_json_file(p, "provenance file")
        old = doc.get("provenance", doc) if isinstance(doc, dict) else doc
        if not isinstance(old, dict):
            raise ValueError(f"{p}: not a provenance file written by hwnas (it holds {type(old).__name__} JSON, "
                             "not an object); move it away or pass --fresh (the old files are kept as *.replaced-*)")
        diff = [k for k in sorted(set(old) & set(norm)) if old[k] != norm[k]]
        if diff:
            k = diff[0]
            raise ValueError(f"{name or p.parent}: cannot resume, its results were made with {k}={_short(old.get(k))} "
                             f"but this run has {k}={_short(norm.get(k))}; pass --fresh (the old files are "
                             "kept as *.replaced-*) or choose another --out")
        if set(norm) - set(old):
            norm = {**old, **norm}
        else:
            return
    atomic_write_bytes(p, (json.dumps({"provenance": norm}, indent=2, sort_keys=True) + "\n").encode())


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _key_of(row: dict, key: Sequence[str]) -> tuple:
    return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in (row[k] for k in key))


def resume_runs(out: str | os.PathLike, key: Sequence[str], resume: bool, facts: dict,
                runs_name: str = "runs.csv", traj_name: str = "trajectories.parquet",
                adopt: bool = False) -> tuple[list, list]:
    """(runs, trajectory rows) to continue from in `out`, checked against `facts` (provenance).

    Rows without a provenance file (deleted, or made before there was one) cannot be checked:
    they are refused unless `adopt` says to take them as made from `facts`.

    Without `resume` the old files are backed up (`*.replaced-*`) and nothing is kept. A run row
    without its curve (a kill between the two writes of an older version) and curve rows without
    their run (a kill after the curve was written) are dropped: those runs run again, so after a
    resume every run has exactly one curve.
    """
    out = Path(out)
    runs_csv, traj_path, side = out / runs_name, out / traj_name, out / "provenance.json"
    if not resume:
        for p in (runs_csv, traj_path, side):
            backup(p)
    if not resume or not runs_csv.exists():
        check_provenance(side, facts, resume)
        return [], []
    runs = read_csv_rows(runs_csv, key, "runs table").to_dict("records")
    if runs and not side.exists() and not adopt:
        raise ValueError(f"{out}: holds {len(runs)} run(s) in {runs_name} but no provenance.json, so what they were "
                         "made from cannot be checked; pass --fresh to start over (the old files are kept as "
                         "*.replaced-*) or --adopt to take them as made from this run's tables and settings")
    check_provenance(side, facts, resume)
    traj: list[dict] = []
    if traj_path.exists():
        try:
            tdf = pd.read_parquet(traj_path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise ValueError(f"{traj_path}: not a readable trajectories file ({type(exc).__name__}); "
                             "move it away or pass --fresh") from None
        if not tdf.empty and not set(key) <= set(tdf.columns):
            raise ValueError(f"{traj_path}: not a trajectories file written by hwnas (no "
                             f"{', '.join(k for k in key if k not in tdf.columns)}); move it away or pass --fresh")
        traj = tdf.to_dict("records")
    with_curve = {_key_of(t, key) for t in traj}
    kept = [r for r in runs if _key_of(r, key) in with_curve]
    done = {_key_of(r, key) for r in kept}
    traj = [t for t in traj if _key_of(t, key) in done]
    if len(kept) < len(runs):
        import logging

        logging.getLogger("hwnas").warning("%s: %d run(s) had no trajectory; they run again",
                                           runs_csv, len(runs) - len(kept))
    return kept, traj

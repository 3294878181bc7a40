"""Atomic writes: a reader (or a killed run) never sees half a file.

Every writer of tables, sidecars, reports, figures and checkpoints goes through these: the bytes
go to a temp file in the same folder, are fsynced, and the temp file is renamed over the target.

A killed writer leaves its temp file (`.<name>.<host>-<pid>-<random>.tmp`, named after its
writer); the next write of the same target sweeps those of its own pattern whose writer is dead
(same host) or that are a day old, and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

#: a temp file older than this is a killed writer's, whatever its pid says (pids are reused)
STALE_TEMP_S = 24 * 3600
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"

_UMASK = os.umask(0o022)  # read once at import (umask is process-wide; threads must not race on it)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.{_HOST}-{os.getpid()}-", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; tables are for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sweep_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files killed writers of `path` left: only names of the writer's pattern,
    only when the writer (a pid on this host) is dead or the file is STALE_TEMP_S old."""
    p = Path(path)
    pattern = re.compile(rf"^\.{re.escape(p.name)}\.([0-9a-f]{{8}})-(\d+)-[A-Za-z0-9_]+\.tmp$")
    gone = []
    try:
        entries = list(os.scandir(p.parent))
    except OSError:
        return gone
    now = time.time()
    for e in entries:
        m = pattern.match(e.name)
        if not m or not e.is_file(follow_symlinks=False):
            continue
        host, pid = m.group(1), int(m.group(2))
        try:
            old = now - e.stat(follow_symlinks=False).st_mtime > STALE_TEMP_S
        except OSError:
            continue
        if old or host == _HOST and pid != os.getpid() and not pid_alive(pid):
            try:
                os.unlink(e.path)
                gone.append(Path(e.path))
            except OSError:
                pass
    return gone


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has this pid; unknown (no permission, any other error) counts
    as alive, so nothing of a possibly running process is swept or taken over."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (provenance of tables and sources)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: str | os.PathLike, fix: str, error: type[Exception] = ValueError) -> Any:
    """The JSON document at `path`; a corrupt one is one line naming the file and `fix`."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path}: corrupt JSON ({exc}); {fix}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, doc: Any, **dumps_kw: Any) -> None:
    """Indented JSON plus a final newline (`dumps_kw` go to `json.dumps`, e.g. sort_keys)."""
    dumps_kw.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(doc, **dumps_kw) + "\n")


def atomic_save_figure(fig, path: str | os.PathLike, **savefig_kw: Any) -> None:
    """Render a matplotlib figure to PNG (or the format `savefig_kw` names) and write it atomically."""
    import io

    buf = io.BytesIO()
    savefig_kw.setdefault("format", Path(path).suffix.lstrip(".") or "png")
    fig.savefig(buf, **savefig_kw)
    atomic_write_bytes(path, buf.getvalue())

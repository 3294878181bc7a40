"""One writer per output: an exclusive lock file beside the folder or table a command writes.

`with output_lock(path): ...` creates `<folder>/.hwnas.lock` (for a folder) or `.<name>.lock`
beside a file, takes an exclusive `flock` on it and writes the owner's pid, host, start time and
command line into it. A second writer (another process) stops at once with one line naming the
holder. A lock left by a killed run is stale: the kernel drops a dead process's `flock`, so the
next run takes it over (and the pid in the file, no longer alive, is reported as stale in the
log). Taking the lock also proves the output folder is writable before any work starts.

Within one process the lock is re-entrant per path (a pipeline that locks a folder may call a
helper that locks the same folder).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".hwnas.lock"


class LockedError(OSError):
    """Another live process holds the output's lock."""


_held: dict[str, list] = {}  # lock path -> [fd, depth] held by this process
_guard = threading.Lock()


def lock_path_for(path: str | os.PathLike, is_dir: bool | None = None) -> Path:
    p = Path(path)
    if is_dir is None:
        is_dir = p.is_dir() or not p.suffix
    if is_dir:
        return p / LOCK_NAME
    return p.with_name(f".{p.name}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_owner(lock_file: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(lock_file).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _describe(owner: dict) -> str:
    if not owner:
        return "another process"
    cmd = owner.get("command", "")
    since = owner.get("started")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, int | float) else "?"
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')} (since {when}: {cmd[:120]})"


def acquire(path: str | os.PathLike, what: str = "output", is_dir: bool | None = None) -> Path:
    """Take the lock of `path` (a folder or a file) or raise LockedError / OSError in one line."""
    import fcntl

    lf = lock_path_for(path, is_dir)
    key = str(lf.resolve()) if lf.parent.exists() else str(lf.absolute())
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return lf
        for _ in range(20):
            try:
                lf.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lf, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OSError(f"cannot write to {lf.parent} ({exc.strerror or exc}); choose a writable "
                              f"{what} location") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    owner = read_owner(lf)
                    raise LockedError(f"{path} is being written by {_describe(owner)}; wait for it to finish "
                                      f"or stop it, or choose another {what} (lock file {lf})") from None
                raise
            # the holder we waited on may have removed the file between our open and flock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lf))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise LockedError(f"{path}: could not take the lock file {lf} (it keeps changing); retry")
        old = read_owner(lf)
        if old.get("pid") and old.get("pid") != os.getpid():
            log.info("%s: took over a stale lock of %s (no longer running)", lf, _describe(old))
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                 "command": " ".join(sys.argv)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise OSError(f"cannot write to {lf.parent} ({exc.strerror or exc}); choose a writable "
                          f"{what} location") from None
        _held[key] = [fd, 1]
        return lf


def release(path: str | os.PathLike, is_dir: bool | None = None) -> None:
    lf = lock_path_for(path, is_dir)
    key = str(lf.resolve()) if lf.parent.exists() else str(lf.absolute())
    with _guard:
        ent = _held.get(key)
        if ent is None:
            return
        ent[1] -= 1
        if ent[1] > 0:
            return
        del _held[key]
        fd = ent[0]
        # empty the file first: a reader racing us sees no owner rather than a stale one
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            lf.unlink()
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str = "output", is_dir: bool | None = None):
    """Hold the exclusive lock of `path` for the block (`is_dir`: whether `path` is a folder;
    guessed from the name when None)."""
    acquire(path, what, is_dir)
    try:
        yield
    finally:
        release(path, is_dir)


def is_stale(lock_file: str | os.PathLike) -> bool:
    """True when the lock file names a process (on this host) that is no longer running."""
    owner = read_owner(lock_file)
    pid = owner.get("pid")
    return bool(pid) and owner.get("host") == socket.gethostname() and not _pid_alive(int(pid))

"""One writer per output: an exclusive lock file beside the folder or table a command writes.

`with output_lock(path): ...` creates `<folder>/.hwnas.lock` (for a folder) or `.<name>.lock`
beside a file, takes an exclusive `flock` on it and writes the owner's pid, host, start time and
command line into it. A second writer (another process) stops at once with one line naming the
holder. A lock left by a killed run is stale: the kernel drops a dead process's `flock`, so the
next run takes it over (and the pid in the file, no longer alive, is reported as stale in the
log). Taking the lock also proves the output folder is writable before any work starts.

Within one thread the lock is re-entrant per path (a pipeline that locks a folder may call a
helper that locks the same folder); another thread of the same process is refused like another
process (two parallel profiles of one device would otherwise measure one table twice at once).

The lock file is only ever opened without following links (`O_NOFOLLOW`) and must be a plain
file with one name that holds a lock record (or nothing): a planted symlink or hard link, or any
other file under the lock's name, is refused with one line and left as it is. Release removes
the name only while it still is the file this process locked, and the folders that taking the
lock created when they are left empty (a refused run leaves no empty output folder behind).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path

from .io import pid_alive

log = logging.getLogger(__name__)

LOCK_NAME = ".hwnas.lock"


class LockedError(OSError):
    """Another live process holds the output's lock."""


class NotALockError(OSError):
    """A file under the lock's name that hwnas did not make (a link, a user's file): left alone."""


_held: dict[str, list] = {}  # lock path -> [fd, depth, owning thread, folders it created]
#: a lock record is a short JSON line; a bigger file under the lock's name is not one
MAX_LOCK_BYTES = 4096
_guard = threading.Lock()


def lock_path_for(path: str | os.PathLike, is_dir: bool | None = None) -> Path:
    p = Path(path)
    if is_dir is None:
        is_dir = p.is_dir() or not p.suffix
    if is_dir:
        return p / LOCK_NAME
    return p.with_name(f".{p.name}.lock")


def read_owner(lock_file: str | os.PathLike) -> dict:
    """The owner record in a lock file ({} when empty, unreadable, a link or not a record)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        return _owner_of(fd)
    finally:
        os.close(fd)


def _owner_of(fd: int) -> dict:
    try:
        doc = json.loads(os.pread(fd, MAX_LOCK_BYTES, 0).decode("utf-8") or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_lock_record(fd: int) -> bool:
    """Empty, or one JSON object with a pid: what `acquire` writes (and `release` empties)."""
    try:
        raw = os.pread(fd, MAX_LOCK_BYTES + 1, 0)
    except OSError:
        return False
    if not raw.strip():
        return True
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return len(raw) <= MAX_LOCK_BYTES and isinstance(doc, dict) and "pid" in doc


def _open_lock_file(lf: Path, what: str) -> int:
    """An fd of the lock file, created here or an earlier lock of ours; never through a link,
    never a file that is not a lock record (OSError in one line, the file left untouched)."""
    refuse = (f"{lf} exists but is not a lock file hwnas made ({{why}}); it was left untouched: "
              f"remove it, or choose another {what}")
    try:
        return os.open(lf, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        pass
    try:
        fd = os.open(lf, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(lf):
            raise NotALockError(refuse.format(why="a symbolic link")) from None
        raise
    st = os.fstat(fd)
    why = ("not a regular file" if not stat.S_ISREG(st.st_mode)
           else f"it has {st.st_nlink} hard links" if st.st_nlink != 1
           else None if _is_lock_record(fd) else "its content is not a lock record")
    if why:
        os.close(fd)
        raise NotALockError(refuse.format(why=why))
    return fd


def _describe(owner: dict) -> str:
    if not owner:
        return "another process"
    cmd = owner.get("command", "")
    since = owner.get("started")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, int | float) else "?"
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')} (since {when}: {cmd[:120]})"


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    out = []
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _key(lf: Path) -> str:
    """The lock's identity: its real folder and its own name (the name itself is never resolved,
    so a link planted under it cannot make it another file's lock)."""
    return str((lf.parent.resolve() if lf.parent.exists() else lf.parent.absolute()) / lf.name)


def acquire(path: str | os.PathLike, what: str = "output", is_dir: bool | None = None) -> Path:
    """Take the lock of `path` (a folder or a file) or raise LockedError / OSError in one line."""
    import fcntl

    lf = lock_path_for(path, is_dir)
    key = _key(lf)
    with _guard:
        if key in _held:
            if _held[key][2] != threading.get_ident():
                raise LockedError(f"{path} is already being written by another thread of this process "
                                  f"(pid {os.getpid()}); give each {what} once")
            _held[key][1] += 1
            return lf
        created = _missing_folders(lf.parent)
        for _ in range(20):
            try:
                lf.parent.mkdir(parents=True, exist_ok=True)
                fd = _open_lock_file(lf, what)
            except NotALockError:
                raise
            except FileNotFoundError:  # a holder removed it between our two opens: take it anew
                continue
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
                same = os.path.samestat(os.fstat(fd), os.lstat(lf))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise LockedError(f"{path}: could not take the lock file {lf} (it keeps changing); retry")
        old = _owner_of(fd)
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
        _held[key] = [fd, 1, threading.get_ident(), created]
        return lf


def release(path: str | os.PathLike, is_dir: bool | None = None) -> None:
    lf = lock_path_for(path, is_dir)
    key = _key(lf)
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
        with contextlib.suppress(OSError):  # remove the name only while it is still our file
            if os.path.samestat(os.fstat(fd), os.lstat(lf)):
                lf.unlink()
        os.close(fd)
        for d in ent[3]:  # deepest first; a folder with anything in it stays
            try:
                d.rmdir()
            except OSError:
                break


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
    return bool(pid) and owner.get("host") == socket.gethostname() and not pid_alive(int(pid))

"""The agent's settings: the shared token and the limits it serves under (AgentConfig)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BODY_MB = 64
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_HEADER_TIMEOUT_S = 10.0  # a request's head (line + headers) must arrive within this
DEFAULT_MAX_CONNECTIONS = 64  # open connections at once; more are answered 503 and closed
DEFAULT_MAX_READERS = 4  # bodies being received at once (each up to max_body_bytes)
MIN_TOKEN_CHARS = 16


class TokenError(ValueError):
    """The agent's token file is missing, empty or too short."""


def load_token(path: str | os.PathLike, *, warn=None) -> str:
    """Read the shared token; refuse a missing/empty/short one, warn when others can read it."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise TokenError(
            f"token file {p} does not exist; create one with `python -c \"import secrets; "
            f"print(secrets.token_urlsafe(32))\" > {p} && chmod 600 {p}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read token file {p}: {exc}") from None
    if not text:
        raise TokenError(f"token file {p} is empty; put a random token of at least {MIN_TOKEN_CHARS} characters in it")
    if len(text) < MIN_TOKEN_CHARS or any(c.isspace() for c in text) or not text.isascii():
        raise TokenError(
            f"token in {p} must be one line of at least {MIN_TOKEN_CHARS} printable ASCII characters "
            "without spaces; `python -c \"import secrets; print(secrets.token_urlsafe(32))\"` makes one"
        )
    mode = p.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO) and warn is not None:
        warn(f"warning: token file {p} is readable by other users (mode {stat.filemode(mode)}); "
             f"run `chmod 600 {p}`")
    return text


@dataclass
class AgentConfig:
    token: str
    providers: tuple[str, ...] = ("cpu",)
    threads: int | None = None  # None: the client may ask; else pinned
    max_body_bytes: int = DEFAULT_MAX_BODY_MB << 20
    max_seconds: float = DEFAULT_MAX_SECONDS  # cap on TimingConfig.max_s and warmup_s
    hard_timeout_s: float | None = None  # default: 2 x max_seconds + 30 (session creation, warm-up)
    workdir: Path | None = None  # default: a fresh folder under the system temporary folder
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S  # the whole body must arrive within this
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S  # each request's head, and idle keep-alive
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # also capped by the open-file limit (serve)
    max_memory_bytes: int | None = -1  # RLIMIT_AS of the worker; -1: 80% of RAM (none with GPU providers), None/0: no cap
    max_readers: int = DEFAULT_MAX_READERS
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        from ..ort import PROVIDERS

        unknown = [p for p in self.providers if p not in PROVIDERS]
        if not self.providers or unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown) or '(none given)'}; expected some of {', '.join(PROVIDERS)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"body limit must be at least 1 KiB, got {self.max_body_bytes} bytes")
        if not self.max_seconds > 0:
            raise ValueError(f"max seconds must be > 0, got {self.max_seconds}")
        if self.hard_timeout_s is None:
            self.hard_timeout_s = 2 * self.max_seconds + 30.0
        if not self.hard_timeout_s > 0:
            raise ValueError(f"hard timeout must be > 0 s, got {self.hard_timeout_s}")
        if not self.body_timeout_s > 0:
            raise ValueError(f"body timeout must be > 0 s, got {self.body_timeout_s}")
        if not self.header_timeout_s > 0:
            raise ValueError(f"header timeout must be > 0 s, got {self.header_timeout_s} (--header-timeout-s)")
        if type(self.max_connections) is not int or self.max_connections < 2:
            raise ValueError(f"connection limit must be an integer >= 2, got {self.max_connections!r} (--max-connections)")
        gpu = [p for p in self.providers if p != "cpu"]
        if gpu and self.max_memory_bytes not in (-1, 0, None):
            raise ValueError(f"--max-memory-mb caps the worker's address space (RLIMIT_AS), under which CUDA cannot "
                             f"start (it reserves address space beyond the RAM): drop it to serve {', '.join(gpu)}, "
                             "or serve --providers cpu alone")
        if self.max_memory_bytes == -1:  # no cap by default where a GPU provider is served (above)
            self.max_memory_bytes = None if gpu else default_memory_cap()
        if self.max_memory_bytes is not None and self.max_memory_bytes != 0 and self.max_memory_bytes < 256 << 20:
            raise ValueError(f"memory cap must be at least 256 MiB (or 0 for none), got {self.max_memory_bytes >> 20} MiB")
        self.max_memory_bytes = self.max_memory_bytes or None


def board_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_memory_cap() -> int | None:
    """80% of the board's RAM (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)
    except (ValueError, OSError, AttributeError):
        return None

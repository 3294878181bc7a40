"""The remote measurement agent: a small HTTP server an edge or mobile board runs so a host can
time ONNX models on it (client: devices/remote.py).

Light on purpose: it imports only devices.ort / devices.timing / devices.measurement (numpy,
scipy, onnxruntime) and starlette + uvicorn, never torch or pandas, so it installs on a
Raspberry Pi, a phone (Termux) or a Jetson. Run it as `hwnas agent ...` or, without the rest of
the package, `python -m devices.agent --port 8765 --token-file ~/.hwnas-token`.

Wire format (version 1)
-----------------------
- `GET /health` -> `{"ok": true, "version": 1}`. No token: it reveals nothing.
- `GET /info` -> processor, machine, OS, Python / onnxruntime / numpy versions, providers
  (available and allowed), threads, limits.
- `POST /measure`: the body is the raw ONNX model; with a reference network the body is the model
  followed by the reference model and `model_bytes` says where the first ends. The settings ride
  in the `X-Hwnas-Meta` header as one JSON object:
  `{"input_shapes": {"x": [1, 3, 32, 32]}, "timing": {TimingConfig fields}, "provider": "cpu",
  "threads": 2, "model_bytes": N, "ref_latency_ms": 0.8}` (every key optional).
  Answer: `Measurement.to_dict()` as JSON; `extra` says which limits the agent applied.
Every request but /health carries `Authorization: Bearer <token>`.

Status codes (errors are `{"error": "one line naming the problem and the fix"}`):
400 bad model / shapes / settings; 401 missing or wrong token (checked before anything else
runs); 404 / 405 unknown path or method; 411 no body; 413 body over the limit (checked from
Content-Length before reading, then while streaming); 503 + Retry-After: another measurement is
running (one at a time: concurrent timing corrupts figures); 504 the measurement ran past the
hard limit (the worker was killed and restarted); 408 the body did not arrive within the
body-read timeout (`--body-timeout-s`); 507 the model needed more memory than the worker's cap
(`--max-memory-mb`, an RLIMIT_AS on the worker process); 500 only when the worker process died
otherwise (for example killed by the kernel); it is restarted for the next request.

The body is read (bounded by `--max-body-mb` and the body timeout) before the one-at-a-time
lock is taken, so a client that stalls mid-body holds nothing but its own request. `threads` is
capped by the board's cores (a larger ask is a 400).

Safety: measurements run in a separate worker process whose working and temporary folder is the
agent's own temporary folder; nothing takes a path from the client; onnxruntime gets bytes, not
files. The server stays responsive while a measurement runs and can kill a runaway one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import ipaddress
import json
import os
import platform
import select
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
META_HEADER = "x-hwnas-meta"
DEFAULT_MAX_BODY_MB = 64
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_READERS = 4  # bodies being received at once (each up to max_body_bytes)
MIN_TOKEN_CHARS = 16
MAX_RUN_COUNT = 100_000
MAX_INPUT_ELEMENTS = 1 << 26  # 64 Mi elements (256 MiB of float32) per request, all inputs together
_FRAME = struct.Struct(">Q")


class TokenError(ValueError):
    """The agent's token file is missing, empty or too short."""


# ---- token ----------------------------------------------------------------------------------
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


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- configuration --------------------------------------------------------------------------
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
    max_memory_bytes: int | None = -1  # RLIMIT_AS of the worker; -1: 80% of RAM, None/0: no cap
    max_readers: int = DEFAULT_MAX_READERS
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        from .ort import PROVIDERS

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
        if self.max_memory_bytes == -1:
            self.max_memory_bytes = default_memory_cap()
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


_OOM_WORDS = ("failed to allocate", "bad_alloc", "out of memory", "cannot allocate memory", "std::bad_alloc")


class RequestError(Exception):
    """An HTTP error answer: status, one-line message, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# ---- the worker process -----------------------------------------------------------------------
def _write_frame(fh, data: bytes) -> None:
    fh.write(_FRAME.pack(len(data)))
    fh.write(data)


def _read_exact(fh, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = fh.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _read_frame(fh) -> bytes:
    (n,) = _FRAME.unpack(_read_exact(fh, _FRAME.size))
    return _read_exact(fh, n)


def worker_main() -> None:
    """Loop of the measuring child: read a job, measure, answer. Runs in the agent's folder.

    The protocol uses a private copy of stdout; fd 1 itself goes to stderr so that anything a
    runtime prints cannot corrupt the frames.
    """
    cap = os.environ.get("HWNAS_AGENT_MAX_AS")
    if cap:  # RLIMIT_AS: an allocation past it fails (-> 507) instead of growing the board into swap
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    from .ort import ProviderUnavailable, measure_onnx
    from .timing import TimingConfig

    _write_frame(out, json.dumps({"ready": True}).encode())
    while True:
        try:
            job = json.loads(_read_frame(inp))
            model = _read_frame(inp)
            ref = _read_frame(inp) or None
        except EOFError:
            return
        try:
            m = measure_onnx(model, job["input_shapes"], TimingConfig(**job["timing"]),
                             provider=job["provider"], threads=job["threads"], ref_onnx=ref,
                             ref_latency_ms=job["ref_latency_ms"], device=job["device"])
            reply = {"ok": True, "measurement": m.to_dict()}
        except (ValueError, KeyError, ProviderUnavailable) as exc:
            msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            reply = {"ok": False, "status": 400, "error": msg or type(exc).__name__}
        except MemoryError:
            reply = {"ok": False, "status": 507, "error": "the model or its inputs do not fit in the agent's memory cap"}
        except Exception as exc:  # noqa: BLE001 - onnxruntime runtime failures on a given model
            text = str(exc)
            if any(w in text.lower() for w in _OOM_WORDS):
                reply = {"ok": False, "status": 507,
                         "error": "the model needs more memory than the agent's cap allows (--max-memory-mb); "
                                  "send a smaller model or inputs"}
            else:
                reply = {"ok": False, "status": 400,
                         "error": f"onnxruntime failed on this model: {type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"}
        _write_frame(out, json.dumps(reply).encode())


class Worker:
    """A long-lived measuring child process, killed and restarted when it overruns.

    Threads can't be stopped, so a runaway model would hold the board forever; a process can.
    It is started with `python -c` (not multiprocessing's spawn, which would re-import the
    `hwnas` entry point and its heavy imports) in the agent's folder, with TMPDIR pointing there.
    """

    def __init__(self, workdir: Path, max_memory_bytes: int | None = None):
        self.workdir = workdir
        self.max_memory_bytes = max_memory_bytes
        self.proc: subprocess.Popen | None = None
        self.ready = False

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(TMPDIR=str(self.workdir), TEMP=str(self.workdir), TMP=str(self.workdir),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        env.setdefault("ORT_DISABLE_TELEMETRY", "1")
        env.pop("HWNAS_AGENT_MAX_AS", None)
        if self.max_memory_bytes:
            env["HWNAS_AGENT_MAX_AS"] = str(int(self.max_memory_bytes))  # the child caps itself first thing
        return env

    def start(self) -> None:
        """Spawn the child; it announces itself once its imports are done (see `_ensure_ready`),
        so the server starts listening meanwhile."""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from hwnas.devices.agent import worker_main; worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self.workdir, env=self._env(),
        )
        self.ready = False

    def _ensure_ready(self, timeout_s: float = 120.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        if not self.ready:
            try:
                reply = self._reply(time.monotonic() + timeout_s)
            except (TimeoutError, EOFError):
                self.stop()
                raise ChildProcessError("the measurement worker did not start") from None
            if not reply.get("ready"):
                raise ChildProcessError(f"measurement worker did not start: {reply}")
            self.ready = True

    def _reply(self, deadline: float) -> dict:
        """Read one frame before `deadline`, or raise TimeoutError / EOFError."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()

        def read(n: int) -> bytes:
            buf = bytearray()
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if ready:
                    chunk = os.read(fd, n - len(buf))
                    if not chunk:
                        raise EOFError
                    buf += chunk
            return bytes(buf)

        (n,) = _FRAME.unpack(read(_FRAME.size))
        return json.loads(read(n))

    def run(self, job: dict, model: bytes, ref: bytes | None, timeout_s: float) -> dict:
        self._ensure_ready()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            for data in (json.dumps(job).encode(), model, ref or b""):
                _write_frame(self.proc.stdin, data)
            self.proc.stdin.flush()
            return self._reply(time.monotonic() + timeout_s)
        except TimeoutError:
            self.stop()
            raise
        except (EOFError, BrokenPipeError, OSError):
            code = self.proc.poll() if self.proc else None
            self.stop()
            raise ChildProcessError(f"exit code {code}") from None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for fh in (self.proc.stdin, self.proc.stdout):
                try:
                    if fh:
                        fh.close()
                except OSError:
                    pass
            self.proc = None


# ---- describing the board ---------------------------------------------------------------------
def _processor() -> str:
    """The processor model: /proc/cpuinfo (x86 `model name`, ARM `Hardware` / `Model`), else platform."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        found = {}
        for line in text.splitlines():
            key, _, val = line.partition(":")
            key, val = key.strip().lower(), val.strip()
            if val and key in ("model name", "hardware", "model", "cpu model") and key not in found:
                found[key] = val
        for key in ("model name", "cpu model", "hardware", "model"):
            if key in found:
                return found[key]
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def board_info(cfg: AgentConfig) -> dict[str, Any]:
    import numpy
    import onnxruntime

    from .ort import PROVIDERS

    try:
        from importlib.metadata import version

        hwnas_version = version("hwnas")
    except Exception:  # noqa: BLE001 - the agent may run from copied modules, not an installed package
        hwnas_version = "unknown"
    available = list(onnxruntime.get_available_providers())
    return {
        "protocol": PROTOCOL_VERSION,
        "hostname": socket.gethostname(),
        "processor": _processor(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "hwnas": hwnas_version,
        "providers": list(cfg.providers),
        "providers_available": [k for k, v in PROVIDERS.items() if v in available],
        "ort_providers": available,
        "threads": cfg.threads,
        "cpu_count": os.cpu_count(),
        "max_body_bytes": cfg.max_body_bytes,
        "max_seconds": cfg.max_seconds,
        "hard_timeout_s": cfg.hard_timeout_s,
        "body_timeout_s": cfg.body_timeout_s,
        "max_memory_bytes": cfg.max_memory_bytes,
        "cores": board_cores(),
    }


# ---- request parsing ------------------------------------------------------------------------
def parse_meta(raw: str | None, body_len: int, cfg: AgentConfig) -> tuple[dict, list[str]]:
    """Validate the X-Hwnas-Meta header into a worker job; returns (job, notes on applied caps)."""
    from .timing import TimingConfig

    if raw is None or not raw.strip():
        meta: Any = {}
    else:
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            raise RequestError(400, f"{META_HEADER} header is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise RequestError(400, f"{META_HEADER} header must be a JSON object")
    allowed = {"input_shapes", "timing", "provider", "threads", "model_bytes", "ref_latency_ms"}
    unknown = set(meta) - allowed
    if unknown:
        raise RequestError(400, f"unknown setting(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")

    shapes = meta.get("input_shapes") or {}
    if not isinstance(shapes, dict):
        raise RequestError(400, "input_shapes must be an object {input name: [dims]}")
    total = 0
    for name, dims in shapes.items():
        if not (isinstance(dims, list) and dims and all(type(d) is int for d in dims)):
            raise RequestError(400, f"input_shapes[{name!r}] must be a non-empty list of integers, got {dims!r}")
        if any(d <= 0 for d in dims):
            raise RequestError(400, f"input {name!r} shape {dims} has a non-positive dimension")
        n = 1
        for d in dims:
            n *= d
        total += n
    if total > MAX_INPUT_ELEMENTS:
        raise RequestError(400, f"inputs have {total} elements; the agent allows at most {MAX_INPUT_ELEMENTS}")

    timing = meta.get("timing") or {}
    if not isinstance(timing, dict):
        raise RequestError(400, "timing must be an object of TimingConfig fields")
    names = {f.name: f.type for f in fields(TimingConfig)}
    bad = set(timing) - set(names)
    if bad:
        raise RequestError(400, f"unknown timing setting(s) {', '.join(sorted(bad))}; allowed: {', '.join(names)}")
    for k, v in timing.items():
        if type(v) not in (int, float) or v != v or v in (float("inf"), float("-inf")):
            raise RequestError(400, f"timing.{k} must be a finite number, got {v!r}")
    notes = []
    for k in ("max_s", "warmup_s"):
        if timing.get(k, getattr(TimingConfig, k)) > cfg.max_seconds:
            notes.append(f"{k} capped at {cfg.max_seconds:g} s")
            timing[k] = cfg.max_seconds
    try:
        tc = TimingConfig(**timing)
    except (TypeError, ValueError) as exc:
        raise RequestError(400, f"bad timing settings: {exc}") from None
    for k in ("warmup_runs", "min_runs", "max_runs", "round_runs"):
        if type(getattr(tc, k)) is not int:
            raise RequestError(400, f"timing.{k} must be an integer")
    # run counts that would outlast any time cap (the protocol stops only after them)
    for k in ("warmup_runs", "min_runs", "round_runs"):
        if getattr(tc, k) > MAX_RUN_COUNT:
            raise RequestError(400, f"timing.{k}={getattr(tc, k)} is over the agent's limit of {MAX_RUN_COUNT}")

    provider = meta.get("provider", cfg.providers[0])
    if provider not in cfg.providers:
        raise RequestError(400, f"provider {provider!r} is not served by this agent (it serves {', '.join(cfg.providers)}); start it with --providers")
    threads = meta.get("threads")
    if threads is not None and (type(threads) is not int or threads < 1):
        raise RequestError(400, f"threads must be a positive integer, got {threads!r}")
    if threads is not None and threads > board_cores():
        raise RequestError(400, f"threads={threads} is more than this board's {board_cores()} core(s); ask for at most {board_cores()}")
    if cfg.threads is not None:
        if threads is not None and threads != cfg.threads:
            raise RequestError(400, f"this agent is pinned to {cfg.threads} thread(s) (--threads); asked for {threads}")
        threads = cfg.threads

    model_bytes = meta.get("model_bytes", body_len)
    if type(model_bytes) is not int or not 0 < model_bytes <= body_len:
        raise RequestError(400, f"model_bytes must be an integer in 1..{body_len} (the body length), got {model_bytes!r}")
    ref_latency = meta.get("ref_latency_ms")
    if ref_latency is not None and (type(ref_latency) not in (int, float) or not 0 < ref_latency < float("inf")):
        raise RequestError(400, f"ref_latency_ms must be a positive number, got {ref_latency!r}")
    if ref_latency is not None and model_bytes == body_len:
        raise RequestError(400, "ref_latency_ms given but no reference model in the body (set model_bytes)")
    job = {"input_shapes": shapes, "timing": tc.to_dict(), "provider": provider, "threads": threads,
           "ref_latency_ms": ref_latency, "model_bytes": model_bytes,
           "device": f"{provider}@{socket.gethostname()}"}
    return job, notes


# ---- the application ------------------------------------------------------------------------
class Agent:
    """State of one agent: configuration, its folder, the worker, the one-at-a-time lock."""

    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        self._own_dir = cfg.workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="hwnas-agent-")) if cfg.workdir is None else Path(cfg.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.worker = Worker(self.workdir, cfg.max_memory_bytes)
        self.lock = threading.Lock()
        self.readers = 0  # bodies being received now (bounded by cfg.max_readers)
        self.busy_since: float | None = None
        self.measured = 0  # requests that reached the worker (tests check 401s never do)
        self._token = cfg.token.encode()

    def close(self) -> None:
        self.worker.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def check_token(self, headers) -> None:
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        # latin-1 round-trips whatever bytes the header carried; compare_digest is constant-time.
        ok = hmac.compare_digest(given.strip().encode("latin-1", "replace"), self._token)
        if scheme.lower() != "bearer" or not ok:
            raise RequestError(401, "missing or wrong token: send `Authorization: Bearer <token>` with the agent's token",
                               {"WWW-Authenticate": "Bearer"})

    def retry_after(self) -> str:
        running = time.monotonic() - self.busy_since if self.busy_since else 0.0
        return str(max(1, int(min(self.cfg.max_seconds, max(1.0, self.cfg.max_seconds - running)))))

    async def read_body(self, request) -> bytes:
        limit = self.cfg.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise RequestError(400, "Content-Length is not an integer") from None
            if n > limit:
                raise RequestError(413, f"body of {n} bytes is over the agent's limit of {limit} bytes; restart the agent with a larger --max-body-mb")
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                raise RequestError(413, f"body is over the agent's limit of {limit} bytes; restart the agent with a larger --max-body-mb")
        if not buf:
            raise RequestError(411, "empty body: send the ONNX model as the request body")
        return bytes(buf)

    def run_job(self, job: dict, body: bytes) -> dict:
        model, ref = body[: job["model_bytes"]], body[job["model_bytes"]:] or None
        self.measured += 1
        try:
            return self.worker.run(job, model, ref, self.cfg.hard_timeout_s)
        except TimeoutError:
            raise RequestError(504, f"measurement ran past the agent's hard limit of {self.cfg.hard_timeout_s:g} s and was stopped; "
                               f"lower timing.max_s / warm-up or the model size, or restart the agent with a larger --max-seconds") from None
        except ChildProcessError as exc:
            if self.cfg.max_memory_bytes:
                raise RequestError(507, f"the measurement worker died ({exc}), most likely over the agent's memory cap of "
                                   f"{self.cfg.max_memory_bytes >> 20} MiB (--max-memory-mb); send a smaller model or inputs") from None
            raise RequestError(500, f"the measurement worker died ({exc}; out of memory?); it restarts for the next request") from None


def create_app(cfg: AgentConfig, agent: Agent | None = None):
    """The starlette application serving `cfg` (also usable in-process for tests)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    agent = agent or Agent(cfg)

    def error(exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    async def health(request):
        return JSONResponse({"ok": True, "version": PROTOCOL_VERSION})

    async def info(request):
        try:
            agent.check_token(request.headers)
        except RequestError as exc:
            return error(exc)
        data = await run_in_threadpool(board_info, cfg)
        data.update(busy=agent.lock.locked(), measured=agent.measured)
        return JSONResponse(data)

    async def measure(request):
        # token, then the whole body (bounded in size, time and readers at once), then the settings;
        # only then the one-at-a-time lock: a client stalling mid-body blocks no one else
        try:
            agent.check_token(request.headers)
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > cfg.max_body_bytes:
                await agent.read_body(request)  # raises 413 from the header alone
            if agent.readers >= cfg.max_readers:
                raise RequestError(503, f"the agent is receiving {agent.readers} other models; retry later",
                                   {"Retry-After": "1"})
            agent.readers += 1
            try:
                body = await asyncio.wait_for(agent.read_body(request), cfg.body_timeout_s)
            except asyncio.TimeoutError:
                raise RequestError(408, f"the body did not arrive within the agent's {cfg.body_timeout_s:g} s "
                                   "(--body-timeout-s); send it at once") from None
            finally:
                agent.readers -= 1
            job, notes = parse_meta(request.headers.get(META_HEADER), len(body), cfg)
            if not agent.lock.acquire(blocking=False):
                raise RequestError(503, "the agent is measuring another model (one at a time); retry later",
                                   {"Retry-After": agent.retry_after()})
        except RequestError as exc:
            return error(exc)
        agent.busy_since = time.monotonic()
        try:
            reply = await run_in_threadpool(agent.run_job, job, body)
            if not reply.get("ok"):
                raise RequestError(int(reply.get("status", 400)), str(reply.get("error")))
            m = reply["measurement"]
            m["extra"].update(agent_notes=notes, agent_host=socket.gethostname(),
                              agent_protocol=PROTOCOL_VERSION)
            return JSONResponse(m)
        except RequestError as exc:
            return error(exc)
        finally:
            agent.busy_since = None
            agent.lock.release()

    async def not_found(request, exc):
        return JSONResponse({"error": f"no such endpoint {request.method} {request.url.path}; endpoints: GET /health, GET /info, POST /measure"},
                            status_code=getattr(exc, "status_code", 404))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        agent.close()

    app = Starlette(
        routes=[Route("/health", health, methods=["GET"]), Route("/info", info, methods=["GET"]),
                Route("/measure", measure, methods=["POST"])],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /measure/ is a 404, not a redirect the client must follow
    app.state.agent = agent
    return app


def serve(cfg: AgentConfig, host: str = "127.0.0.1", port: int = 8765, log=None) -> None:
    """Run the agent until interrupted. Says where it listens (through `log`, by default the
    package logger at INFO) and warns off loopback."""
    if log is None:
        import logging

        log = logging.getLogger(__name__).info
    sys.dont_write_bytecode = True
    agent = Agent(cfg)
    # Everything this process and its worker write goes to the agent's folder; onnxruntime's
    # telemetry (on by default in official builds) would otherwise write $TMPDIR/.ses and upload.
    saved = {k: os.environ.get(k) for k in ("TMPDIR", "TEMP", "TMP", "ORT_DISABLE_TELEMETRY")}
    saved_tempdir = tempfile.tempdir
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    for var in ("TMPDIR", "TEMP", "TMP"):
        os.environ[var] = str(agent.workdir)
    tempfile.tempdir = str(agent.workdir)
    try:
        import onnxruntime
        import uvicorn

        from .ort import PROVIDERS

        have = onnxruntime.get_available_providers()
        missing = [p for p in cfg.providers if PROVIDERS[p] not in have]
        if missing:
            raise OSError(f"provider(s) {', '.join(missing)} not in this onnxruntime build (have {', '.join(have)}); "
                          "install onnxruntime-gpu (Jetson: the Jetson Zoo wheel) or drop them from --providers")
        app = create_app(cfg, agent)
        if not _is_loopback(host):
            log(f"warning: binding to {host}: any machine that can reach this port can use the agent with the token; "
                "prefer the default 127.0.0.1 and an SSH tunnel (ssh -N -L PORT:127.0.0.1:PORT user@board)")
        log(f"hwnas agent listening on http://{host}:{port} (providers {', '.join(cfg.providers)}, threads "
            f"{cfg.threads or 'as asked'}, body limit {cfg.max_body_bytes >> 20} MiB, max {cfg.max_seconds:g} s "
            f"per measurement, folder {agent.workdir})")
        agent.worker.start()
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=30,
                    h11_max_incomplete_event_size=64 * 1024)
    finally:
        agent.close()
        tempfile.tempdir = saved_tempdir
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devices.agent", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; use an SSH tunnel)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token-file", default=os.environ.get("HWNAS_AGENT_TOKEN_FILE"),
                   help="file holding the shared token (or HWNAS_AGENT_TOKEN_FILE)")
    p.add_argument("--providers", default="cpu", help="comma-separated: cpu,cuda,trt")
    p.add_argument("--threads", type=int, default=None, help="pin onnxruntime intra-op threads")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB)
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help="cap on one measurement's timing (the hard limit is 2x this + 30 s)")
    p.add_argument("--hard-timeout-s", type=float, default=None,
                   help="stop a request after this long (default 2 x --max-seconds + 30)")
    p.add_argument("--body-timeout-s", type=float, default=DEFAULT_BODY_TIMEOUT_S,
                   help="the whole request body must arrive within this (408 otherwise)")
    p.add_argument("--max-memory-mb", type=float, default=None,
                   help="address-space cap of the measuring worker (RLIMIT_AS; default 80%% of RAM, 0 = none); over it: 507")
    return p


def config_from_args(token_file, providers: str, threads, max_body_mb: float, max_seconds: float,
                     hard_timeout_s: float | None = None, body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
                     max_memory_mb: float | None = None) -> AgentConfig:
    if not token_file:
        raise TokenError("no token file: pass --token-file FILE (or set HWNAS_AGENT_TOKEN_FILE)")
    token = load_token(token_file, warn=lambda m: print(m, file=sys.stderr))
    return AgentConfig(token=token, providers=tuple(p.strip() for p in providers.split(",") if p.strip()),
                       threads=threads, max_body_bytes=int(max_body_mb * (1 << 20)), max_seconds=max_seconds,
                       hard_timeout_s=hard_timeout_s, body_timeout_s=body_timeout_s,
                       max_memory_bytes=-1 if max_memory_mb is None else int(max_memory_mb * (1 << 20)))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args.token_file, args.providers, args.threads, args.max_body_mb, args.max_seconds,
                               args.hard_timeout_s, args.body_timeout_s, args.max_memory_mb)
        serve(cfg, args.host, args.port, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (ValueError, OSError) as exc:
        print(f"hwnas agent: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

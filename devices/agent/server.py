"""The agent's HTTP server: the starlette application, its state (one measurement at a time, a
worker process) and `serve`, which runs it under uvicorn with a deadline on each request's head
and a cap on open connections.

Safety: measurements run in a separate worker process whose working and temporary folder is the
agent's own temporary folder; nothing takes a path from the client; onnxruntime gets bytes, not
files. The server stays responsive while a measurement runs and can kill a runaway one. A client
that opens connections and sends its request slowly, or not at all, holds each one at most
`header_timeout_s`, and never more than `max_connections` of them (capped by the open-file limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .config import AgentConfig, board_cores
from .protocol import ENDPOINTS, META_HEADER, PROTOCOL_VERSION, RequestError, parse_meta
from .worker import Worker


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

    from ..ort import PROVIDERS

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
        "header_timeout_s": cfg.header_timeout_s,
        "max_connections": connection_limit(cfg),
        "max_memory_bytes": cfg.max_memory_bytes,
        "cores": board_cores(),
    }


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- the application ------------------------------------------------------------------------
class Agent:
    """State of one agent: configuration, its folder, the worker, the one-at-a-time lock."""

    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        self._own_dir = cfg.workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="hwnas-agent-")) if cfg.workdir is None else Path(cfg.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.worker = Worker(self.workdir, cfg.max_memory_bytes, owns_dir=self._own_dir)
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
        return JSONResponse({"error": f"no such endpoint {request.method} {request.url.path}; endpoints: {ENDPOINTS}"},
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


# ---- connections: a deadline on each request's head, a cap on how many ---------------------------
def connection_limit(cfg: AgentConfig) -> int:
    """`cfg.max_connections`, but never more than half the process's open-file limit: the agent
    needs descriptors of its own (worker pipes, libraries, the listening socket)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return cfg.max_connections
    if soft == resource.RLIM_INFINITY:
        return cfg.max_connections
    return max(2, min(cfg.max_connections, soft // 2))


def _raw_answer(status: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra}connection: close\r\n\r\n").encode() + body


def guarded_h11_protocol(cfg: AgentConfig):
    """uvicorn's h11 protocol with what uvicorn lacks: a deadline for each request's head
    (uvicorn's keep-alive timer starts only after a first answer and any byte received stops it,
    so a client sending a partial head byte by byte held its connection for ever) and a cap on
    open connections enforced when they open (uvicorn's limit_concurrency answers only once a
    whole head arrived, by which time the descriptors are gone)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    head_timeout_s, limit = cfg.header_timeout_s, connection_limit(cfg)
    too_slow = _raw_answer("408 Request Timeout", f"the request line and headers did not arrive within the agent's "
                           f"{head_timeout_s:g} s (--header-timeout-s); send the whole request at once")
    too_many = _raw_answer("503 Service Unavailable", f"the agent already holds {limit} connections "
                           "(--max-connections); retry later", "retry-after: 1\r\n")

    class GuardedH11Protocol(H11Protocol):
        _refused = False
        _head_timer: asyncio.TimerHandle | None = None
        _head_cycle: object = None  # the request cycle current when the timer was armed
        _head_bytes = False  # some of the next request has arrived

        def connection_made(self, transport) -> None:
            if len(self.connections) >= limit:
                self._refused = True
                transport.write(too_many)
                transport.close()
                return
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            if not self._refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._head_timer is not None:
                self._head_bytes = True
            super().data_received(data)
            if self._head_timer is not None and self.cycle is not self._head_cycle:
                self._disarm()  # a whole head arrived: the application bounds the rest

        def on_response_complete(self) -> None:
            self._arm()  # before uvicorn handles a pipelined request, which then disarms
            super().on_response_complete()
            if self.transport.is_closing() or self.cycle is not self._head_cycle:
                self._disarm()

        def _arm(self) -> None:
            self._disarm()
            self._head_cycle, self._head_bytes = self.cycle, False
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self._head_bytes:  # a started request gets an answer; an idle keep-alive just ends
                self.transport.write(too_slow)
            self.transport.close()

    return GuardedH11Protocol


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

        from ..ort import PROVIDERS

        have = onnxruntime.get_available_providers()
        missing = [p for p in cfg.providers if PROVIDERS[p] not in have]
        if missing:
            raise OSError(f"provider(s) {', '.join(missing)} not in this onnxruntime build (have {', '.join(have)}); "
                          "install onnxruntime-gpu in place of onnxruntime (`pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu`; "
                          "Jetson: the Jetson Zoo wheel) or drop them from --providers")
        from ..ort_build import BuildError, check_gpu_provider

        for p in cfg.providers:  # a GPU provider the build lists but cannot load: one line now, not per request
            if p != "cpu":
                try:
                    check_gpu_provider(PROVIDERS[p])
                except BuildError as exc:
                    raise OSError(f"--providers {p}: {exc}") from None
        app = create_app(cfg, agent)
        if not _is_loopback(host):
            log(f"warning: binding to {host}: any machine that can reach this port can use the agent with the token; "
                "prefer the default 127.0.0.1 and an SSH tunnel (ssh -N -L PORT:127.0.0.1:PORT user@board)")
        log(f"hwnas agent listening on http://{host}:{port} (providers {', '.join(cfg.providers)}, threads "
            f"{cfg.threads or 'as asked'}, body limit {cfg.max_body_bytes >> 20} MiB, max {cfg.max_seconds:g} s "
            f"per measurement, at most {connection_limit(cfg)} connections, folder {agent.workdir})")
        agent.worker.start()
        uvicorn.run(app, host=host, port=port, log_level="warning", http=guarded_h11_protocol(cfg),
                    timeout_keep_alive=cfg.header_timeout_s, h11_max_incomplete_event_size=64 * 1024)
    finally:
        agent.close()
        tempfile.tempdir = saved_tempdir
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v



"""The agent's measuring worker: a child process that times one model at a time, and the
parent-side handle that starts, feeds, times out and restarts it.

Agent and worker talk over the child's stdin/stdout in length-prefixed frames (8-byte big-endian
length, then the bytes): a job is three frames (the JSON settings, the model, the reference model
or empty), an answer one JSON frame.

The worker lives no longer than its agent, however the agent ends (kill -9 included): on Linux it
asks the kernel for a signal when its parent dies (prctl PR_SET_PDEATHSIG), and everywhere a
watchdog thread checks its parent's pid; either way it removes the agent's temporary folder when
the agent made it, and exits.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

_FRAME = struct.Struct(">Q")
_OOM_WORDS = ("failed to allocate", "bad_alloc", "out of memory", "cannot allocate memory", "std::bad_alloc")
PARENT_ENV = "HWNAS_AGENT_PARENT_PID"  # the agent's pid: the worker exits when it is gone
OWNED_DIR_ENV = "HWNAS_AGENT_OWNED_DIR"  # the agent's own temporary folder: removed by an orphan
MAX_AS_ENV = "HWNAS_AGENT_MAX_AS"  # RLIMIT_AS of the worker, bytes
WATCHDOG_PERIOD_S = 0.5
PR_SET_PDEATHSIG = 1
# the parent-death signal: its own signal, so that a plain SIGTERM keeps its default meaning
LIFELINE_SIGNAL = getattr(signal, "SIGUSR2", None)


# ---- frames ------------------------------------------------------------------------------------
def write_frame(fh, data: bytes) -> None:
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


def read_frame(fh) -> bytes:
    (n,) = _FRAME.unpack(_read_exact(fh, _FRAME.size))
    return _read_exact(fh, n)


# ---- the child's life: tied to the agent's ------------------------------------------------------
class _Lifeline:
    """Ends the worker when its agent is gone: pdeath signal (Linux) + parent-pid watchdog."""

    def __init__(self, parent_pid: int, owned_dir: str | None):
        self.parent_pid, self.owned_dir = parent_pid, owned_dir
        self._lock = threading.RLock()

    def orphaned(self) -> bool:
        return os.getppid() != self.parent_pid

    def die(self) -> None:
        """Remove the agent's folder (the agent can no longer) and exit at once."""
        with self._lock:  # the signal handler and the watchdog may both get here
            if self.owned_dir:
                shutil.rmtree(self.owned_dir, ignore_errors=True)
            os._exit(0)

    def hold(self) -> None:
        if self.orphaned():  # the agent died before we got here
            self.die()
        if LIFELINE_SIGNAL is not None:
            signal.signal(LIFELINE_SIGNAL, self._on_signal)
            _set_pdeathsig(LIFELINE_SIGNAL)
        if self.orphaned():  # ... or between the check and prctl
            self.die()
        threading.Thread(target=self._watch, name="hwnas-agent-lifeline", daemon=True).start()

    def _on_signal(self, signum, frame) -> None:
        # PR_SET_PDEATHSIG also fires when the agent *thread* that started us exits (a thread-pool
        # thread restarting the worker): the agent lives on then, and so do we.
        if self.orphaned():
            self.die()

    def _watch(self) -> None:
        while not self.orphaned():
            time.sleep(WATCHDOG_PERIOD_S)
        self.die()


def _set_pdeathsig(sig: int) -> bool:
    """Ask Linux to send `sig` when the parent dies; False where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# ---- the child -----------------------------------------------------------------------------------
def worker_main() -> None:
    """Loop of the measuring child: read a job, measure, answer. Runs in the agent's folder.

    The protocol uses a private copy of stdout; fd 1 itself goes to stderr so that anything a
    runtime prints cannot corrupt the frames.
    """
    parent = os.environ.get(PARENT_ENV)
    if parent:
        _Lifeline(int(parent), os.environ.get(OWNED_DIR_ENV) or None).hold()
    cap = os.environ.get(MAX_AS_ENV)
    if cap:  # RLIMIT_AS: an allocation past it fails (-> 507) instead of growing the board into swap
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    from ..ort import ProviderUnavailable, measure_onnx, provider_options
    from ..timing import TimingConfig

    options: dict[str, dict] = {}  # provider -> its timing options (GPU ones name the GPU's engine cache)

    write_frame(out, json.dumps({"ready": True}).encode())
    while True:
        try:
            job = json.loads(read_frame(inp))
            model = read_frame(inp)
            ref = read_frame(inp) or None
        except EOFError:
            return
        try:
            if job["provider"] not in options:
                options[job["provider"]] = provider_options(job["provider"])
            m = measure_onnx(model, job["input_shapes"], TimingConfig(**job["timing"]),
                             provider=job["provider"], threads=job["threads"], ref_onnx=ref,
                             ref_latency_ms=job["ref_latency_ms"], device=job["device"],
                             provider_options=options[job["provider"]])
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
        write_frame(out, json.dumps(reply).encode())


# ---- the parent's handle ---------------------------------------------------------------------------
def _import_root() -> str:
    """The folder holding this package's top-level package (hwnas, or devices when the agent's
    modules were copied onto a board alone), so the child imports the same code."""
    top = sys.modules[__package__.partition(".")[0]]
    return str(Path(top.__file__).resolve().parents[1])


class Worker:
    """A long-lived measuring child process, killed and restarted when it overruns.

    Threads can't be stopped, so a runaway model would hold the board forever; a process can.
    It is started with `python -c` (not multiprocessing's spawn, which would re-import the
    `hwnas` entry point and its heavy imports) in the agent's folder, with TMPDIR pointing there.
    `owns_dir`: the agent made that folder, so an orphaned worker removes it.
    """

    def __init__(self, workdir: Path, max_memory_bytes: int | None = None, owns_dir: bool = False):
        self.workdir = workdir
        self.max_memory_bytes = max_memory_bytes
        self.owns_dir = owns_dir
        self.proc: subprocess.Popen | None = None
        self.ready = False

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        root = _import_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(TMPDIR=str(self.workdir), TEMP=str(self.workdir), TMP=str(self.workdir),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        env.setdefault("ORT_DISABLE_TELEMETRY", "1")
        for k in (MAX_AS_ENV, PARENT_ENV, OWNED_DIR_ENV):
            env.pop(k, None)
        env[PARENT_ENV] = str(os.getpid())
        if self.owns_dir:
            env[OWNED_DIR_ENV] = str(self.workdir)
        if self.max_memory_bytes:
            env[MAX_AS_ENV] = str(int(self.max_memory_bytes))  # the child caps itself first thing
        return env

    def start(self) -> None:
        """Spawn the child; it announces itself once its imports are done (see `_ensure_ready`),
        so the server starts listening meanwhile."""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from {__package__}.worker import worker_main; worker_main()"],
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
                write_frame(self.proc.stdin, data)
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

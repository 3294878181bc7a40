"""`remote:http://HOST:PORT[?provider=trt&threads=2&token_file=PATH]`: a device that times ONNX models on a board running the agent
(devices/agent/), so a phone, Pi or Jetson profiles like a local device.

Token: `?token_file=PATH` in the spec, else $HWNAS_AGENT_TOKEN, else the file named by
$HWNAS_AGENT_TOKEN_FILE. Connection failures (agent not up yet, restarting, tunnel dropping)
are retried with bounded exponential backoff; a busy agent (503) is retried after its
Retry-After. Refusals are one-line errors naming the fix: 401 -> PermissionError, 413 / 400 ->
ValueError, 504 -> TimeoutError, unreachable -> ConnectionError.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .base import Device, safe_id
from .measurement import Measurement
from .timing import TimingConfig

META_HEADER = "X-Hwnas-Meta"
DEFAULT_RETRIES = 6  # connection attempts after the first: 0.5+1+2+4+8+16 s of backoff at most
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 16.0
MAX_BUSY_WAIT_S = 600.0


def _token(spec: str, query: dict[str, list[str]]) -> str:
    path = (query.get("token_file") or [None])[0]
    if path is None and os.environ.get("HWNAS_AGENT_TOKEN"):
        return os.environ["HWNAS_AGENT_TOKEN"].strip()
    path = path or os.environ.get("HWNAS_AGENT_TOKEN_FILE")
    if not path:
        raise ValueError(f"device {spec!r}: no agent token; set HWNAS_AGENT_TOKEN, HWNAS_AGENT_TOKEN_FILE "
                         "or add ?token_file=PATH to the device (the file the agent was started with)")
    try:
        tok = open(os.path.expanduser(path), encoding="utf-8").read().strip()
    except OSError as exc:
        raise OSError(f"device {spec!r}: cannot read token file {path}: {exc.strerror or exc}") from None
    if not tok:
        raise ValueError(f"device {spec!r}: token file {path} is empty")
    return tok


class RemoteDevice(Device):
    """A board running `hwnas agent`, reached over HTTP (use an SSH tunnel for other hosts)."""

    def __init__(self, spec: str, *, retries: int | None = None, backoff_s: float = DEFAULT_BACKOFF_S,
                 max_backoff_s: float = MAX_BACKOFF_S, timeout_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not spec.startswith("remote:"):
            raise ValueError(f"remote device spec must look like remote:http://HOST:PORT, got {spec!r}")
        url = spec[len("remote:"):]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"device {spec!r}: expected remote:http://HOST:PORT (e.g. remote:http://127.0.0.1:8765)")
        if parts.path not in ("", "/"):
            raise ValueError(f"device {spec!r}: the agent URL takes no path, got {parts.path!r}")
        query = parse_qs(parts.query)
        unknown = set(query) - {"token_file", "retries", "provider", "threads"}
        if unknown:
            raise ValueError(f"device {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             "accepted: token_file, retries, provider, threads")
        self.provider = (query.get("provider") or [None])[0]  # None: the agent's first --providers
        if self.provider is not None and self.provider not in ("cpu", "cuda", "trt"):
            raise ValueError(f"device {spec!r}: provider must be cpu, cuda or trt, got {self.provider!r}")
        try:
            self.threads = int(query["threads"][0]) if "threads" in query else None
        except ValueError:
            raise ValueError(f"device {spec!r}: threads must be an integer") from None
        if retries is None:
            try:
                retries = int((query.get("retries") or [os.environ.get("HWNAS_AGENT_RETRIES", DEFAULT_RETRIES)])[0])
            except ValueError:
                raise ValueError(f"device {spec!r}: retries must be an integer") from None
        if retries < 0:
            raise ValueError(f"device {spec!r}: retries must be >= 0")
        self.spec = spec.split("?", 1)[0]
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        suffix = (f"-{self.provider}" if self.provider else "") + (f"-t{self.threads}" if self.threads else "")
        self.device_id = safe_id(f"remote-{parts.hostname}-{parts.port}{suffix}")
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.timeout_s, self._sleep = timeout_s, sleep
        self._token = _token(spec, query)
        self._client = None
        self._info: dict[str, Any] | None = None

    # ---- transport -------------------------------------------------------------------------
    def _http(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self._token}"},
                                        timeout=httpx.Timeout(self.timeout_s or 30.0, connect=10.0))
        return self._client

    def _request(self, method: str, path: str, *, read_timeout: float | None = None, **kw):
        """One request with bounded retries on connection errors and on a busy agent."""
        import httpx

        attempt, busy_waited = 0, 0.0
        while True:
            try:
                kwargs = dict(kw)
                if read_timeout is not None:
                    kwargs["timeout"] = httpx.Timeout(read_timeout, connect=10.0)
                r = self._http().request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # connect refused / reset / agent killed mid-request: the measurement is
                # idempotent, so asking again is safe.
                if isinstance(exc, httpx.ReadTimeout) or attempt >= self.retries:
                    raise ConnectionError(
                        f"agent at {self.base_url} unreachable after {attempt + 1} attempt(s): "
                        f"{type(exc).__name__}: {exc or 'no detail'}; is `hwnas agent` running there "
                        "(and the SSH tunnel up)?") from None
                self._sleep(min(self.backoff_s * 2 ** attempt, self.max_backoff_s))
                attempt += 1
                continue
            if r.status_code == 503 and busy_waited < MAX_BUSY_WAIT_S:
                wait = _retry_after(r)
                self._sleep(wait)
                busy_waited += wait
                continue
            return r

    def _check(self, r, what: str) -> dict:
        try:
            data = r.json()
        except ValueError:
            data = {}
        msg = data.get("error") if isinstance(data, dict) else None
        msg = msg or (r.text[:200] if r.text else r.reason_phrase)
        code = r.status_code
        if code == 200:
            if not isinstance(data, dict):
                raise OSError(f"agent at {self.base_url} sent a malformed answer to {what}")
            return data
        where = f"agent at {self.base_url}"
        if code == 401:
            raise PermissionError(f"{where} refused the token (401); use the token file the agent was started with "
                                  "(HWNAS_AGENT_TOKEN, HWNAS_AGENT_TOKEN_FILE or ?token_file=)")
        if code == 413:
            raise ValueError(f"{where}: {msg}")
        if code in (400, 411):
            raise ValueError(f"{where} rejected {what}: {msg}")
        if code == 504:
            raise TimeoutError(f"{where}: {msg}")
        if code == 404:
            raise OSError(f"{where} has no {what} endpoint ({msg}); is that port an hwnas agent?")
        raise OSError(f"{where} failed {what} ({code}): {msg}")

    # ---- Device ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self._check(self._request("GET", "/info"), "info")
        board = dict(self._info)
        return {
            "device": self.spec, "device_id": self.device_id, "processor": board.get("processor"),
            "machine": board.get("machine"), "python": board.get("python"),
            "threads": self.threads or board.get("threads") or board.get("cpu_count"),
            "precision": self.precision, "runtime": "onnxruntime", "runtime_version": board.get("onnxruntime"),
            "providers": [self.provider] if self.provider else board.get("providers")[:1] if board.get("providers") else None,
            "remote": True, "agent": board,
        }

    def measure_onnx(self, onnx_bytes: bytes, input_shapes=None, cfg: TimingConfig = TimingConfig(),
                     ref_onnx: bytes | None = None, ref_latency_ms: float | None = None) -> Measurement:
        if not isinstance(onnx_bytes, bytes | bytearray) or not onnx_bytes:
            raise ValueError("measure_onnx needs the ONNX model as non-empty bytes")
        meta: dict[str, Any] = {"timing": cfg.to_dict()}
        if self.provider:
            meta["provider"] = self.provider
        if self.threads:
            meta["threads"] = self.threads
        if input_shapes:
            meta["input_shapes"] = {str(k): [int(d) for d in v] for k, v in dict(input_shapes).items()}
        body = bytes(onnx_bytes)
        if ref_onnx is not None:
            meta["model_bytes"] = len(body)
            body += bytes(ref_onnx)
            if ref_latency_ms is not None:
                meta["ref_latency_ms"] = float(ref_latency_ms)
        self.info()  # limits and timeouts of this agent (cached)
        board = self._info or {}
        limit = board.get("max_body_bytes")
        if limit and len(body) > limit:
            raise ValueError(f"agent at {self.base_url}: request of {len(body)} bytes is over its limit of {limit} "
                             "bytes; restart the agent with a larger --max-body-mb")
        # the agent caps a measurement at hard_timeout_s; wait a little longer than that
        read_timeout = float(board.get("hard_timeout_s") or 2 * cfg.max_s + 30) + 30.0
        r = self._request("POST", "/measure", content=body, read_timeout=self.timeout_s or read_timeout,
                          headers={META_HEADER: json.dumps(meta), "Content-Type": "application/octet-stream"})
        data = self._check(r, "the model")
        # Rows keep the local devices' columns: the agent's identity is in info() (the table's
        # sidecar); only a cap the agent applied is added, because it changes what was measured.
        extra = dict(data.get("extra") or {})
        notes = extra.pop("agent_notes", None)
        for k in ("agent_host", "agent_protocol"):
            extra.pop(k, None)
        if notes:
            extra["agent_notes"] = "; ".join(notes)
        data["extra"] = extra
        data["device"] = self.spec
        return Measurement.from_dict(data)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _retry_after(r) -> float:
    try:
        return min(max(float(r.headers.get("retry-after", "1")), 0.1), 60.0)
    except ValueError:
        return 1.0

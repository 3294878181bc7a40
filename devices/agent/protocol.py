"""The agent's wire format (what a host and an agent say to each other over HTTP) and the
check of a request's settings against the agent's limits (`parse_meta`).

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
body-read timeout (`--body-timeout-s`), or a request's head (request line and headers) did not
arrive within `--header-timeout-s` of the connection opening or the last answer (a connection
idle that long is closed without an answer); 503 + `Retry-After: 1` and the connection closed:
the agent already holds `--max-connections` connections (never more than half the open-file
limit); 507 the model needed more memory than the worker's cap
(`--max-memory-mb`, an RLIMIT_AS on the worker process); 500 only when the worker process died
otherwise (for example killed by the kernel); it is restarted for the next request.

The body is read (bounded by `--max-body-mb` and the body timeout) before the one-at-a-time
lock is taken, so a client that stalls mid-body holds nothing but its own request. `threads` is
capped by the board's cores (a larger ask is a 400).
"""

from __future__ import annotations

import json
import socket
from dataclasses import fields
from typing import Any

from .config import AgentConfig, board_cores

PROTOCOL_VERSION = 1
META_HEADER = "x-hwnas-meta"
MAX_RUN_COUNT = 100_000
MAX_INPUT_ELEMENTS = 1 << 26  # 64 Mi elements (256 MiB of float32) per request, all inputs together
ENDPOINTS = "GET /health, GET /info, POST /measure"


class RequestError(Exception):
    """An HTTP error answer: status, one-line message, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def parse_meta(raw: str | None, body_len: int, cfg: AgentConfig) -> tuple[dict, list[str]]:
    """Validate the X-Hwnas-Meta header into a worker job; returns (job, notes on applied caps)."""
    from ..timing import TimingConfig

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

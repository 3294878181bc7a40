"""`python -m hwnas.devices.agent` (or `python -m devices.agent` from the copied modules): the
agent's command line, with no dependency beyond the agent's own (`hwnas agent` is the same
command inside the package's CLI, bench/commands/agent.py)."""

from __future__ import annotations

import argparse
import os
import sys

from .config import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SECONDS,
    AgentConfig,
    TokenError,
    load_token,
)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog or f"python -m {__package__}",
                                description="Serve measurements of ONNX models to a remote host (edge / mobile targets).")
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
    p.add_argument("--header-timeout-s", type=float, default=DEFAULT_HEADER_TIMEOUT_S,
                   help="a request's line and headers must arrive within this (408 otherwise); also the idle keep-alive")
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                   help="open connections at once (never more than half the open-file limit); more get 503")
    p.add_argument("--max-memory-mb", type=float, default=None,
                   help="address-space cap of the measuring worker (RLIMIT_AS; default 80%% of RAM, 0 = none); over it: 507")
    return p


def config_from_args(token_file, providers: str, threads, max_body_mb: float, max_seconds: float,
                     hard_timeout_s: float | None = None, body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
                     max_memory_mb: float | None = None, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                     max_connections: int = DEFAULT_MAX_CONNECTIONS) -> AgentConfig:
    if not token_file:
        raise TokenError("no token file: pass --token-file FILE (or set HWNAS_AGENT_TOKEN_FILE)")
    token = load_token(token_file, warn=lambda m: print(m, file=sys.stderr))
    return AgentConfig(token=token, providers=tuple(p.strip() for p in providers.split(",") if p.strip()),
                       threads=threads, max_body_bytes=int(max_body_mb * (1 << 20)), max_seconds=max_seconds,
                       hard_timeout_s=hard_timeout_s, body_timeout_s=body_timeout_s,
                       header_timeout_s=header_timeout_s, max_connections=max_connections,
                       max_memory_bytes=-1 if max_memory_mb is None else int(max_memory_mb * (1 << 20)))


def main(argv: list[str] | None = None) -> None:
    from .server import serve

    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args.token_file, args.providers, args.threads, args.max_body_mb, args.max_seconds,
                               args.hard_timeout_s, args.body_timeout_s, args.max_memory_mb,
                               args.header_timeout_s, args.max_connections)
        serve(cfg, args.host, args.port, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (ValueError, OSError) as exc:
        print(f"hwnas agent: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

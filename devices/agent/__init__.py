"""The remote measurement agent: a small HTTP server an edge or mobile board runs so a host can
time ONNX models on it (client: devices/remote.py).

Light on purpose: it imports only devices.ort / devices.timing / devices.measurement (numpy,
scipy, onnxruntime) and starlette + uvicorn, never torch or pandas, so it installs on a
Raspberry Pi, a phone (Termux) or a Jetson. Run it as `hwnas agent ...` or
`python -m hwnas.devices.agent --port 8765 --token-file ~/.hwnas-token` (`python -m devices.agent`
from the copied modules alone).

Rooms: `config` (token, limits), `protocol` (the wire format and the check of a request's
settings), `server` (the HTTP application, connection limits, `serve`), `worker` (the measuring
child process and its handle), `command` (the command line).
"""

from .command import build_parser, config_from_args, main
from .config import AgentConfig, TokenError, load_token
from .protocol import PROTOCOL_VERSION, RequestError, parse_meta
from .server import Agent, create_app, serve
from .worker import Worker, worker_main

__all__ = [
    "PROTOCOL_VERSION", "Agent", "AgentConfig", "RequestError", "TokenError", "Worker", "build_parser",
    "config_from_args", "create_app", "load_token", "main", "parse_meta", "serve", "worker_main",
]

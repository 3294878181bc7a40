"""`hwnas agent`: serve measurements of ONNX models to a remote host (devices/agent/).

On a board without the rest of the package, `python -m hwnas.devices.agent` (or `python -m
devices.agent` from the copied modules) takes the same options (devices/agent/command.py).
"""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Keep loopback and reach it through an SSH tunnel.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False), envvar="HWNAS_AGENT_TOKEN_FILE",
              help="File holding the shared token (chmod 600). Env: HWNAS_AGENT_TOKEN_FILE.")
@click.option("--providers", default="cpu", show_default=True, help="Comma-separated: cpu,cuda,trt.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Pin onnxruntime intra-op threads (default: the client's choice, else all cores).")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=64.0, show_default=True,
              help="Largest request body (model + reference); bigger ones get 413.")
@click.option("--max-seconds", type=click.FloatRange(min=0.01), default=60.0, show_default=True,
              help="Cap on one measurement's timing; a request is stopped (504) after 2x this + 30 s.")
@click.option("--hard-timeout-s", type=click.FloatRange(min=0.1), default=None,
              help="Stop a request after this long (default 2 x --max-seconds + 30).")
@click.option("--body-timeout-s", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="The whole request body must arrive within this (408 otherwise).")
@click.option("--header-timeout-s", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="A request's line and headers must arrive within this (408 otherwise); also the idle keep-alive.")
@click.option("--max-connections", type=click.IntRange(min=2), default=64, show_default=True,
              help="Open connections at once (never more than half the open-file limit); more get 503.")
@click.option("--max-memory-mb", type=click.FloatRange(min=0), default=None,
              help="Address-space cap of the measuring worker (RLIMIT_AS; default 80% of RAM, 0 = none); over it: 507.")
def agent(host, port, token_file, providers, threads, max_body_mb, max_seconds, hard_timeout_s,
          body_timeout_s, header_timeout_s, max_connections, max_memory_mb) -> None:
    """Serve measurements of ONNX models to a remote host (edge / mobile targets)."""
    from hwnas.devices.agent.command import config_from_args
    from hwnas.devices.agent.server import serve

    cfg = config_from_args(token_file, providers, threads, max_body_mb, max_seconds, hard_timeout_s,
                           body_timeout_s, max_memory_mb, header_timeout_s, max_connections)
    serve(cfg, host, port, log=lambda m: click.echo(m, err=True))

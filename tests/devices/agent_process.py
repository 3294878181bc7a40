"""A real agent process on 127.0.0.1 for the agent tests: torch blocked, folders watched.

The agent runs with its working folder and TMPDIR inside a test folder, and a sitecustomize
that refuses `import torch` (and logs the attempt) in the agent and its worker alike.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[2]

BLOCKER = '''
import os, sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name == "pandas":
            with open(os.environ["HWNAS_TEST_BLOCK_LOG"], "a") as fh:
                fh.write(name + "\\n")
            raise ImportError(f"{name} is blocked in the agent test")
        return None
sys.meta_path.insert(0, _NoTorch())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conv_model(channels: int = 8, size: int = 16, seed: int = 0) -> bytes:
    """A one-Conv ONNX model built with onnx.helper (no torch needed)."""
    rng = np.random.default_rng(seed)
    w = helper.make_tensor("W", TensorProto.FLOAT, [channels, channels, 3, 3],
                           rng.standard_normal(channels * channels * 9).astype(np.float32).tolist())
    node = helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1])
    shape = [1, channels, size, size]
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


class AgentProcess:
    """Start / stop / restart `python -m hwnas.devices.agent` on a free loopback port."""

    def __init__(self, root: Path, *args: str, port: int | None = None, max_open_files: int | None = None):
        self.root = Path(root)
        self.max_open_files = max_open_files  # RLIMIT_NOFILE of the agent (and its worker)
        self.cwd, self.tmp, self.site = self.root / "cwd", self.root / "tmp", self.root / "site"
        for d in (self.cwd, self.tmp, self.site):
            d.mkdir(parents=True, exist_ok=True)
        (self.site / "sitecustomize.py").write_text(BLOCKER)
        self.block_log = self.root / "blocked-imports.log"
        self.token = secrets.token_urlsafe(32)
        self.token_file = self.root / "token"
        self.token_file.write_text(self.token + "\n")
        self.token_file.chmod(0o600)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "agent.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.update(TMPDIR=str(self.tmp), HWNAS_TEST_BLOCK_LOG=str(self.block_log), PYTHONDONTWRITEBYTECODE="1")
        env.pop("HWNAS_AGENT_TOKEN_FILE", None)
        return env

    def start(self, wait: bool = True) -> AgentProcess:
        cmd = [sys.executable, "-m", "hwnas.devices.agent", "--port", str(self.port), "--token-file", str(self.token_file),
               *self.args]
        limit = self.max_open_files

        def cap_files():
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=cap_files if limit else None)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agent not ready after {timeout_s} s: {self.log.read_text()[-2000:]}")

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def client(self, token: str | None = "right", timeout: float = 60.0) -> httpx.Client:
        headers = {}
        if token == "right":
            headers["Authorization"] = f"Bearer {self.token}"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stray_files(self) -> list[str]:
        """Anything written outside the agent's own folder (tmp/hwnas-agent-*)."""
        out = [str(p.relative_to(self.root)) for p in self.cwd.rglob("*")]
        out += [str(p.relative_to(self.root)) for p in self.tmp.iterdir() if not p.name.startswith("hwnas-agent-")]
        out += [str(p.relative_to(self.root)) for p in self.site.iterdir() if p.name != "sitecustomize.py"]
        return out

    def blocked_imports(self) -> list[str]:
        return self.block_log.read_text().split() if self.block_log.exists() else []

"""Issue 25: clients that open connections and send their request slowly, or never, are cut off
(a deadline on each request's head, a cap on open connections, also under a 256-file limit), and
the measuring worker never outlives its agent (kill -9 mid-measurement)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tests.devices.agent_process import REPO, AgentProcess, conv_model
from tests.devices.test_agent import META, measure

pytestmark = pytest.mark.timeout(120)
PARTIAL_HEAD = b"POST /measure HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Hwnas-Meta: {"


def answer_or_eof(sock: socket.socket, within_s: float) -> bytes | None:
    """What the agent sends before closing (b"" for a bare close); None if still open after `within_s`."""
    sock.settimeout(within_s)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


def test_partial_heads_are_cut_off_and_real_requests_served_under_a_256_file_limit(tmp_path):
    model = conv_model()
    with AgentProcess(tmp_path, "--header-timeout-s", "1", "--max-seconds", "2", max_open_files=256) as agent:
        socks = []
        try:
            for _ in range(300):  # more than the agent's 256 descriptors
                s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
                try:
                    s.sendall(PARTIAL_HEAD)
                except OSError:
                    pass  # already refused and closed
                socks.append(s)
            t0 = time.monotonic()
            answers = [answer_or_eof(s, max(0.1, t0 + 4.0 - time.monotonic())) for s in socks]
        finally:
            for s in socks:
                s.close()
        still_open = sum(a is None for a in answers)
        assert still_open == 0, f"{still_open} of 300 connections with a partial head still open after 4 s"
        timed_out = sum(a.startswith(b"HTTP/1.1 408") for a in answers)
        refused = sum(a.startswith(b"HTTP/1.1 503") for a in answers)
        assert timed_out >= 1 and b"--header-timeout-s" in next(a for a in answers if a.startswith(b"HTTP/1.1 408"))
        assert refused >= 300 - 128  # never more than half the file limit held at once
        with agent.client() as c:
            info = c.get("/info").json()
            assert info["max_connections"] == 64 and info["header_timeout_s"] == 1.0
            r = measure(c, model, META)
            assert r.status_code == 200, r.text
        assert agent.proc is not None and agent.proc.poll() is None


def test_a_head_sent_byte_by_byte_and_an_idle_keep_alive_are_closed(tmp_path):
    with AgentProcess(tmp_path, "--header-timeout-s", "1") as agent:
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as s:
            t0 = time.monotonic()
            try:
                for byte in PARTIAL_HEAD:  # each byte restarted uvicorn's keep-alive timer
                    s.sendall(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                pass  # closed by the agent while we were still sending
            got = answer_or_eof(s, 3.0)
            assert got is not None and time.monotonic() - t0 < 4.0
            assert got == b"" or got.startswith(b"HTTP/1.1 408")
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = answer_or_eof(s, 3.0)  # the answer, then the idle keep-alive connection ends
            assert got is not None and got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1
        assert httpx.get(agent.url + "/health", timeout=10).status_code == 200


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_killing_the_agent_mid_measurement_ends_its_worker_and_removes_its_folder(tmp_path):
    agent = AgentProcess(tmp_path, "--max-seconds", "30").start()
    slow = {"input_shapes": META["input_shapes"], "threads": 1,
            "timing": {"warmup_runs": 2, "warmup_s": 0.0, "min_runs": 10, "max_runs": 10**8, "max_s": 25.0,
                       "rel_ci": 1e-6, "round_runs": 5}}

    def post():
        try:
            with agent.client(timeout=60) as c:
                measure(c, conv_model(), slow)
        except httpx.TransportError:
            pass  # the agent is killed under this request

    client = threading.Thread(target=post, daemon=True)
    client.start()
    try:
        with agent.client() as c:
            deadline = time.monotonic() + 30
            while not c.get("/info").json()["busy"]:
                assert time.monotonic() < deadline, "the measurement never started"
                time.sleep(0.1)
        time.sleep(0.5)  # the worker is now timing the model
        (worker,) = psutil.Process(agent.proc.pid).children()
        folders = list(agent.tmp.glob("hwnas-agent-*"))
        assert len(folders) == 1 and worker.is_running()
        os.kill(agent.proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        while not _gone(worker.pid) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert _gone(worker.pid), "the worker outlived its agent by 5 s"
        assert not folders[0].exists(), "the agent's temporary folder was left behind"
    finally:
        agent.stop(kill=True)
        client.join(timeout=30)
        for p in psutil.process_iter(["pid", "environ"]):  # never leave a stray worker behind
            try:
                if (p.info["environ"] or {}).get("HWNAS_AGENT_PARENT_PID") and p.info["pid"] != os.getpid() \
                        and str(tmp_path) in (p.info["environ"] or {}).get("TMPDIR", ""):
                    p.kill()
            except psutil.Error:
                pass


def test_a_worker_whose_agent_is_already_gone_exits_at_once_and_cleans_up(tmp_path):
    folder = tmp_path / "hwnas-agent-x"
    folder.mkdir()
    (folder / "left.bin").write_bytes(b"x")
    env = dict(os.environ, PYTHONPATH=str(REPO), HWNAS_AGENT_PARENT_PID="1", HWNAS_AGENT_OWNED_DIR=str(folder))
    r = subprocess.run([sys.executable, "-c", "from hwnas.devices.agent.worker import worker_main; worker_main()"],
                       stdin=subprocess.PIPE, capture_output=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout == b""  # never announced itself ready
    assert not folder.exists()

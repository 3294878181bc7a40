"""The remote agent as a real process on 127.0.0.1: auth, limits, bad models, timeouts, client."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from hwnas.devices.agent.config import AgentConfig, TokenError, load_token
from hwnas.devices.agent.protocol import parse_meta
from hwnas.devices.agent.server import _is_loopback
from hwnas.devices.measurement import Measurement
from hwnas.devices.remote import RemoteDevice
from hwnas.devices.timing import TimingConfig

from tests.devices.agent_process import AgentProcess, conv_model

FAST = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_s=0.3, rel_ci=0.05, round_runs=5)
META = {"input_shapes": {"x": [1, 8, 16, 16]}, "timing": FAST.to_dict()}
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    # the hard limit must stop the runaway test's model (~100 s of runs) and never a small
    # measurement on a loaded machine (4 s stopped one at load ~4)
    with AgentProcess(tmp_path_factory.mktemp("agent"), "--max-body-mb", "1", "--max-seconds", "1",
                      "--hard-timeout-s", "15") as a:
        yield a


@pytest.fixture(scope="module")
def model():
    return conv_model()


def measure(client, body, meta=META, **headers):
    h = {"X-Hwnas-Meta": json.dumps(meta)} if meta is not None else {}
    h.update(headers)
    return client.post("/measure", content=body, headers=h)


def measured(agent) -> int:
    with agent.client() as c:
        return c.get("/info").json()["measured"]


def still_serves(agent, model):
    with agent.client() as c:
        assert c.get("/health").status_code == 200
        r = measure(c, model)
        assert r.status_code == 200, r.text
        assert r.json()["latency_ms"] > 0


# ---- auth --------------------------------------------------------------------------------------
def test_health_needs_no_token_and_info_describes_the_board(agent):
    with agent.client(token=None) as c:
        assert c.get("/health").json() == {"ok": True, "version": 1}
    with agent.client() as c:
        info = c.get("/info").json()
    for key in ("processor", "machine", "python", "onnxruntime", "numpy", "providers", "threads",
                "max_body_bytes", "max_seconds", "hard_timeout_s"):
        assert key in info
    assert info["providers"] == ["cpu"] and info["max_body_bytes"] == 1 << 20


@pytest.mark.parametrize("token", [None, "wrong-token-of-some-length", "x"])
def test_missing_or_wrong_token_is_401_and_nothing_runs(agent, model, token):
    before = measured(agent)
    with agent.client(token=token) as c:
        r = c.get("/info")
        assert r.status_code == 401 and "token" in r.json()["error"]
        r = measure(c, model)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert measured(agent) == before
    still_serves(agent, model)


def test_token_in_another_scheme_is_401(agent, model):
    with agent.client(token=None) as c:
        r = measure(c, model, Authorization=f"Basic {agent.token}")
    assert r.status_code == 401


# ---- body limit --------------------------------------------------------------------------------
def test_oversize_declared_body_is_413_before_the_body_is_sent(agent, model):
    """Only the headers go out: the 413 must come from Content-Length alone."""
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as s:
        s.sendall((f"POST /measure HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {agent.token}\r\n"
                   f"Content-Length: {10**9}\r\n\r\n").encode())
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    still_serves(agent, model)


def test_oversize_body_is_413(agent, model):
    with agent.client() as c:
        r = measure(c, model + b"\0" * (2 << 20))
    assert r.status_code == 413 and "--max-body-mb" in r.json()["error"]
    still_serves(agent, model)


def test_oversize_streamed_body_is_413_while_counting(agent, model):
    def chunks():  # no Content-Length: chunked transfer, 64 KiB at a time, up to 3 MiB
        for _ in range(48):
            yield b"\0" * 65536

    with agent.client() as c:
        r = c.post("/measure", content=chunks())
    assert r.status_code == 413
    still_serves(agent, model)


def test_empty_body_is_411(agent, model):
    with agent.client() as c:
        assert measure(c, b"").status_code == 411
    still_serves(agent, model)


# ---- bad models and settings -------------------------------------------------------------------
@pytest.mark.parametrize("case", ["garbage", "truncated", "wrong_shape", "wrong_rank", "unknown_input",
                                  "bad_json", "unknown_setting", "bad_timing", "runaway_counts",
                                  "bad_provider", "bad_model_bytes"])
def test_bad_requests_are_400_with_the_reason(agent, model, case):
    body, meta, expect = model, dict(META), ""
    if case == "garbage":
        body, expect = b"this is not an onnx model" * 10, "rejected by onnxruntime"
    elif case == "truncated":
        body, expect = model[: len(model) // 2], "rejected by onnxruntime"
    elif case == "wrong_shape":
        meta["input_shapes"], expect = {"x": [1, 8, 15, 16]}, "does not match"
    elif case == "wrong_rank":
        meta["input_shapes"], expect = {"x": [1, 8, 16]}, "does not match"
    elif case == "unknown_input":
        meta["input_shapes"], expect = {"y": [1, 8, 16, 16]}, "no input"
    elif case == "bad_json":
        meta, expect = None, "not valid JSON"
    elif case == "unknown_setting":
        meta["path"], expect = "/etc/passwd", "unknown setting"
    elif case == "bad_timing":
        meta["timing"], expect = {"rel_ci": 5}, "rel_ci"
    elif case == "runaway_counts":
        meta["timing"], expect = {"warmup_runs": 10**9}, "limit"
    elif case == "bad_provider":
        meta["provider"], expect = "cuda", "not served"
    elif case == "bad_model_bytes":
        meta["model_bytes"], expect = len(model) + 5, "model_bytes"
    with agent.client() as c:
        if meta is None:
            r = measure(c, body, None, **{"X-Hwnas-Meta": "{not json"})
        else:
            r = measure(c, body, meta)
    assert r.status_code == 400, r.text
    assert expect in r.json()["error"]
    still_serves(agent, model)


def test_max_s_is_capped_by_the_agent_and_said_so(agent, model):
    with agent.client() as c:
        r = measure(c, model, {"timing": {**FAST.to_dict(), "max_s": 30.0, "rel_ci": 0.001}})
    assert r.status_code == 200
    m = r.json()
    assert "max_s capped at 1 s" in m["extra"]["agent_notes"]
    assert m["wall_s"] < 10


# ---- one at a time, hard timeout ---------------------------------------------------------------
@pytest.mark.slow
def test_busy_is_503_and_runaway_is_504_then_serving_again(agent, model):
    # a model that outlives the hard limit: huge warm-up counts are refused, so stall it with
    # a long min_runs of a bigger convolution instead
    big = conv_model(channels=64, size=64)
    slow = {"input_shapes": {"x": [1, 64, 64, 64]},
            "timing": {"warmup_runs": 1, "warmup_s": 0.0, "min_runs": 100_000, "max_runs": 100_000,
                       "max_s": 1.0, "round_runs": 10}}
    result = {}

    def runaway():
        with agent.client() as c:
            result["r"] = measure(c, big, slow)

    t = threading.Thread(target=runaway)
    t.start()
    try:
        with agent.client() as c:
            for _ in range(100):  # wait (bounded) until the agent reports the measurement running
                if c.get("/info").json()["busy"]:
                    break
                time.sleep(0.05)
            r = measure(c, model)
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            assert c.get("/health").status_code == 200  # responsive while measuring
    finally:
        t.join(timeout=60)
    r = result["r"]
    assert r.status_code == 504 and "hard limit of 15 s" in r.json()["error"]
    still_serves(agent, model)


# ---- the client --------------------------------------------------------------------------------
def test_remote_device_matches_the_local_cpu_record(agent, model, monkeypatch):
    from hwnas.devices.registry import create_device

    monkeypatch.setenv("HWNAS_AGENT_TOKEN", agent.token)
    with create_device(f"remote:{agent.url}") as dev:
        assert isinstance(dev, RemoteDevice) and dev.device_id == f"remote-127.0.0.1-{agent.port}"
        rm = dev.measure_onnx(model, {"x": (1, 8, 16, 16)}, FAST)
        rr = dev.measure_onnx(model, None, FAST, ref_onnx=model, ref_latency_ms=rm.latency_ms)
        info = dev.info()
    local = create_device("cpu")
    local.energy_window_s = 0.0  # the agent does not meter energy; keep the local one comparable
    lm = local.measure_onnx(model, {"x": (1, 8, 16, 16)}, FAST)
    assert isinstance(rm, Measurement) and rm.to_dict().keys() == lm.to_dict().keys()
    for k, v in lm.to_dict().items():
        if k not in ("device", "extra") and v is not None:
            assert type(getattr(rm, k)) is type(v), k
    assert (rm.batch, rm.threads, rm.precision, rm.param_bytes, rm.activation_bytes) == \
        (lm.batch, lm.threads, lm.precision, lm.param_bytes, lm.activation_bytes)
    assert rm.device == f"remote:{agent.url}" and rm.extra["provider"] == lm.extra["provider"]
    assert rm.n >= FAST.min_runs and rm.latency_ms > 0 and rm.latency_norm_ms is None
    assert rr.ref_ratio is not None and rr.latency_norm_ms == pytest.approx(rr.ref_ratio * rm.latency_ms)
    assert info["processor"] and info["runtime"] == "onnxruntime" and info["agent"]["protocol"] == 1


def test_remote_device_errors_are_one_line(agent, model, tmp_path, monkeypatch):
    monkeypatch.delenv("HWNAS_AGENT_TOKEN", raising=False)
    monkeypatch.delenv("HWNAS_AGENT_TOKEN_FILE", raising=False)
    with pytest.raises(ValueError, match="no agent token"):
        RemoteDevice(f"remote:{agent.url}")
    with pytest.raises(ValueError, match="remote:http://HOST:PORT"):
        RemoteDevice("remote:127.0.0.1")
    bad = tmp_path / "bad-token"
    bad.write_text("not-the-right-token-at-all\n")
    with RemoteDevice(f"remote:{agent.url}?token_file={bad}") as dev, \
            pytest.raises(PermissionError, match="refused the token"):
        dev.measure_onnx(model, None, FAST)
    with RemoteDevice(f"remote:{agent.url}?token_file={agent.token_file}") as dev:
        with pytest.raises(ValueError, match="does not match"):
            dev.measure_onnx(model, {"x": (1, 8, 8, 8)}, FAST)
        with pytest.raises(ValueError, match="over its limit"):
            dev.measure_onnx(model + b"\0" * (2 << 20), None, FAST)
    with RemoteDevice(f"remote:http://127.0.0.1:{_closed_port()}?token_file={agent.token_file}", retries=1,
                      backoff_s=0.01) as dev, \
            pytest.raises(ConnectionError, match="unreachable after 2 attempt"):
        dev.measure_onnx(model, None, FAST)


def _closed_port() -> int:
    from tests.devices.agent_process import free_port

    return free_port()


@pytest.mark.slow
def test_client_retries_until_the_agent_is_up_and_across_a_restart(tmp_path, model):
    a = AgentProcess(tmp_path, "--max-seconds", "5")
    slow = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=10, max_runs=10**8, max_s=2.0, rel_ci=1e-4,
                        round_runs=5)
    starter = threading.Timer(1.0, a.start, kwargs={"wait": False})
    starter.start()  # the client asks before the agent exists
    try:
        dev = RemoteDevice(f"remote:{a.url}?token_file={a.token_file}", retries=200, backoff_s=0.1,
                           max_backoff_s=0.3)  # bounded: 200 tries, at most ~60 s
        m = dev.measure_onnx(model, None, FAST)
        assert m.latency_ms > 0

        def restart():
            a.stop(kill=True)
            a.start(wait=False)

        killer = threading.Timer(0.8, restart)  # killed in the middle of a 2 s measurement
        killer.start()
        t0 = time.monotonic()
        m2 = dev.measure_onnx(model, None, slow)
        killer.join(timeout=60)
        assert m2.latency_ms > 0 and time.monotonic() - t0 > 2.0
        dev.close()
    finally:
        starter.cancel()
        starter.join(timeout=60)
        a.stop()
    assert not a.blocked_imports()


def test_agent_imports_no_torch_and_writes_nothing_outside_its_folder(agent, model):
    still_serves(agent, model)
    assert agent.blocked_imports() == []
    assert agent.stray_files() == []


# ---- configuration -----------------------------------------------------------------------------
def test_token_file_checks(tmp_path):
    with pytest.raises(TokenError, match="does not exist"):
        load_token(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        load_token(tmp_path / "empty")
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(TokenError, match="at least 16"):
        load_token(tmp_path / "short")
    f = tmp_path / "open"
    f.write_text("a-perfectly-long-token-value\n")
    f.chmod(0o644)
    warnings = []
    assert load_token(f, warn=warnings.append) == "a-perfectly-long-token-value"
    assert warnings and "chmod 600" in warnings[0]
    f.chmod(0o600)
    warnings.clear()
    load_token(f, warn=warnings.append)
    assert warnings == []


def test_cli_reports_a_bad_token_file_in_one_line(tmp_path):
    from click.testing import CliRunner
    from hwnas.bench.cli import cli

    r = CliRunner().invoke(cli, ["agent", "--token-file", str(tmp_path / "nope"), "--port", "1"])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output


def test_loopback_detection_and_warning(monkeypatch, tmp_path):
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.5")
    import uvicorn
    from hwnas.devices.agent import server as agent_mod
    from hwnas.devices.agent.worker import Worker

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(Worker, "start", lambda self: None)
    lines = []
    agent_mod.serve(AgentConfig(token="x" * 32), host="0.0.0.0", port=1, log=lines.append)
    assert "warning: binding to 0.0.0.0" in lines[0] and "SSH tunnel" in lines[0]
    lines.clear()
    agent_mod.serve(AgentConfig(token="x" * 32), host="127.0.0.1", port=1, log=lines.append)
    assert len(lines) == 1 and "listening on http://127.0.0.1:1" in lines[0]


def test_parse_meta_caps_and_pins_threads():
    cfg = AgentConfig(token="x" * 32, threads=2, max_seconds=5.0)
    job, notes = parse_meta(json.dumps({"timing": {"max_s": 60.0}}), 100, cfg)
    assert job["timing"]["max_s"] == 5.0 and job["threads"] == 2 and notes == ["max_s capped at 5 s"]
    from hwnas.devices.agent.protocol import RequestError

    with pytest.raises(RequestError, match="pinned to 2"):
        parse_meta(json.dumps({"threads": 1}), 100, cfg)


def test_remote_spec_options_pick_threads_and_provider(agent, model):
    with RemoteDevice(f"remote:{agent.url}?threads=1&token_file={agent.token_file}") as dev:
        assert dev.device_id == f"remote-127.0.0.1-{agent.port}-t1" and dev.info()["threads"] == 1
        assert dev.measure_onnx(model, None, FAST).threads == 1
    with RemoteDevice(f"remote:{agent.url}?provider=cuda&token_file={agent.token_file}") as dev, \
            pytest.raises(ValueError, match="not served by this agent"):
        dev.measure_onnx(model, None, FAST)
    with pytest.raises(ValueError, match="unknown option"):
        RemoteDevice(f"remote:{agent.url}?path=/etc&token_file={agent.token_file}")


def test_hwnas_agent_command_needs_no_heavy_imports():
    """`hwnas agent` on a board: the CLI must start with torch, pandas and friends missing."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'pandas', 'sklearn', 'xgboost', 'matplotlib', 'pyarrow'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, B())\n"
        "from bench.cli import main\n"
        "main(['agent', '--help'])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--token-file" in r.stdout, r.stderr[-2000:]


def test_remote_device_passes_the_device_contract(agent):
    """The registry contract suite skips remote (it needs an agent); the same checks here."""
    import re

    import torch
    from hwnas.devices.reference import reference_module
    from hwnas.devices.registry import create_device

    dev = create_device(f"remote:{agent.url}?token_file={agent.token_file}")
    assert re.fullmatch(r"[a-z0-9._-]+", dev.device_id)
    info = dev.info()
    json.dumps(info, default=str)
    assert info["device_id"] == dev.device_id and info["runtime"] and info["runtime_version"]
    assert "threads" in info and info["precision"]
    module = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU())
    m = dev.measure_module(module, (1, 4, 8, 8), FAST, ref_module=reference_module(), ref_latency_ms=0.1)
    assert m.latency_ms > 0 and m.n >= FAST.min_runs and len(m.samples_ms) == m.n
    assert m.ref_ratio is not None and m.latency_norm_ms == pytest.approx(m.ref_ratio * 0.1)
    assert m.param_bytes == (8 * 4 * 9 + 8) * 4
    assert m.energy_source == "none" and m.energy_mj is None
    dev.close()
    dev.close()

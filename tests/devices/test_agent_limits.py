"""Issue 15: the agent reads and bounds the body before the one-at-a-time lock (with a body-read
timeout), caps `threads` by the board's cores and runs its worker under a memory cap (507)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hwnas.devices.agent.config import AgentConfig, board_cores
from hwnas.devices.agent.protocol import RequestError, parse_meta
from onnx import TensorProto, helper

from tests.devices.agent_process import AgentProcess, conv_model
from tests.devices.test_agent import FAST, META, measure, still_serves

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with AgentProcess(tmp_path_factory.mktemp("agent-limits"), "--max-body-mb", "1", "--max-seconds", "1",
                      "--hard-timeout-s", "20", "--body-timeout-s", "3", "--max-memory-mb", "2048") as a:
        yield a


@pytest.fixture(scope="module")
def model():
    return conv_model()


def expand_model(n: int) -> bytes:
    """y = Expand(x[1], [n]): a tiny model whose output is n floats."""
    shape = helper.make_tensor("s", TensorProto.INT64, [1], [n])
    node = helper.make_node("Expand", ["x", "s"], ["y"])
    g = helper.make_graph([node], "expand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], [shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def read_response(sock) -> str:
    """Head and body may arrive in separate segments: read until Content-Length is met or EOF."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_a_client_stalling_mid_body_blocks_no_one_and_gets_408(agent, model):
    sock = socket.create_connection(("127.0.0.1", agent.port))
    try:
        head = (f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n"
                f"X-Hwnas-Meta: {json.dumps(META)}\r\nContent-Length: {len(model)}\r\n\r\n").encode()
        sock.sendall(head + model[:100])  # ... and then nothing
        time.sleep(0.3)
        t0 = time.monotonic()
        still_serves(agent, model)  # was: 503 for as long as the stalled client liked
        assert time.monotonic() - t0 < 30
        sock.settimeout(30)
        answer = read_response(sock)
        assert answer.startswith("HTTP/1.1 408") and "--body-timeout-s" in answer
    finally:
        sock.close()
    still_serves(agent, model)


def test_threads_above_the_board_cores_is_400(agent, model):
    cfg = AgentConfig(token="x" * 32)
    too_many = board_cores() + 1
    with pytest.raises(RequestError, match=f"more than this board's {board_cores()} core") as ei:
        parse_meta(json.dumps({"threads": too_many}), 100, cfg)
    assert ei.value.status == 400
    with agent.client() as c:
        r = measure(c, model, {**META, "threads": 10**6})
        assert r.status_code == 400 and "core" in r.json()["error"]
        assert c.get("/info").json()["cores"] == board_cores()
    job, _ = parse_meta(json.dumps({"threads": board_cores()}), 100, cfg)
    assert job["threads"] == board_cores()


def test_a_model_over_the_memory_cap_is_507_and_the_agent_serves_on(agent, model):
    with agent.client() as c:
        t0 = time.monotonic()
        r = measure(c, expand_model(1 << 30), {"input_shapes": {"x": [1]}, "timing": FAST.to_dict()})  # 4 GiB out
        assert r.status_code == 507, r.text
        assert "memory" in r.json()["error"] and "\n" not in r.json()["error"]
        assert time.monotonic() - t0 < 60
        assert c.get("/info").json()["max_memory_bytes"] == 2048 << 20
    still_serves(agent, model)


def test_memory_cap_settings():
    assert AgentConfig(token="x" * 32, max_memory_bytes=0).max_memory_bytes is None
    assert AgentConfig(token="x" * 32).max_memory_bytes > 256 << 20  # default: 80% of RAM
    with pytest.raises(ValueError, match="at least 256 MiB"):
        AgentConfig(token="x" * 32, max_memory_bytes=1 << 20)

"""Property test: random methods, paths, headers and bodies thrown at a real agent process.

Documented answers only (200, 400, 401, 404, 405, 411, 413, 503, 504; never 500 or a crash),
the agent still serves afterwards, imports no torch and writes nothing outside its folder.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.devices.agent_process import AgentProcess, conv_model

DOCUMENTED = {200, 400, 401, 404, 405, 411, 413, 503, 504}
MODEL = conv_model()
SETTINGS = ["input_shapes", "timing", "provider", "threads", "model_bytes", "ref_latency_ms", "path", "x"]
TIMING = ["warmup_runs", "warmup_s", "min_runs", "max_runs", "rel_ci", "max_s", "round_runs", "confidence", "out"]
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    # the hard limit only stops a stuck worker here; 20 s leaves room for a worker's start on a loaded
    # machine (at 3 s the closing measurement got 504 at load ~5)
    with AgentProcess(tmp_path_factory.mktemp("fuzz"), "--max-body-mb", "0.02", "--max-seconds", "0.2",
                      "--hard-timeout-s", "20") as a:
        yield a


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                          max_leaves=10)
shapes = st.dictionaries(st.sampled_from(["x", "y", ""]),
                         st.one_of(st.lists(st.integers(-2, 64), max_size=5), json_value), max_size=2)
timing = st.dictionaries(st.sampled_from(TIMING), st.one_of(st.integers(-5, 10**6),
                                                             st.floats(-1, 2), json_leaf), max_size=4)
meta_dict = st.fixed_dictionaries({}, optional={
    "input_shapes": shapes, "timing": timing, "provider": st.sampled_from(["cpu", "cuda", "trt", "x"]),
    "threads": st.one_of(st.integers(-1, 4), json_leaf), "model_bytes": st.one_of(st.integers(-5, 5000), json_leaf),
    "ref_latency_ms": st.one_of(st.floats(-1, 10), json_leaf), "path": st.just("/etc/passwd"),
})
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
meta_header = st.one_of(st.none(), header_text, meta_dict.map(lambda d: json.dumps(d, allow_nan=True)),
                        st.dictionaries(st.sampled_from(SETTINGS), json_value, max_size=3).map(json.dumps))


@st.composite
def bodies(draw):
    kind = draw(st.sampled_from(["random", "model", "prefix", "flipped", "oversize", "empty", "model+ref"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "model":
        return MODEL
    if kind == "model+ref":
        return MODEL + MODEL
    if kind == "prefix":
        return MODEL[: draw(st.integers(1, len(MODEL) - 1))]
    if kind == "flipped":
        b = bytearray(MODEL)
        for i in draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[i] ^= draw(st.integers(1, 255))
        return bytes(b)
    if kind == "oversize":
        return b"\0" * draw(st.integers(20 * 1024 + 1, 64 * 1024))
    return b""


paths = st.one_of(st.sampled_from(["/health", "/info", "/measure", "/", "/measure/", "/../../etc/passwd",
                                   "/info?path=/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//measure",
                                   "/measure?token=x"]),
                  st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#?%"),
                          max_size=20).map(lambda s: "/" + s)
                  # '//x:y' is a host to the client (httpx refuses '//::' before sending): not a path
                  .filter(lambda p: not p.startswith("//")))
extra_headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept", "X-Forwarded-For", "X-Hwnas-Path", "Expect", "Cookie", "Origin"]),
    header_text, max_size=3)


REQUESTS = dict(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]), path=paths,
                auth=st.one_of(st.sampled_from(["right", "wrong", None]), header_text), meta=meta_header,
                body=bodies(), headers=extra_headers)
QUICK = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@QUICK
@given(**REQUESTS)
def test_random_requests_get_documented_answers(agent, method, path, auth, meta, body, headers):
    check_random_request(agent, method, path, auth, meta, body, headers)


@pytest.mark.slow  # the same property over 300 requests (make test-slow; CI runs it)
@settings(QUICK, max_examples=300)
@given(**REQUESTS)
def test_many_random_requests_get_documented_answers(agent, method, path, auth, meta, body, headers):
    check_random_request(agent, method, path, auth, meta, body, headers)


def check_random_request(agent, method, path, auth, meta, body, headers):
    h = dict(headers)
    if auth == "right":
        h["Authorization"] = f"Bearer {agent.token}"
    elif auth == "wrong":
        h["Authorization"] = "Bearer definitely-not-the-token"
    elif auth:
        h["Authorization"] = auth
    if meta is not None:
        h["X-Hwnas-Meta"] = meta
    with httpx.Client(base_url=agent.url, timeout=30) as c:
        try:
            r = c.request(method, path, content=body or None, headers=h)
        except httpx.LocalProtocolError:
            return  # httpx itself refused to send it (an illegal header); nothing reached the agent
    assert r.status_code in DOCUMENTED, (r.status_code, r.text[:300])
    if r.status_code != 200 and method != "HEAD":
        assert r.json()["error"]  # one line naming the problem
    if r.status_code == 200 and path.startswith("/measure"):
        assert auth == "right" and r.json()["latency_ms"] >= 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=512))
def test_raw_garbage_on_the_socket_never_takes_the_agent_down(agent, raw):
    with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as s:
        s.sendall(raw + b"\r\n\r\n")
        try:
            head = s.recv(64)
        except (TimeoutError, ConnectionResetError):
            head = b""
    assert head == b"" or head.startswith(b"HTTP/1.1 ")
    assert not head.startswith(b"HTTP/1.1 5")
    assert httpx.get(agent.url + "/health", timeout=10).status_code == 200


def test_after_the_fuzz_the_agent_serves_and_wrote_nothing_outside(agent):
    with agent.client() as c:
        assert c.get("/health").status_code == 200
        r = c.post("/measure", content=MODEL,
                   headers={"X-Hwnas-Meta": json.dumps({"timing": {"max_s": 0.1, "warmup_s": 0.0}})})
        assert r.status_code == 200, r.text
    assert agent.blocked_imports() == []
    assert agent.stray_files() == []
    assert agent.proc is not None and agent.proc.poll() is None

"""Issue 15: pool workers die with their parent; a Ray worker killed mid-run still gives a
complete, duplicate-free result equal to the serial one (runs in CI: the dist extra is installed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests import needs

REPO = Path(__file__).resolve().parents[2]


def _init(*args, **kwargs) -> None:
    pass


def _pid(_item) -> int:
    return os.getpid()


def _square_or_die_once(item):
    """item = (x, marker): the first task to claim the marker kills its own worker process."""
    x, marker = item
    if marker is not None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return x * x


SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from hwnas.search.supernet.executor import create_executor
from tests.reliability.test_workers import _init, _pid
ex = create_executor("process", 2).start(_init, ())
print(" ".join(map(str, sorted(set(ex.map(_pid, range(40)))))), flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_pool_workers_die_with_their_parent():
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT.format(repo=str(REPO))], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert pids and all(psutil.pid_exists(p) for p in pids)
        parent.send_signal(signal.SIGKILL)  # as `kill -9` of hwnas sample / search
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def ray_local():
    ray = needs.ray()
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_a_ray_worker_killed_mid_run_still_gives_a_complete_duplicate_free_result(ray_local, tmp_path):
    from hwnas.search.supernet.executor import create_executor

    items = [(x, None) for x in range(12)]
    items[5] = (5, str(tmp_path / "killed-once"))
    serial = list(create_executor("serial").start(_init, ()).map(_square_or_die_once, [(x, None) for x in range(12)]))
    with create_executor("ray", 2).start(_init, ()) as ex:
        got = list(ex.map(_square_or_die_once, items))
        assert ex.replaced == 1  # a worker really died and was replaced
    assert (tmp_path / "killed-once").exists()
    assert got == serial == [x * x for x in range(12)]


@pytest.mark.slow
def test_ray_search_equals_the_serial_run(ray_local, tmp_path):
    """The search pipeline on Ray (local) against the serial run (the Ray test of
    tests/search/test_search_pipeline.py, kept here without an importorskip on CI)."""
    import numpy as np
    import pandas as pd
    from hwnas.bench.engine import search
    from hwnas.search.spaces import create_space

    sp = create_space("nb201")
    archs = list(sp.iter_all())
    a = np.asarray(archs)
    strs = [sp.to_str(x) for x in archs]
    pd.DataFrame({"arch_idx": range(len(a)), "arch_str": strs, "acc": 60 + a.sum(1) * 0.7}).to_csv(tmp_path / "acc.csv", index=False)
    pd.DataFrame({"arch_idx": range(len(a)), "arch_str": strs, "dev": 1 + a.sum(1) * 0.3}).to_csv(tmp_path / "lat_ms.csv", index=False)
    args = ("nb201", ["random"], f"table:{tmp_path}/acc.csv:acc", [f"latency_ms<=3@table:{tmp_path}/lat_ms.csv:dev"], (10,), 3)
    serial = search.run(*args, tmp_path / "s", progress=False)
    par = search.run(*args, tmp_path / "r", executor="ray", workers=2, progress=False)
    cols = ["method", "seed", "arch_str", "accuracy", "queries"]
    pd.testing.assert_frame_equal(serial[cols], par[cols])
    assert not par.duplicated(["method", "seed"]).any()


RAY_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from hwnas.search.supernet.executor import create_executor
from tests.reliability.test_workers import _init

def nap(s):
    time.sleep(s)
    return s

ex = create_executor("ray", 1).start(_init, ())
print("started", flush=True)
print(list(ex.map(nap, [600])), flush=True)
"""


def _ray_helpers(pid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if p.name().startswith("ray::") or any("/ray/" in c for c in p.cmdline()[:2]):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.mark.slow  # starts a local Ray (20-40 s on a loaded machine)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_ray_run_leaves_none_of_rays_helpers(sig):
    """Killing a `--executor ray` run (kill -9 too) ends the local Ray it started: before, Ray's
    RuntimeEnvAgent and DashboardAgent lived on for a minute or more after kill -9."""
    needs.ray()
    driver = subprocess.Popen([sys.executable, "-c", RAY_SCRIPT.format(repo=str(REPO))], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, start_new_session=True)
    helpers: list[psutil.Process] = []
    try:
        assert driver.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the raylet starts its agents after ray.init returns
            helpers = _ray_helpers(driver.pid)
            names = {p.name() for p in helpers if p.is_running()}
            if {"ray::RuntimeEnvAgent", "ray::_RayWorker.run"} <= names:
                break
            time.sleep(0.5)
        assert any(p.name() == "ray::RuntimeEnvAgent" for p in helpers), [p.name() for p in helpers]
        time.sleep(1.0)  # the reaper notes the helpers every 0.5 s
        os.kill(driver.pid, sig)
        driver.wait(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p.pid) for p in helpers):
            time.sleep(0.5)
        left = [p.name() for p in helpers if _alive(p.pid)]
        assert not left, f"Ray's helpers outlived the run by 20 s: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()
        for p in helpers:
            try:
                if p.is_running():
                    p.kill()
            except psutil.Error:
                pass

"""Where many subnet evaluations run: a tiny executor interface with a registry.

An executor starts workers once (`start(init, initargs)`: each worker loads the supernet and the
data), then maps picklable tasks over them, keeping order. `serial` runs in-process, `process`
uses a spawn-context process pool with one torch thread per worker, `ray` one Ray actor per
worker (a local Ray, or a cluster through RAY_ADDRESS).

Workers never outlive their parent: a process-pool worker asks the kernel to kill it when the
parent dies (PR_SET_PDEATHSIG on Linux, a watchdog thread elsewhere), so a killed `hwnas sample`
or `search --executor process` leaves no 400 MB orphans behind. A Ray actor that dies mid-run is
replaced and its task run again, so the result stays complete and free of duplicates. A local Ray
that the executor started stops with it: `close` shuts Ray down, SIGTERM / SIGHUP unwind the run
to `close`, and a small reaper process ends Ray's helpers when the driver is killed outright
(ray_reaper.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from hwnas.core.registry import Registry

_EXECUTORS = Registry("executor")
register_executor = _EXECUTORS.register
list_executors = _EXECUTORS.names


def create_executor(name: str = "process", workers: int | None = None) -> Executor:
    if name not in _EXECUTORS:
        raise LookupError(f"unknown executor {name!r}; known: {', '.join(list_executors())}")
    return _EXECUTORS[name](workers)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class Executor:
    """Base: `start` once, `map` many times, `close` at the end."""

    workers: int = 1

    def start(self, init: Callable, initargs: tuple) -> Executor:
        raise NotImplementedError

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@register_executor("serial")
class SerialExecutor(Executor):
    def __init__(self, workers: int | None = None):
        self.workers = 1

    def start(self, init, initargs):
        init(*initargs, threads=None)
        return self

    def map(self, fn, items):
        return map(fn, items)


@register_executor("process")
class ProcessExecutor(Executor):
    """Spawned processes (fork is unsafe once torch has started its thread pools)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def start(self, init, initargs):
        self.close()
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                         initializer=_worker_start, initargs=(os.getpid(), init, *initargs, 1))
        return self

    def map(self, fn, items):
        if self._pool is None:
            raise RuntimeError("executor not started")
        return self._pool.map(fn, items)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@register_executor("ray")
class RayExecutor(Executor):
    """Ray actors, one CPU each, initialised once like the process pool's workers.

    `RAY_ADDRESS` (or `address=`) joins a running cluster, so subnet evaluations and search runs
    scale past one machine; without it a local Ray starts. Every node needs this package
    installed (`pip install hwnas[dist]`), as it does for any Ray job importing project code.
    """

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.workers = workers or default_workers()
        self.address = address or os.environ.get("RAY_ADDRESS")
        self._actors: list = []
        self._pool = None
        self._owns_ray = False  # this executor started a local Ray: it stops it
        self._reaper: subprocess.Popen | None = None
        self._saved_handlers: dict[int, object] = {}

    def start(self, init, initargs):
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise RuntimeError("executor 'ray' needs Ray: pip install 'hwnas[dist]' (or ray>=2.9)") from None
        self.close()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            if not self.address:
                self._own_local_ray(ray)
        self._actor_cls = ray.remote(num_cpus=1)(_RayWorker)
        self._init = (init, initargs)
        self._actors = [self._actor_cls.remote(init, initargs) for _ in range(self.workers)]
        self._pool = ActorPool(self._actors)
        self.replaced = 0  # actors that died and were replaced (tests read it)
        return self

    def map(self, fn, items):
        if self._pool is None:
            raise RuntimeError("executor not started")
        return self._map(fn, list(items))

    def _map(self, fn, items):
        """Results in input order, yielded as soon as they are ready. A task whose actor died
        (killed worker, lost node) runs again on a fresh actor; a task that raised re-raises."""
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        results: dict[int, object] = {}
        queue, pending, free = deque(range(len(items))), {}, list(self._actors)
        next_out, deaths = 0, 0
        while next_out < len(items):
            while queue and free:
                a, i = free.pop(), queue.popleft()
                pending[a.run.remote(fn, items[i])] = (i, a)
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ready[0])
            try:
                results[i] = ray.get(ready[0])
                free.append(a)
            except (RayActorError, WorkerCrashedError):
                deaths += 1
                if deaths > 3 * self.workers + 3:
                    raise RuntimeError(f"Ray workers keep dying ({deaths} times); see the Ray logs") from None
                new = self._actor_cls.remote(*self._init)
                self._actors[self._actors.index(a)] = new
                self.replaced += 1
                free.append(new)
                queue.appendleft(i)
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1

    def close(self):
        if self._actors:
            import ray

            for a in self._actors:
                try:
                    ray.kill(a)
                except Exception:  # noqa: BLE001 - Ray already down (a signal's unwinding)
                    pass
        self._actors, self._pool = [], None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
        if self._reaper is not None:
            self._reaper.stdin.close()  # the reaper ends what shutdown left, then exits
            try:
                self._reaper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._reaper = None
        for sig, handler in self._saved_handlers.items():
            signal.signal(sig, handler)
        self._saved_handlers = {}

    def _own_local_ray(self, ray) -> None:
        """This executor started Ray's local processes: stop them with the run, however it ends."""
        self._owns_ray = True
        ray_dir = os.path.dirname(ray.__file__)
        self._reaper = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "ray_reaper.py"), str(os.getpid()), ray_dir],
            stdin=subprocess.PIPE, start_new_session=True)  # its own session: a Ctrl-C to the job spares it
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    self._saved_handlers[sig] = signal.signal(sig, _exit_on_signal)


def _exit_on_signal(signum, frame):
    """SIGTERM / SIGHUP during a Ray run: unwind (so `close` shuts Ray down) instead of dying at once."""
    raise SystemExit(128 + signum)


def _worker_start(parent_pid: int, init: Callable, *initargs) -> None:
    """Initializer of a pool worker: die with the parent, then the real initializer."""
    die_with_parent(parent_pid)
    init(*initargs)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have this process killed when its parent dies (Linux: PR_SET_PDEATHSIG; elsewhere a
    daemon thread that watches the parent pid)."""
    parent_pid = parent_pid or os.getppid()
    done = False
    if os.name == "posix" and os.uname().sysname == "Linux":
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            done = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            done = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not done:
        def watch():
            import time

            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class _RayWorker:
    def __init__(self, init, initargs):
        init(*initargs, 1)

    def run(self, fn, item):
        return fn(item)

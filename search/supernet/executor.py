"""Where many subnet evaluations run: a tiny executor interface with a registry.

An executor starts workers once (`start(init, initargs)`: each worker loads the supernet and the
data), then maps picklable tasks over them, keeping order. `serial` runs in-process, `process`
uses a spawn-context process pool with one torch thread per worker, `ray` one Ray actor per
worker (a local Ray, or a cluster through RAY_ADDRESS).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from core.registry import Registry

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
                                         initializer=init, initargs=(*initargs, 1))
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

    def start(self, init, initargs):
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise RuntimeError("executor 'ray' needs Ray: pip install 'hwnas[dist]' (or ray>=2.9)") from None
        self.close()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self._actors = [actor.remote(init, initargs) for _ in range(self.workers)]
        self._pool = ActorPool(self._actors)
        return self

    def map(self, fn, items):
        if self._pool is None:
            raise RuntimeError("executor not started")
        return self._pool.map(lambda a, item: a.run.remote(fn, item), list(items))

    def close(self):
        if self._actors:
            import ray

            for a in self._actors:
                ray.kill(a)
        self._actors, self._pool = [], None


class _RayWorker:
    def __init__(self, init, initargs):
        init(*initargs, 1)

    def run(self, fn, item):
        return fn(item)

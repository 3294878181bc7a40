"""Where many subnet evaluations run: a tiny executor interface with a registry.

An executor starts workers once (`start(init, initargs)`: each worker loads the supernet and the
data), then maps picklable tasks over them, keeping order. `serial` runs in-process, `process`
uses a spawn-context process pool with one torch thread per worker. A Ray backend only needs
another class with the same three methods (`start`, `map`, `close`) registered as "ray".
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

_EXECUTORS: dict[str, Callable[..., Executor]] = {}


def register_executor(name: str):
    def deco(cls):
        _EXECUTORS[name] = cls
        return cls

    return deco


def list_executors() -> list[str]:
    return sorted(_EXECUTORS)


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

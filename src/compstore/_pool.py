"""The one shared thread pool: chunk codecs, hashing and file writes release the GIL.

Nothing here ever waits for a task that has not started, so nested use (an
array written on the pool encoding its chunks in parallel) cannot deadlock a
pool whose workers are all busy:

- `submit` from a pool thread runs the work inline, on that thread;
- `parallel_map` shares its items between the calling thread and pool helpers:
  the caller works through them itself, a helper that starts late finds none
  left, and the caller waits only for items a running helper has claimed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["in_worker", "parallel_map", "submit"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_executor: ThreadPoolExecutor | None = None
_create_lock = threading.Lock()
_local = threading.local()


def _mark_worker() -> None:
    _local.worker = True


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _create_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=min(8, os.cpu_count() or 1),
                    thread_name_prefix="compstore",
                    initializer=_mark_worker,
                )
    return _executor


def in_worker() -> bool:
    """Whether the calling thread is one of the pool's."""
    return getattr(_local, "worker", False)


def parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], parallel: bool) -> list[_R]:
    """Map ``fn`` over ``items``: with ``parallel``, the calling thread and pool helpers share them.

    Results keep the order of ``items``. The first exception raised by ``fn``
    is re-raised once every item already started has finished (no further
    item starts after it). From a pool thread too, the other workers help as
    they come free: an array encoded on the pool is not left to one thread.
    """
    items = list(items)
    if not parallel or len(items) < 2:
        return [fn(item) for item in items]
    return _SharedMap(fn, items).run()


def _nothing(_item: Any) -> None:
    """The function of a finished map (a late helper finds no items to give it)."""


class _SharedMap:
    """One `parallel_map`: items claimed one at a time by the caller and by helpers."""

    def __init__(self, fn: Callable[[_T], _R], items: list[_T]) -> None:
        self._fn: Callable[[Any], Any] = fn
        self._items = items
        self._results: list[Any] = [None] * len(items)
        self._next = 0
        self._running = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def run(self) -> list[Any]:
        pool = _pool()
        # The caller is one worker; the others may help (a pool thread is one of them).
        n_helpers = min(pool._max_workers - 1, len(self._items) - 1)
        helpers = [pool.submit(self._work) for _ in range(n_helpers)]
        self._work()
        for helper in helpers:
            helper.cancel()  # not started: it would find nothing, but would keep this map alive
        with self._lock:
            while self._running:
                self._idle.wait()
        error, results = self._error, self._results
        # A helper still queued (cancelled or not) holds this map until a worker pops
        # it: let go of the function, the items and the results.
        self._fn, self._items, self._results, self._error = _nothing, [], [], None
        if error is not None:
            raise error
        return results

    def _claim(self) -> int | None:
        with self._lock:
            if self._error is not None or self._next >= len(self._items):
                return None
            self._running += 1
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        while (i := self._claim()) is not None:
            try:
                self._results[i] = self._fn(self._items[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised by run(), in the caller
                with self._lock:
                    self._error = self._error or exc
            finally:
                with self._lock:
                    self._running -= 1
                    if not self._running:
                        self._idle.notify_all()


def submit(fn: Callable[..., _R], *args: Any) -> Future[_R]:
    """Run ``fn(*args)`` on the shared pool (at once, inline, on a pool thread)."""
    if not in_worker():
        return _pool().submit(fn, *args)
    future: Future[_R] = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # handed to whoever calls result(), as the pool would
        future.set_exception(exc)
    return future

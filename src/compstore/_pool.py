"""The one shared thread pool: chunk codecs, hashing and file writes release the GIL.

Work submitted from a pool thread runs inline on that thread, so nested use
(an array written on the pool encoding its chunks in parallel) never waits on
a pool whose workers are all waiting too.
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
    """Map ``fn`` over ``items``, on the shared pool when ``parallel`` (inline on a pool thread)."""
    items = list(items)
    if not parallel or len(items) < 2 or in_worker():
        return [fn(item) for item in items]
    return list(_pool().map(fn, items))


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

"""The shared pool: parallel_map and submit, and nested use that cannot deadlock."""

from __future__ import annotations

import threading
import time

import pytest

from compstore import _pool


def test_parallel_map_keeps_order_and_uses_the_pool() -> None:
    threads: set[str] = set()

    def square(x: int) -> int:
        threads.add(threading.current_thread().name)
        time.sleep(0.002)  # the caller would otherwise finish before a helper starts
        return x * x

    assert _pool.parallel_map(square, range(20), True) == [x * x for x in range(20)]
    assert any(name.startswith("compstore") for name in threads)
    threads.clear()
    assert _pool.parallel_map(square, range(5), False) == [0, 1, 4, 9, 16]
    assert threads == {threading.current_thread().name}


def test_nested_use_cannot_deadlock_a_full_pool() -> None:
    # Every worker submits and waits for more work: queued behind them, it would never run.
    in_workers = []

    def outer(i: int) -> list[int]:
        if _pool.in_worker():
            in_workers.append(i)
            inner = _pool.submit(lambda: threading.current_thread().name)
            assert inner.done()  # ran at once, on this very thread
            assert inner.result() == threading.current_thread().name
        time.sleep(0.002)  # long enough for the helpers to take items too
        return _pool.parallel_map(lambda x: x + i, range(3), True)

    assert not _pool.in_worker()
    width = 4 * (_pool._pool()._max_workers)
    assert _pool.parallel_map(outer, range(width), True) == [[i, i + 1, i + 2] for i in range(width)]
    assert in_workers, "the pool's workers took items too"


def test_the_caller_and_the_pool_share_one_map_from_a_worker_too() -> None:
    # An array encoded on a pool thread is not left to that thread alone.
    def inner(_: int) -> str:
        time.sleep(0.005)
        return threading.current_thread().name

    names = _pool.submit(lambda: _pool.parallel_map(inner, range(20), True)).result(timeout=10)
    if _pool._pool()._max_workers > 1:
        assert len(set(names)) > 1
    assert all(name.startswith("compstore") for name in names)


def test_a_failure_stops_new_items_and_is_raised_after_the_running_ones() -> None:
    started: list[int] = []
    finished: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 3:
            raise ValueError("item 3")
        time.sleep(0.05)  # the others are still running when item 3 fails
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="item 3"):
        _pool.parallel_map(work, range(200), True)
    assert len(started) < 200  # nothing new started once item 3 failed
    assert sorted(finished) == sorted(i for i in started if i != 3)  # the rest had finished


def test_an_inline_failure_is_the_future_s() -> None:
    def outer() -> None:
        future = _pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            future.result()

    _pool.submit(outer).result(timeout=10)


def test_a_finished_map_is_not_kept_alive_by_its_queued_helpers() -> None:
    # With every worker busy, the helpers of a map stay queued; once the caller has
    # done all the items alone, they are cancelled and hold nothing.
    import gc
    import weakref

    release = threading.Event()
    blockers = [_pool.submit(release.wait, 10) for _ in range(_pool._pool()._max_workers)]
    try:
        class Payload:
            size = 1 << 20

        payload = Payload()
        ref = weakref.ref(payload)

        def fn(i: int, payload: Payload = payload) -> int:
            return payload.size + i

        assert _pool.parallel_map(fn, range(4), True) == [(1 << 20) + i for i in range(4)]
        del payload, fn
        gc.collect()
        assert ref() is None
    finally:
        release.set()
        for blocker in blockers:
            blocker.result(timeout=10)

"""The shared pool: parallel_map and submit, and nested use that cannot deadlock."""

from __future__ import annotations

import threading

import pytest

from compstore import _pool


def test_parallel_map_keeps_order_and_uses_the_pool() -> None:
    threads: set[str] = set()

    def square(x: int) -> int:
        threads.add(threading.current_thread().name)
        return x * x

    assert _pool.parallel_map(square, range(20), True) == [x * x for x in range(20)]
    assert any(name.startswith("compstore") for name in threads)
    threads.clear()
    assert _pool.parallel_map(square, range(5), False) == [0, 1, 4, 9, 16]
    assert threads == {threading.current_thread().name}


def test_nested_use_runs_inline_so_a_full_pool_cannot_deadlock() -> None:
    # Every worker submits and waits for more work: queued behind them, it would never run.
    def outer(i: int) -> list[int]:
        assert _pool.in_worker()
        inner = _pool.submit(lambda: threading.current_thread().name)
        assert inner.done()  # ran at once, on this very thread
        assert inner.result() == threading.current_thread().name
        return _pool.parallel_map(lambda x: x + i, range(3), True)

    assert not _pool.in_worker()
    width = 4 * (_pool._pool()._max_workers)
    assert _pool.parallel_map(outer, range(width), True) == [[i, i + 1, i + 2] for i in range(width)]


def test_an_inline_failure_is_the_future_s() -> None:
    def outer() -> None:
        future = _pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            future.result()

    _pool.submit(outer).result(timeout=10)

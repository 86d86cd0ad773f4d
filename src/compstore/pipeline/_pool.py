"""The local process pool: each unit starts as soon as the units writing its inputs have finished.

There is no barrier between tasks: a coadd of one tract runs while jointcal
of another is still going. The parent keeps the plan (`UnitPlan`): when a
unit finishes, each unit reading its outputs whose inputs are now all
resolved is decided (skipped if an input's unit failed or was skipped, or
if its outputs exist) or submitted. Workers are spawned, receive plain data
only (see ``_workers.py``) and die with the parent (``_parent.py``).
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._progress import progress_counter
from ._executor import QuantumResult
from ._graph import QuantumGraph
from ._parent import die_with_parent
from ._workers import UnitPlan, decide, unit_payload, worker_run

__all__ = ["run_in_pool"]

_WORKER_CACHE: dict[str, Any] = {}


def _pool_unit(payload: dict[str, Any]) -> dict[str, Any]:
    # Runs in a spawned worker process: one Butler per process, kept between units.
    return worker_run(payload, _WORKER_CACHE)


def _failed(graph: QuantumGraph, i: int, exc: BaseException) -> QuantumResult:
    quantum = graph.quanta[i]
    if isinstance(exc, BrokenProcessPool):
        # A worker died (killed, out of memory): its unit failed, without a Python traceback.
        return QuantumResult(
            quantum.task_label,
            quantum.data_id,
            "failed",
            f"worker process died: {exc} (if workers die at start-up: with jobs > 1 the "
            "main script is re-imported by each worker, so guard its top level with "
            "`if __name__ == '__main__':`)",
            "",
        )
    # e.g. a worker could not import the task class
    return QuantumResult(
        quantum.task_label,
        quantum.data_id,
        "failed",
        f"{type(exc).__name__}: {exc}",
        "".join(traceback.format_exception(exc)),
    )


def run_in_pool(
    graph: QuantumGraph, plan: UnitPlan, base: dict[str, Any], jobs: int, *, progress: bool = False
) -> list[QuantumResult]:
    """Run the units of ``graph`` in ``jobs`` worker processes, each as soon as its inputs exist.

    Parameters
    ----------
    graph : `QuantumGraph`
    plan : `UnitPlan`
        Dependencies and existing outputs of ``graph.quanta``.
    base : `dict`
        The plain data every payload shares (`base_payload`).
    jobs : `int`
        Worker processes.
    progress : `bool`, optional
        Draw one bar over all units (stderr, terminals only).

    Returns
    -------
    results : `list` [`QuantumResult`]
        One per unit, in graph order.
    """
    n = len(graph.quanta)
    results: list[QuantumResult | None] = [None] * n
    broken = [False] * n
    waiting = [len(deps) for deps in plan.deps]
    dependents = plan.dependents()
    ready = deque(i for i in range(n) if waiting[i] == 0)
    running: dict[Future[dict[str, Any]], int] = {}
    pool: ProcessPoolExecutor | None = None

    def finish(i: int, result: QuantumResult, is_broken: bool) -> None:
        results[i], broken[i] = result, is_broken
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)

    try:
        with progress_counter(n, enabled=progress, desc="run", unit="unit") as advance:
            while ready or running:
                while ready:
                    i = ready.popleft()
                    upstream = [(results[j], broken[j]) for j in plan.deps[i]]
                    decided = decide(graph.quanta[i], upstream, plan.exists[i], graph.output_run)  # type: ignore[arg-type]
                    if decided is not None:
                        finish(i, *decided)
                        advance(1)
                        continue
                    if pool is None:
                        pool = ProcessPoolExecutor(
                            max_workers=jobs,
                            mp_context=multiprocessing.get_context("spawn"),
                            # Killed with this process: no worker goes on writing queued units.
                            initializer=die_with_parent,
                            initargs=(os.getpid(),),
                        )
                    future = pool.submit(_pool_unit, unit_payload(base, graph.quanta[i], False))
                    running[future] = i
                if running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        try:
                            result = QuantumResult.from_dict(future.result())
                        except Exception as exc:  # a worker died, or failed outside the task
                            result = _failed(graph, i, exc)
                        finish(i, result, result.status == "failed")
                        advance(1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]

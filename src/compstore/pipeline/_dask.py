"""The Dask executor: units of work as a Dask dependency graph, on a local or remote cluster.

Each unit is submitted once, with the futures of the units writing its
inputs as arguments, so the scheduler starts it as soon as those have
finished: there is no barrier between tasks (a coadd of one tract does not
wait for jointcal of another).

What crosses to a worker is plain data: Dask pickles the call, which here is
`dask_unit` (a module-level function, pickled by reference: its module path)
and a JSON string holding the repository path, collections, run, the
pipeline as a dict and the unit (see ``_workers.py``), plus the result
dicts of the units it depends on. A worker opens its own Butler, so every
worker must import ``compstore`` and the task classes, and see the
repository at the same absolute path, with the same registry.

``distributed`` is optional: it is imported here only, when a run asks for
Dask.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from types import ModuleType
from typing import Any

from .._progress import progress_counter
from ..errors import PipelineError
from ._executor import QuantumResult
from ._graph import QuantumGraph
from ._workers import UnitPlan, decide, unit_payload, worker_run

__all__ = ["dask_unit", "import_distributed", "run_on_dask"]

# One cache per worker thread: a Dask worker may run several units at once
# in threads, and a Butler is not shared between threads.
_LOCAL = threading.local()


def import_distributed() -> ModuleType:
    """Return the ``distributed`` module.

    Raises
    ------
    PipelineError
        If it is not installed (says how to install it, or run without Dask).
    """
    try:
        import distributed
    except ImportError as exc:
        raise PipelineError(
            f"executor='dask' needs the 'distributed' package ({exc}); install it with "
            "`pip install distributed` or run with the process pool (executor='process', jobs=N)"
        ) from None
    return distributed


def _blob(result: QuantumResult, broken: bool) -> dict[str, Any]:
    return {"result": result.to_dict(), "broken": broken}


def dask_unit(payload: str, *upstream: dict[str, Any]) -> dict[str, Any]:
    """Run one unit on a Dask worker (the function Dask is asked to call).

    Parameters
    ----------
    payload : `str`
        JSON: the unit and its repository, as made by `unit_payload`.
    *upstream : `dict`
        ``{"result": QuantumResult dict, "broken": bool}`` of each unit
        writing an input, in input order.

    Returns
    -------
    outcome : `dict`
        The same shape, for this unit: its result and whether it is broken
        (failed, or skipped because of a failure), so readers of its outputs
        are skipped.
    """
    data = json.loads(payload)
    from ._graph import quantum_from_dict

    quantum = quantum_from_dict(data["quantum"])
    resolved = [(QuantumResult.from_dict(u["result"]), bool(u["broken"])) for u in upstream]
    decided = decide(quantum, resolved, data["exists"], data["run"])
    if decided is not None:
        return _blob(*decided)
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    result = QuantumResult.from_dict(worker_run(data, cache))
    return _blob(result, result.status == "failed")


def _client(distributed: ModuleType, jobs: int, scheduler: str | None) -> tuple[Any, Any]:
    if scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: other runs may hold :8787
            silence_logs=logging.ERROR,
        )
        try:
            return cluster, distributed.Client(cluster)
        except BaseException:
            cluster.close()  # its worker processes would outlive the failed run
            raise
    try:
        return None, distributed.Client(scheduler)  # dask config: distributed.comm.timeouts.connect
    except (OSError, TimeoutError, ValueError) as exc:
        raise PipelineError(
            f"cannot reach the Dask scheduler at {scheduler!r}: {exc}; start one with "
            "`dask scheduler` (and workers with `dask worker ADDR`) or leave out the scheduler "
            "to start a local cluster"
        ) from None


def run_on_dask(
    graph: QuantumGraph,
    plan: UnitPlan,
    base: dict[str, Any],
    jobs: int,
    scheduler: str | None,
    *,
    progress: bool = False,
) -> list[QuantumResult]:
    """Run the units of ``graph`` on a Dask cluster, each as soon as its inputs exist.

    Parameters
    ----------
    graph : `QuantumGraph`
    plan : `UnitPlan`
        Dependencies and existing outputs of ``graph.quanta``.
    base : `dict`
        The plain data every payload shares (`base_payload`).
    jobs : `int`
        Workers of the local cluster started when ``scheduler`` is `None`.
    scheduler : `str` or `None`
        Address of a running scheduler.
    progress : `bool`, optional
        Draw one bar over the units sent to the cluster (stderr, terminals only).

    Returns
    -------
    results : `list` [`QuantumResult`]
        One per unit, in graph order.

    Raises
    ------
    PipelineError
        If ``distributed`` is missing or the scheduler cannot be reached.
    """
    distributed = import_distributed()
    n = len(graph.quanta)
    results: list[QuantumResult | None] = [None] * n
    broken = [False] * n
    token = uuid.uuid4().hex
    cluster = client = None
    futures: dict[int, Any] = {}
    try:
        for i, quantum in enumerate(graph.quanta):  # graph order: producers come first
            if not any(j in futures for j in plan.deps[i]):
                # Every input's unit is decided here: so is this one, if it can be (a
                # re-run whose outputs all exist starts no cluster).
                resolved = [(results[j], broken[j]) for j in plan.deps[i]]
                decided = decide(quantum, resolved, plan.exists[i], graph.output_run)  # type: ignore[arg-type]
                if decided is not None:
                    results[i], broken[i] = decided
                    continue
            upstream = [
                futures[j] if j in futures else _blob(results[j], broken[j])  # type: ignore[arg-type]
                for j in plan.deps[i]
            ]
            if client is None:
                cluster, client = _client(distributed, jobs, scheduler)
            payload = json.dumps(unit_payload(base, quantum, plan.exists[i]))
            futures[i] = client.submit(
                dask_unit,
                payload,
                *upstream,
                key=f"compstore-{quantum.task_label}-{token}-{i}",
                pure=False,
            )
        if futures:
            with progress_counter(len(futures), enabled=progress, desc="run", unit="unit") as advance:
                for _ in distributed.as_completed(list(futures.values())):
                    advance(1)
        for i, future in sorted(futures.items()):  # graph order: a unit's producers first
            results[i], broken[i] = _collect(graph, i, future, plan, results, broken)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return [r for r in results if r is not None]


def _collect(
    graph: QuantumGraph,
    i: int,
    future: Any,
    plan: UnitPlan,
    results: list[QuantumResult | None],
    broken: list[bool],
) -> tuple[QuantumResult, bool]:
    if future.status == "finished":
        outcome = future.result()
        return QuantumResult.from_dict(outcome["result"]), bool(outcome["broken"])
    # Dask marks the readers of an erred unit erred too: those were never run.
    quantum = graph.quanta[i]
    upstream = [(results[j], broken[j]) for j in plan.deps[i]]
    decided = decide(quantum, upstream, False, graph.output_run)  # type: ignore[arg-type]
    if decided is not None:
        return decided
    exc = future.exception()
    # e.g. a worker died (KilledWorker) or could not import compstore or the task class
    result = QuantumResult(
        quantum.task_label,
        quantum.data_id,
        "failed",
        f"{type(exc).__name__}: {exc}",
        "".join(traceback.format_exception(exc)) if exc is not None else "",
    )
    return result, True

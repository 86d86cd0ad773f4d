"""What the parallel executors share: plain-data payloads, the worker entry point, the unit plan.

A unit of work crosses to a worker process (of the local process pool, or of
a Dask cluster, possibly on another host) as plain data only: the
repository path, the input collections, the output run, the pipeline as a
dict of task class paths and configs, and the unit as a dict of str/int
(`quantum_to_dict`). The worker opens its own Butler and imports the task
classes by module path; nothing from the repository (no Butler, connection,
dataset or object) is ever pickled.

`UnitPlan` holds, per unit, the units it reads from (in the order a serial
run would look for a failed one) and whether its outputs exist already;
`decide` applies the serial executor's rules to a unit whose inputs are
resolved: skipped if an input comes from a failed or skipped unit, skipped
if its outputs exist, else run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PipelineError
from ..registry import DataId
from ._executor import QuantumResult, run_quantum
from ._graph import QuantumGraph, quantum_from_dict, quantum_to_dict
from ._pipeline import Pipeline
from ._registry import class_path
from ._task import PredictedRef, Quantum, Task

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = [
    "UnitPlan",
    "base_payload",
    "decide",
    "make_plan",
    "unit_payload",
    "worker_pipeline_dict",
    "worker_run",
]


def worker_pipeline_dict(pipeline: Pipeline) -> dict[str, Any]:
    """Return ``pipeline`` as plain data that a worker process can rebuild it from.

    Raises
    ------
    PipelineError
        If a task class cannot be imported by module path (defined inside a
        function, or typed into an interactive session).
    """
    # Workers import task classes by module path, so names registered only in
    # this process (register_task) still resolve there.
    tasks = {}
    for taskdef in pipeline:
        cls = taskdef.task_class
        if "<locals>" in cls.__qualname__:
            raise PipelineError(
                f"task {taskdef.label!r} ({cls.__qualname__}) is defined inside a function, so "
                "worker processes cannot import it; define it at module level or use jobs=1"
            )
        if cls.__module__ == "__main__" and not getattr(sys.modules["__main__"], "__file__", None):
            raise PipelineError(
                f"task {taskdef.label!r} ({cls.__qualname__}) is defined in an interactive session, "
                "so worker processes cannot import it; move it to a module or use jobs=1"
            )
        tasks[taskdef.label] = {"class": class_path(cls), "config": dict(taskdef.config)}
    return {"tasks": tasks}


def base_payload(butler: Butler, graph: QuantumGraph, pipeline_dict: dict[str, Any]) -> dict[str, Any]:
    """Return what every unit's payload shares: repository, collections, run, pipeline."""
    # Absolute: a Dask worker's working directory is not ours. A Butler over several
    # repositories sends them all, in order (the worker opens the same chain).
    # (A repository on object storage is its s3:// URL, and its workers cache what
    # they read where this Butler does.)
    members = getattr(butler, "_members", None)
    root: str | list[str] = (
        [m._repo.location for m in members] if members else butler._repo.location
    )
    local_cache, local_cache_bytes = butler._local_cache
    return {
        "root": root,
        "collections": list(graph.input_collections),
        "run": graph.output_run,
        "pipeline": pipeline_dict,
        "local_cache": None if local_cache is None else str(Path(local_cache).expanduser().resolve()),
        "local_cache_bytes": local_cache_bytes,
    }


def worker_run(payload: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    """Run one unit described by plain data ``payload``; return its result as plain data.

    ``cache`` keeps the Butler, pipeline and tasks between units of one
    run (one dict per worker process or thread: a Butler is not shared
    between threads).
    """
    from ..butler import Butler  # a lower layer must not import the Butler at module level

    key = json.dumps([payload["root"], payload["collections"], payload["run"], payload["pipeline"],
                      payload.get("local_cache")])
    if cache.get("key") != key:
        cache.clear()
        cache["key"] = key
        cache["butler"] = Butler(
            payload["root"], collections=payload["collections"], run=payload["run"],
            local_cache=payload.get("local_cache"), local_cache_bytes=payload.get("local_cache_bytes"),
        )
        cache["pipeline"] = Pipeline.from_dict(payload["pipeline"], source="worker")
        cache["tasks"] = {}
    tasks: dict[str, Task] = cache["tasks"]
    label = payload["quantum"]["task_label"]
    if label not in tasks:
        tasks[label] = cache["pipeline"].make_task(label)
    quantum = quantum_from_dict(payload["quantum"])
    return run_quantum(cache["butler"], tasks[label], quantum).to_dict()


@dataclass(frozen=True)
class UnitPlan:
    """Per unit of ``graph.quanta`` (same index): whom it waits for, and whether it is done.

    Attributes
    ----------
    deps : `list` [`list` [`int`]]
        Indices of the units writing its inputs, in the order of its inputs.
    exists : `list` [`bool`]
        True if skip-existing applies: every output is in the output run.
    """

    deps: list[list[int]]
    exists: list[bool]

    def dependents(self) -> list[list[int]]:
        """Return, per unit, the indices of the units that read its outputs."""
        out: list[list[int]] = [[] for _ in self.deps]
        for i, deps in enumerate(self.deps):
            for j in deps:
                out[j].append(i)
        return out


def _outputs_of(graph: QuantumGraph, quantum: Quantum) -> list[tuple[str, DataId]]:
    task = graph.tasks[quantum.task_label]
    return [(task.outputs[n].dataset_type, d) for n, ids in quantum.outputs.items() for d in ids]


def make_plan(graph: QuantumGraph, existing: set[tuple[str, DataId]]) -> UnitPlan:
    """Work out each unit's dependencies and whether its outputs all exist in ``existing``."""
    producers = graph.producers()
    deps: list[list[int]] = []
    exists: list[bool] = []
    for quantum in graph.quanta:
        order: dict[int, None] = {}  # ordered set: the first broken input names the blocker
        for refs in quantum.inputs.values():
            for ref in refs:
                if isinstance(ref, PredictedRef) and (ref.dataset_type, ref.data_id) in producers:
                    order.setdefault(producers[(ref.dataset_type, ref.data_id)])
        deps.append(list(order))
        outputs = _outputs_of(graph, quantum)
        exists.append(bool(outputs) and all(o in existing for o in outputs))
    return UnitPlan(deps, exists)


def decide(
    quantum: Quantum, upstream: list[tuple[QuantumResult, bool]], exists: bool, run: str
) -> tuple[QuantumResult, bool] | None:
    """Apply the serial executor's skip rules to a unit whose inputs are resolved.

    Parameters
    ----------
    quantum : `Quantum`
    upstream : `list` [`tuple` [`QuantumResult`, `bool`]]
        Results of the units writing its inputs, in input order, each with
        whether it is broken (failed, or skipped because of a failure).
    exists : `bool`
        Whether skip-existing applies to the unit.
    run : `str`
        The output run (named in the reason of an existing-outputs skip).

    Returns
    -------
    decided : `tuple` [`QuantumResult`, `bool`] or `None`
        The unit's result and whether it is broken, or `None`: run it.
    """
    blocker = next((result for result, broken in upstream if broken), None)
    if blocker is not None:
        reason = (
            f"an input comes from {blocker.task_label} {blocker.data_id!r}, which "
            f"{'failed' if blocker.status == 'failed' else 'was skipped'}"
        )
        return QuantumResult(quantum.task_label, quantum.data_id, "skipped", reason), True
    if exists:
        reason = f"outputs exist in run {run!r}"
        return QuantumResult(quantum.task_label, quantum.data_id, "skipped", reason), False
    return None


def unit_payload(base: dict[str, Any], quantum: Quantum, exists: bool) -> dict[str, Any]:
    """Return the plain-data payload of one unit."""
    return {**base, "quantum": quantum_to_dict(quantum), "exists": exists}

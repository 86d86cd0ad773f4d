"""Executors: run a pipeline's units of work through a Butler, serially, in a process pool or on Dask.

For each unit: read its inputs through the Butler, call `Task.run`, check the
outputs against the task's declarations, then write them all with one
`Butler.put_many` that also records provenance, so a unit's outputs become
visible together or not at all. A failing unit is reported (task label, data
ID, traceback); the others go on; units that read its outputs are skipped.

This module runs units one after another in this process; in parallel,
``_pool.py`` (a local process pool) and ``_dask.py`` (a Dask cluster) run
each unit as soon as its inputs exist. Their workers receive plain data only
(the repository path, collections, run, the pipeline as a dict, each unit as
a dict of str/int; see ``_workers.py``) and open their own Butler: nothing is
pickled but builtins, and a worker never depends on the parent's open
connections.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._progress import progress_bar
from ..errors import MissingDatasetTypeError, PipelineError, StorageClassTypeError, TaskError
from ..registry import DataId
from ..storage_classes import get_storage_class
from ._graph import QuantumGraph, build_graph
from ._pipeline import Pipeline
from ._registry import class_path
from ._task import PredictedRef, Quantum, Task

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = ["ExecutionReport", "QuantumResult", "execute", "run_quantum"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantumResult:
    """What happened to one unit of work.

    Attributes
    ----------
    task_label : `str`
    data_id : `DataId`
    status : `str`
        ``"succeeded"``, ``"failed"``, ``"skipped"`` or, in a dry run, ``"pending"``.
    reason : `str`
        For a failure, the error (``TypeName: message``); for a skip, why.
    traceback : `str`
        For a failure, the formatted traceback.
    output_ids : `tuple` [`str`, ...]
        UUIDs of the datasets written.
    seconds : `float`
        Wall time of the unit.
    started : `float`
        When the unit began, in seconds since the epoch (`time.time` of the
        process that ran it); 0 for a unit that did not run.
    """

    task_label: str
    data_id: DataId
    status: str
    reason: str = ""
    traceback: str = ""
    output_ids: tuple[str, ...] = ()
    seconds: float = 0.0
    started: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return plain data (crosses process boundaries)."""
        return {
            "task_label": self.task_label,
            "data_id": self.data_id.to_dict(),
            "status": self.status,
            "reason": self.reason,
            "traceback": self.traceback,
            "output_ids": list(self.output_ids),
            "seconds": self.seconds,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuantumResult:
        """Inverse of `to_dict`."""
        return cls(
            d["task_label"],
            DataId(d["data_id"]),
            d["status"],
            d["reason"],
            d["traceback"],
            tuple(d["output_ids"]),
            d["seconds"],
            d.get("started", 0.0),
        )

    def __str__(self) -> str:
        text = f"{self.status.upper()} {self.task_label} {self.data_id!r}"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass
class ExecutionReport:
    """What `execute` did.

    Attributes
    ----------
    graph : `QuantumGraph`
        The units of work.
    succeeded, failed, skipped : `list` [`QuantumResult`]
        Units by outcome; ``skipped`` holds units whose outputs existed
        already and units that read outputs of a failed unit (see ``reason``).
    pending : `list` [`QuantumResult`]
        In a dry run, the units that would run.
    task_seconds : `dict` [`str`, `float`]
        Wall time per task label.
    dry_run : `bool`
        True if nothing was run.
    """

    graph: QuantumGraph
    succeeded: list[QuantumResult] = field(default_factory=list)
    failed: list[QuantumResult] = field(default_factory=list)
    skipped: list[QuantumResult] = field(default_factory=list)
    pending: list[QuantumResult] = field(default_factory=list)
    task_seconds: dict[str, float] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def exit_status(self) -> int:
        """0 if no unit failed, else 1 (what the ``compstore run`` command exits with)."""
        return 1 if self.failed else 0

    def __repr__(self) -> str:
        return (
            f"<ExecutionReport run={self.graph.output_run!r}: {len(self.succeeded)} succeeded, "
            f"{len(self.failed)} failed, {len(self.skipped)} skipped"
            + (f", {len(self.pending)} pending (dry run)>" if self.dry_run else ">")
        )

    def __bool__(self) -> bool:
        # ``if report:`` reads as "did it work?"; use ``report.failed`` for the failures.
        return not self.failed

    def __str__(self) -> str:
        lines = []
        if self.dry_run:
            lines += [str(self.graph), ""]
            lines.append(
                f"dry run: {len(self.pending)} unit(s) would run, "
                f"{len(self.skipped)} skipped (outputs exist); nothing was written"
            )
            return "\n".join(lines)
        lines.append(
            f"{len(self.succeeded)} succeeded, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, in run {self.graph.output_run!r}"
        )
        for taskdef in self.graph.pipeline:
            label = taskdef.label
            counts = [
                sum(r.task_label == label for r in results)
                for results in (self.succeeded, self.failed, self.skipped)
            ]
            lines.append(
                f"  task {label!r} ({taskdef.class_name}): {counts[0]} succeeded, {counts[1]} "
                f"failed, {counts[2]} skipped, {self.task_seconds.get(label, 0.0):.2f} s"
            )
        for result in self.failed:
            lines.append(str(result))
            lines.extend("    " + line for line in result.traceback.rstrip().splitlines())
        for result in self.skipped:
            lines.append(str(result))
        return "\n".join(lines)


# -- one unit -------------------------------------------------------------------------------
def _read_inputs(
    butler: Butler, task: Task, quantum: Quantum, run: str
) -> tuple[dict[str, Any], list[str]]:
    args: dict[str, Any] = {}
    input_ids: list[str] = []
    for name, spec in task.inputs.items():
        objects: dict[DataId, Any] = {}
        for ref in quantum.inputs.get(name, []):
            if isinstance(ref, PredictedRef):
                # Written by an earlier unit of this pipeline, into the output run.
                ref = butler.find_dataset(ref.dataset_type, ref.data_id, collections=[run])
            objects[ref.data_id] = butler.get(ref)
            input_ids.append(str(ref.id))
        if spec.multiple:
            args[name] = objects
        else:
            if len(objects) != 1:
                raise TaskError(
                    f"{task.describe(task.label)}: unit {quantum.data_id!r} has {len(objects)} "
                    f"datasets for single input {name!r}; build_quanta must give exactly one"
                )
            (args[name],) = objects.values()
    return args, input_ids


def _check_outputs(
    task: Task, quantum: Quantum, outputs: Any
) -> list[tuple[Any, str, Mapping[str, Any]]]:
    where = f"{task.describe(task.label)} on {quantum.data_id!r}"
    if not isinstance(outputs, Mapping):
        raise TaskError(
            f"{where}: run() returned {type(outputs).__name__}; it must return a dict with keys "
            f"{', '.join(task.outputs)}"
        )
    missing = [n for n in task.outputs if n not in outputs]
    extra = sorted(str(n) for n in outputs if n not in task.outputs)
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise TaskError(
            f"{where}: run() returned outputs with {'; '.join(parts)}; declared outputs: "
            f"{', '.join(task.outputs)}"
        )
    items: list[tuple[Any, str, Mapping[str, Any]]] = []
    for name, spec in task.outputs.items():
        expected = quantum.outputs.get(name, [])
        if spec.multiple:
            value = outputs[name]
            pairs = value.items() if isinstance(value, Mapping) else value
            # The unit's data ID fills in output dimensions the task left out
            # (jointcal returns exposures by (visit, detector); the unit adds tract).
            implied = {d: quantum.data_id[d] for d in spec.dimensions if d in quantum.data_id}
            try:
                produced = {DataId({**implied, **dict(k)}): v for k, v in pairs}
            except (TypeError, ValueError):
                raise TaskError(
                    f"{where}: multiple output {name!r} must be a mapping of data ID to object "
                    f"(or a list of (data ID, object) pairs), got {type(value).__name__}"
                ) from None
        else:
            produced = {expected[0]: outputs[name]} if expected else {}
        if set(produced) != set(expected):
            raise TaskError(
                f"{where}: output {name!r} was predicted for data IDs {sorted(map(repr, expected))} "
                f"but run() returned {sorted(map(repr, produced))}"
            )
        storage_class = get_storage_class(spec.storage_class)
        for data_id, obj in produced.items():
            try:
                storage_class.check_type(obj)
            except StorageClassTypeError:
                raise TaskError(
                    f"{where}: output {name!r} ({spec.dataset_type}@{data_id!r}) must be a "
                    f"{spec.storage_class}, got {type(obj).__module__}.{type(obj).__qualname__}"
                ) from None
            items.append((obj, spec.dataset_type, data_id))
    return items


def run_quantum(butler: Butler, task: Task, quantum: Quantum) -> QuantumResult:
    """Run one unit of work: read inputs, call ``task.run``, check and write the outputs.

    The outputs are written with one `Butler.put_many`, with provenance (task
    label and class, config, input UUIDs): either every output of the unit
    is visible afterwards, or none is. Errors are caught and returned as a
    failed result, never raised, so one unit cannot stop the others.

    Parameters
    ----------
    butler : `Butler`
        Opened with ``run=`` the output run (predicted inputs are read there).
    task : `Task`
        A configured task whose label is ``quantum.task_label``.
    quantum : `Quantum`
        The unit.

    Returns
    -------
    result : `QuantumResult`
    """
    started, start = time.time(), time.perf_counter()
    try:
        if butler.run is None:
            raise PipelineError("run_quantum needs a Butler with run= (the output run)")
        args, input_ids = _read_inputs(butler, task, quantum, butler.run)
        if task.wants_data_id():
            args["data_id"] = quantum.data_id
        items = _check_outputs(task, quantum, task.run(**args))
        provenance = {
            "task_label": task.label,
            "task_class": class_path(type(task)),
            "config": task.config.to_dict(),
            "inputs": input_ids,
        }
        refs = butler.put_many(items, provenance=provenance)
    except Exception as exc:  # a task may raise anything; it must not stop the other units
        return QuantumResult(
            quantum.task_label,
            quantum.data_id,
            "failed",
            f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
            (),
            time.perf_counter() - start,
            started,
        )
    return QuantumResult(
        quantum.task_label,
        quantum.data_id,
        "succeeded",
        "",
        "",
        tuple(str(r.id) for r in refs),
        time.perf_counter() - start,
        started,
    )


# -- the whole pipeline --------------------------------------------------------------------
def _existing_outputs(butler: Butler, graph: QuantumGraph) -> set[tuple[str, DataId]]:
    found: set[tuple[str, DataId]] = set()
    types = {spec.dataset_type for task in graph.tasks.values() for spec in task.outputs.values()}
    for dataset_type in sorted(types):
        try:
            refs = butler.registry.query_datasets(dataset_type, collections=[graph.output_run])
        except MissingDatasetTypeError:
            continue
        found.update((dataset_type, ref.data_id) for ref in refs)
    return found


def _outputs_of(graph: QuantumGraph, quantum: Quantum) -> list[tuple[str, DataId]]:
    task = graph.tasks[quantum.task_label]
    return [(task.outputs[n].dataset_type, d) for n, ids in quantum.outputs.items() for d in ids]


EXECUTORS = ("process", "dask")
"""The values of ``execute(..., executor=)``."""


def execute(
    pipeline: Pipeline,
    butler: Butler,
    where: str | None = None,
    jobs: int = 1,
    *,
    skip_existing: bool = True,
    dry_run: bool = False,
    executor: str = "process",
    scheduler: str | None = None,
    progress: bool = False,
) -> ExecutionReport:
    """Run ``pipeline`` on the datasets ``where`` selects; write outputs into the Butler's run.

    This is what ``compstore run`` does.

    Parameters
    ----------
    pipeline : `Pipeline`
        The tasks, in order.
    butler : `Butler`
        ``Butler(repo, collections=[INPUTS], run=OUTPUT)``: inputs are found
        in ``collections``, outputs written to ``run``.
    where : `str`, optional
        A data query, e.g. ``"visit = 1 AND detector IN (1, 2)"`` (see `build_graph`).
    jobs : `int`, optional
        With the ``"process"`` executor, 1 runs the units one after another
        in this process and more runs them in that many worker processes;
        with ``"dask"`` and no ``scheduler``, the number of workers of the
        `distributed.LocalCluster` started for the run. In parallel, each
        unit starts as soon as the units writing its inputs have finished.
    skip_existing : `bool`, optional
        Skip units whose outputs all exist in the output run (a re-run picks
        up where a failed run stopped).
    dry_run : `bool`, optional
        Build the graph and report what would run; write nothing (and start
        no worker).
    executor : `str`, optional
        ``"process"`` (this process, or a local process pool) or ``"dask"``
        (a Dask cluster; needs the ``distributed`` package). Units are sent
        to workers as plain data: see ``docs/pipelines.md``.
    scheduler : `str`, optional
        With ``executor="dask"``, the address of a running Dask scheduler,
        e.g. ``"tcp://host:8786"``; its workers must see the repository at
        the same path. Without it, a local cluster of ``jobs`` worker
        processes is started and shut down afterwards.
    progress : `bool`, optional
        Show a progress bar (tqdm, on stderr, only when it is a terminal):
        one per task when serial, one for all units in parallel.

    Returns
    -------
    report : `ExecutionReport`
        Failed units are in ``report.failed`` (they do not raise);
        ``report.exit_status`` is 1 if any unit failed.

    Raises
    ------
    PipelineError
        If the Butler has no run or collections, ``jobs`` < 1, ``executor``
        is unknown, ``scheduler`` is given without ``executor="dask"``,
        ``distributed`` is not installed or the scheduler cannot be reached,
        or (in parallel) a task class cannot be imported by worker processes.
    PipelineDefinitionError
        If the tasks do not fit together or disagree with the registry.
    QueryError
        If ``where`` is malformed or names an unknown dimension.
    DatasetTypeConflictError
        If an output dataset type is registered with other dimensions or
        storage class.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise PipelineError(f"jobs must be a positive integer, got {jobs!r}")
    if executor not in EXECUTORS:
        raise PipelineError(
            f"unknown executor {executor!r}; use one of: {', '.join(map(repr, EXECUTORS))}"
        )
    if scheduler is not None and executor != "dask":
        raise PipelineError(
            f"scheduler={scheduler!r} is a Dask scheduler address: pass executor='dask' with it "
            "(CLI: --executor dask --scheduler ADDR)"
        )
    if executor == "dask" and not dry_run:
        from ._dask import import_distributed

        import_distributed()  # before any work: a missing package is a clear error
    graph = build_graph(pipeline, butler, where)
    report = ExecutionReport(graph, dry_run=dry_run)
    parallel = not dry_run and (jobs > 1 or executor == "dask")
    worker_pipeline = _worker_pipeline(pipeline) if parallel else None
    if not dry_run:
        for task in graph.tasks.values():
            for spec in task.outputs.values():
                butler.register_dataset_type(spec.dataset_type, spec.dimensions, spec.storage_class)
    existing = _existing_outputs(butler, graph) if skip_existing else set()
    if worker_pipeline is not None:
        _execute_parallel(
            report, butler, existing, worker_pipeline, jobs, executor, scheduler, progress
        )
        return report
    # Outputs of units that failed or were blocked: readers of these are skipped.
    broken: dict[tuple[str, DataId], QuantumResult] = {}
    for taskdef in pipeline:
        start = time.perf_counter()
        quanta = list(graph.for_task(taskdef.label))
        _log.info("task %s: %d unit(s) to run", taskdef.label, len(quanta))
        bar = progress and not dry_run and bool(quanta)
        for quantum in progress_bar(quanta, enabled=bar, desc=f"run {taskdef.label}", unit="unit"):
            blocker = next(
                (
                    broken[(ref.dataset_type, ref.data_id)]
                    for refs in quantum.inputs.values()
                    for ref in refs
                    if isinstance(ref, PredictedRef) and (ref.dataset_type, ref.data_id) in broken
                ),
                None,
            )
            outputs = _outputs_of(graph, quantum)
            if blocker is not None:
                result = QuantumResult(
                    quantum.task_label,
                    quantum.data_id,
                    "skipped",
                    f"an input comes from {blocker.task_label} {blocker.data_id!r}, which "
                    f"{'failed' if blocker.status == 'failed' else 'was skipped'}",
                )
                report.skipped.append(result)
                broken.update((o, result) for o in outputs)
            elif skip_existing and outputs and all(o in existing for o in outputs):
                report.skipped.append(
                    QuantumResult(
                        quantum.task_label,
                        quantum.data_id,
                        "skipped",
                        f"outputs exist in run {graph.output_run!r}",
                    )
                )
            elif dry_run:
                report.pending.append(QuantumResult(quantum.task_label, quantum.data_id, "pending"))
            else:
                result = run_quantum(butler, graph.tasks[quantum.task_label], quantum)
                _log.info("%s %s %s in %.2f s", result.status, result.task_label,
                          dict(result.data_id), result.seconds)
                if result.status == "succeeded":
                    report.succeeded.append(result)
                else:
                    report.failed.append(result)
                    broken.update((o, result) for o in outputs)
        report.task_seconds[taskdef.label] = time.perf_counter() - start
    return report


def _worker_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    from ._workers import worker_pipeline_dict  # _workers imports this module

    return worker_pipeline_dict(pipeline)


def _execute_parallel(
    report: ExecutionReport,
    butler: Butler,
    existing: set[tuple[str, DataId]],
    worker_pipeline: dict[str, Any],
    jobs: int,
    executor: str,
    scheduler: str | None,
    progress: bool,
) -> None:
    from ._workers import base_payload, make_plan

    graph = report.graph
    plan = make_plan(graph, existing)
    base = base_payload(butler, graph, worker_pipeline)
    if executor == "dask":
        from ._dask import run_on_dask

        results = run_on_dask(graph, plan, base, jobs, scheduler, progress=progress)
    else:
        from ._pool import run_in_pool

        results = run_in_pool(graph, plan, base, jobs, progress=progress)
    spans: dict[str, list[float]] = {}
    for result in results:  # graph order, like the serial executor's lists
        _log.info("%s %s %s in %.2f s", result.status, result.task_label,
                  dict(result.data_id), result.seconds)
        {"succeeded": report.succeeded, "failed": report.failed}.get(
            result.status, report.skipped
        ).append(result)
        if result.started:
            first, last = spans.setdefault(result.task_label, [result.started, result.started])
            spans[result.task_label] = [
                min(first, result.started), max(last, result.started + result.seconds)
            ]
    # Tasks overlap without a barrier: a task's wall time runs from its first unit's
    # start to its last unit's end.
    for taskdef in graph.pipeline:
        first, last = spans.get(taskdef.label, [0.0, 0.0])
        report.task_seconds[taskdef.label] = last - first

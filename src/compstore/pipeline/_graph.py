"""Quantum graphs: which units of work a pipeline has to run on a repository, and in what order.

`build_graph` queries the registry for every input of the pipeline that no
earlier task writes (restricted by the user's ``where``), predicts what each
task will write, and feeds those predictions to the later tasks that read
them. The graph is plain data: units (`Quantum`) in pipeline order, each with
its task label, data ID, inputs and outputs; ``print(graph)`` lists them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousDatasetError, PipelineDefinitionError, PipelineError, QueryError
from ..registry import DataId, DatasetRef, parse_where

# The AST node classes are not re-exported by the registry package; the graph
# builder needs them to apply each term of ``where`` only where it makes sense.
from ..registry.where import Node, and_terms, dimensions_of, matches, unparse
from ._pipeline import Pipeline
from ._task import InputRef, PredictedRef, Quantum, Task

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = [
    "QuantumGraph",
    "build_graph",
    "matches",
    "quantum_from_dict",
    "quantum_to_dict",
    "restrict_where",
]


@dataclass
class QuantumGraph:
    """The units of work of a pipeline on a repository, in an order that respects dependencies.

    Attributes
    ----------
    pipeline : `Pipeline`
        The pipeline the graph was built from.
    quanta : `list` [`Quantum`]
        Every unit, task by task in pipeline order (so a unit comes after
        every unit it depends on).
    where : `str` or `None`
        The data query the graph was built with.
    input_collections : `tuple` [`str`, ...]
        Where existing inputs were found.
    output_run : `str`
        Where outputs will be written (and predicted inputs are read from).
    """

    pipeline: Pipeline
    quanta: list[Quantum]
    where: str | None
    input_collections: tuple[str, ...]
    output_run: str
    tasks: dict[str, Task] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Quantum]:
        return iter(self.quanta)

    def __len__(self) -> int:
        return len(self.quanta)

    def for_task(self, label: str) -> list[Quantum]:
        """Return the units of the task labelled ``label``."""
        return [q for q in self.quanta if q.task_label == label]

    def producers(self) -> dict[tuple[str, DataId], int]:
        """Map each predicted output ``(dataset_type, data_id)`` to the index of the unit writing it."""
        out: dict[tuple[str, DataId], int] = {}
        for i, quantum in enumerate(self.quanta):
            task = self.tasks[quantum.task_label]
            for name, ids in quantum.outputs.items():
                for data_id in ids:
                    out[(task.outputs[name].dataset_type, data_id)] = i
        return out

    def dependencies(self, index: int) -> list[int]:
        """Return the indices of the units whose outputs unit ``index`` reads."""
        producers = self.producers()
        deps = {
            producers[(ref.dataset_type, ref.data_id)]
            for refs in self.quanta[index].inputs.values()
            for ref in refs
            if isinstance(ref, PredictedRef) and (ref.dataset_type, ref.data_id) in producers
        }
        return sorted(deps)

    def __str__(self) -> str:
        lines = [
            f"QuantumGraph: {len(self.quanta)} unit(s) of work in {len(self.pipeline)} task(s); "
            f"inputs from {', '.join(self.input_collections)}; outputs to run {self.output_run!r}"
            + (f"; where {self.where!r}" if self.where else "")
        ]
        for taskdef in self.pipeline:
            units = self.for_task(taskdef.label)
            lines.append(f"task {taskdef.label!r} ({taskdef.class_name}): {len(units)} unit(s)")
            task = self.tasks[taskdef.label]
            for quantum in units:
                lines.append(f"  {quantum.data_id!r}")
                for name, refs in quantum.inputs.items():
                    for ref in refs:
                        lines.append(f"    in  {name}: {_describe_ref(ref)}")
                for name, ids in quantum.outputs.items():
                    for data_id in ids:
                        lines.append(
                            f"    out {name}: {task.outputs[name].dataset_type}@{data_id!r}"
                        )
        return "\n".join(lines)


def _describe_ref(ref: InputRef) -> str:
    if isinstance(ref, PredictedRef):
        return str(ref)
    return f"{ref.dataset_type}@{ref.data_id!r} in {ref.run!r}"


# -- where: which terms apply where --------------------------------------------
# The AST, its walks and the Python interpreter (`matches`) are in
# compstore.registry.where, beside the SQL one.
def restrict_where(node: Node | None, dimensions: Sequence[str]) -> str | None:
    """Return the ``AND`` terms of ``node`` that use only ``dimensions``, as a where string."""
    if node is None:
        return None
    kept = [t for t in and_terms(node) if dimensions_of(t) <= set(dimensions)]
    if not kept:
        return None
    return " AND ".join(f"({unparse(t)})" for t in kept)


# -- building ---------------------------------------------------------------------
def _search_collections(butler: Butler) -> tuple[tuple[str, ...], str]:
    if butler.run is None:
        raise PipelineError(
            "the Butler has no output run: open it with Butler(repo, collections=[INPUTS], run=OUTPUT)"
        )
    if not butler.collections:
        raise PipelineError(
            "the Butler has no input collections: open it with "
            "Butler(repo, collections=[INPUTS], run=OUTPUT)"
        )
    return tuple(butler.collections), butler.run


def build_graph(pipeline: Pipeline, butler: Butler, where: str | None = None) -> QuantumGraph:
    """Work out the units of work of ``pipeline`` on the repository of ``butler``.

    Inputs that no earlier task of the pipeline writes are looked up in the
    Butler's collections (first match per data ID wins); outputs of earlier
    tasks become `PredictedRef` inputs of later ones. Nothing is written.

    Parameters
    ----------
    pipeline : `Pipeline`
        The tasks to run.
    butler : `Butler`
        Opened with ``collections=`` (the inputs) and ``run=`` (the output run).
    where : `str`, optional
        A data query such as ``"visit = 1 AND detector IN (1, 2)"``. Each
        ``AND`` term is applied to every input dataset type that has all its
        dimensions, and to every unit whose data ID has them.

    Returns
    -------
    graph : `QuantumGraph`

    Raises
    ------
    PipelineError
        If the Butler has no run or no collections.
    PipelineDefinitionError
        If the tasks do not fit together or an input's declaration disagrees
        with its registered dataset type.
    QuerySyntaxError
        If ``where`` is malformed.
    QueryError
        If ``where`` names a dimension that no input, output or unit of the
        pipeline has.
    MissingDatasetTypeError
        If an input dataset type that no task writes is not registered.
    AmbiguousDatasetError
        If an input has two datasets for one data ID of the task's declaration
        (two tracts of one exposure, when the task declares visit and
        detector); the message says how to pick one.
    """
    pipeline.check()
    collections, run = _search_collections(butler)
    tasks = {t.label: t.make_task() for t in pipeline}
    node = parse_where(where) if where is not None and where.strip() else None
    if node is not None:
        _check_where_dimensions(node, where or "", butler, tasks)
    # (dataset_type, data_id) -> predicted ref, for outputs of tasks already planned
    predicted: dict[str, list[PredictedRef]] = {}
    quanta: list[Quantum] = []
    for label, task in tasks.items():
        candidates: dict[str, list[InputRef]] = {}
        for name, spec in task.inputs.items():
            if spec.dataset_type in predicted:
                candidates[name] = list(predicted[spec.dataset_type])
            else:
                candidates[name] = list(_query_input(butler, label, name, spec, node, collections))
            _check_one_per_data_id(label, name, spec, candidates[name], collections)
        built = task.build_quanta(candidates, butler)
        for quantum in built:
            if quantum.task_label != label:
                raise PipelineDefinitionError(
                    f"task {label!r}: build_quanta returned a unit labelled {quantum.task_label!r}; "
                    "use Quantum(self.label, ...)"
                )
        if node is not None:
            built = [q for q in built if matches(node, q.data_id)]
        quanta.extend(built)
        for quantum in built:
            for name, ids in quantum.outputs.items():
                dataset_type = task.outputs[name].dataset_type
                predicted.setdefault(dataset_type, []).extend(
                    PredictedRef(dataset_type, data_id) for data_id in ids
                )
    return QuantumGraph(pipeline, quanta, where, collections, run, tasks)


def _query_input(
    butler: Butler,
    label: str,
    name: str,
    spec: Any,
    node: Node | None,
    collections: tuple[str, ...],
) -> list[DatasetRef]:
    registered = butler._input_dataset_type(spec.dataset_type)  # MissingDatasetTypeError
    # The declaration may leave out dimensions a later stage added (tract on calexp).
    fits = set(registered.required_dimensions) <= set(spec.dimensions) <= set(registered.dimensions)
    if registered.storage_class != spec.storage_class or not fits:
        raise PipelineDefinitionError(
            f"task {label!r} input {name!r} declares {spec.dataset_type} as "
            f"({', '.join(spec.dimensions)}) {spec.storage_class}, but the repository has "
            f"{registered}"
        )
    restricted = restrict_where(node, spec.dimensions)
    return butler._query_inputs(spec.dataset_type, restricted, list(collections))


def _check_one_per_data_id(
    label: str, name: str, spec: Any, refs: Sequence[InputRef], collections: Sequence[str]
) -> None:
    """Refuse an input with two datasets a task would take for one of its declared data IDs.

    The search path already gives each exposure from one collection only (the
    registry's search rule); but inside that collection a stage may have written
    one exposure twice, under a dimension the task does not declare (jointcal's
    calexp in two tracts). A coadd given both would stack the exposure twice.
    """
    seen: dict[DataId, InputRef] = {}
    for ref in refs:
        key = DataId({d: ref.data_id[d] for d in spec.dimensions if d in ref.data_id})
        first = seen.setdefault(key, ref)
        if first is ref:
            continue
        dims = ", ".join(spec.dimensions)
        both = [first, ref]
        extra = sorted({d for r in both for d in r.data_id if d not in spec.dimensions})
        where = " AND ".join(f"{d} = {first.data_id[d]!r}" for d in extra if d in first.data_id)
        if any(isinstance(r, PredictedRef) for r in both):
            origin = "will both be written by an earlier task of this pipeline"
            fix = (
                f"run that task on its own first; then pick one {spec.dataset_type} per "
                f"({dims}) as follows, and run task {label!r} on that"
            )
        else:
            origin = f"are both in collection {ref.run!r}"  # type: ignore[union-attr]
            fix = f"pick one {spec.dataset_type} per ({dims})"
        raise AmbiguousDatasetError(
            f"task {label!r} input {name!r} declares {spec.dataset_type} by ({dims}), but "
            f"{_describe_ref(first)} and {_describe_ref(ref)} {origin}: the task would read "
            f"{dict(key)} twice. To choose, {fix}: tag the ones to use into a TAGGED "
            "collection and search it first, e.g. `compstore tag --repo REPO picked "
            f"{spec.dataset_type} --where \"{where or '...'}\" --collections "
            f"{getattr(ref, 'run', None) or collections[0]}` and then `-i "
            f"picked,{','.join(collections)}` (Python: butler.tag('picked', refs) and "
            f"collections=['picked', ...])"
        )


def _check_where_dimensions(
    node: Node, where: str, butler: Butler, tasks: Mapping[str, Task]
) -> None:
    known: set[str] = set()
    for task in tasks.values():
        known.update(task.quantum_dimensions())
        for spec in (*task.inputs.values(), *task.outputs.values()):
            known.update(spec.dimensions)
    unknown = sorted(dimensions_of(node) - known)
    if unknown:
        raise QueryError(
            f"where {where!r} names dimension(s) {', '.join(unknown)} that no input, output or "
            f"unit of work of the pipeline has; they have: {', '.join(sorted(known))}"
        )


# -- plain-data form, for worker processes -------------------------------------------
def _ref_to_dict(ref: InputRef) -> dict[str, Any]:
    if isinstance(ref, PredictedRef):
        return {
            "predicted": True,
            "dataset_type": ref.dataset_type,
            "data_id": ref.data_id.to_dict(),
        }
    return {
        "id": str(ref.id),
        "dataset_type": ref.dataset_type,
        "data_id": ref.data_id.to_dict(),
        "run": ref.run,
        "manifest": ref.manifest,
    }


def _ref_from_dict(d: Mapping[str, Any]) -> InputRef:
    if d.get("predicted"):
        return PredictedRef(d["dataset_type"], DataId(d["data_id"]))
    return DatasetRef(
        uuid.UUID(d["id"]), d["dataset_type"], DataId(d["data_id"]), d["run"], d["manifest"]
    )


def quantum_to_dict(quantum: Quantum) -> dict[str, Any]:
    """Return ``quantum`` as str/int data (UUIDs as strings), for another process."""
    return {
        "task_label": quantum.task_label,
        "data_id": quantum.data_id.to_dict(),
        "inputs": {n: [_ref_to_dict(r) for r in refs] for n, refs in quantum.inputs.items()},
        "outputs": {n: [d.to_dict() for d in ids] for n, ids in quantum.outputs.items()},
    }


def quantum_from_dict(d: Mapping[str, Any]) -> Quantum:
    """Inverse of `quantum_to_dict`."""
    return Quantum(
        d["task_label"],
        DataId(d["data_id"]),
        {n: [_ref_from_dict(r) for r in refs] for n, refs in d["inputs"].items()},
        {n: [DataId(i) for i in ids] for n, ids in d["outputs"].items()},
    )

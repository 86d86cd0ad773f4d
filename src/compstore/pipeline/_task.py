"""Tasks: algorithms on in-memory objects, plus the declarations that let an executor feed them.

A `Task` subclass declares what it reads (`Input`), what it writes
(`Output`), the dimensions of one unit of work (a `Quantum`) and its config
defaults. Its `Task.run` takes and returns plain objects, so it can be called
directly, without any repository; the executor (``_executor.py``) is what
reads inputs through a Butler, calls `run` and writes the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import PipelineDefinitionError
from ..registry import DataId, DatasetRef
from ._config import TaskConfig, validate_config

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = ["Input", "Output", "PredictedRef", "Quantum", "Task", "project"]


@dataclass(frozen=True)
class Input:
    """A dataset type a task reads.

    Parameters
    ----------
    dataset_type : `str`
        The dataset type name, e.g. ``"calexp"``.
    dimensions : `tuple` [`str`, ...]
        Its dimensions, e.g. ``("visit", "detector")``.
    storage_class : `str`
        Its storage class, e.g. ``"Exposure"``.
    multiple : `bool`, optional
        If true, one unit of work reads many datasets of this type and `Task.run`
        receives them as a ``dict`` of `DataId` to object.
    """

    dataset_type: str
    dimensions: tuple[str, ...]
    storage_class: str
    multiple: bool = False

    def __post_init__(self) -> None:
        # Accept a list (YAML, hurried users) but keep the value hashable.
        object.__setattr__(self, "dimensions", tuple(self.dimensions))


@dataclass(frozen=True)
class Output(Input):
    """A dataset type a task writes; fields as `Input`.

    With ``multiple=True``, `Task.run` returns a mapping of data ID (a `DataId`,
    or a list of ``(data ID mapping, object)`` pairs) to object for this output.
    """


@dataclass(frozen=True)
class PredictedRef:
    """A dataset that an earlier unit of work in the same pipeline will write.

    The executor resolves it in the output run when the unit that reads it
    starts, after the unit that writes it has finished.
    """

    dataset_type: str
    data_id: DataId

    def __str__(self) -> str:
        return f"{self.dataset_type}@{self.data_id!r} (predicted)"


InputRef = DatasetRef | PredictedRef


@dataclass(frozen=True)
class Quantum:
    """One unit of work: a task label, a data ID, the datasets it reads and those it writes.

    Attributes
    ----------
    task_label : `str`
        The label of the task in its pipeline.
    data_id : `DataId`
        The unit's data ID, over the task's `Task.dimensions`.
    inputs : `dict` [`str`, `list` [`DatasetRef` or `PredictedRef`]]
        Per input *name* (a key of `Task.inputs`), the datasets to read: an
        existing `DatasetRef`, or a `PredictedRef` for an output of an earlier
        task of the same pipeline. A single (not ``multiple``) input has
        exactly one.
    outputs : `dict` [`str`, `list` [`DataId`]]
        Per output name (a key of `Task.outputs`), the data IDs this unit will
        write; a single output has exactly one.
    """

    task_label: str
    data_id: DataId
    inputs: dict[str, list[InputRef]] = field(default_factory=dict)
    outputs: dict[str, list[DataId]] = field(default_factory=dict)


def project(data_id: Mapping[str, Any], dimensions: Sequence[str]) -> DataId:
    """Return the part of ``data_id`` over ``dimensions``.

    Raises
    ------
    KeyError
        If ``data_id`` lacks one of ``dimensions``.
    """
    return DataId({d: data_id[d] for d in dimensions})


class Task:
    """Base class of pipeline tasks.

    Subclasses declare class attributes and implement `run`:

    ``inputs``, ``outputs``
        ``dict`` of name to `Input` / `Output`. The names are the keyword
        arguments of `run` and the keys of the ``dict`` it returns.
    ``dimensions``
        The dimensions of one unit of work (quantum); by default those of
        the first input.
    ``config_defaults``
        ``dict`` of config key to default value (plain JSON values).

    Parameters
    ----------
    config : mapping, optional
        Overrides of ``config_defaults``.
    label : `str`, optional
        The task's label in a pipeline (default: the class name).

    Raises
    ------
    PipelineDefinitionError
        If an override names an unknown key (the message lists the valid
        ones) or has a type other than its default's (an int is accepted for
        a float), or if the declarations are inconsistent.
    """

    inputs: ClassVar[dict[str, Input]] = {}
    outputs: ClassVar[dict[str, Output]] = {}
    dimensions: ClassVar[tuple[str, ...] | None] = None
    config_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Mapping[str, Any] | None = None, label: str | None = None) -> None:
        self.label = label if label is not None else type(self).__name__
        type(self).check_declarations()
        values = validate_config(self.describe(self.label), self.config_defaults, config)
        self._config = TaskConfig(values)

    # -- declarations ------------------------------------------------------
    @classmethod
    def describe(cls, label: str | None = None) -> str:
        """Return ``task 'LABEL' (Class)`` for messages."""
        return f"task {label or cls.__name__!r} ({cls.__qualname__})"

    @classmethod
    def quantum_dimensions(cls) -> tuple[str, ...]:
        """Return `dimensions`, or the first input's dimensions when it is not set."""
        if cls.dimensions is not None:
            return tuple(cls.dimensions)
        for spec in cls.inputs.values():
            return spec.dimensions
        return ()

    @classmethod
    def check_declarations(cls) -> None:
        """Check ``inputs``, ``outputs`` and ``config_defaults`` are well formed.

        Raises
        ------
        PipelineDefinitionError
            If an input is not an `Input`, an output not an `Output`, or a name
            is not a Python identifier.
        """
        for kind, specs, wanted in (
            ("inputs", cls.inputs, Input),
            ("outputs", cls.outputs, Output),
        ):
            if not isinstance(specs, Mapping):
                raise PipelineDefinitionError(
                    f"{cls.describe()}: {kind} must be a dict of name to {wanted.__name__}"
                )
            for name, spec in specs.items():
                if not isinstance(spec, wanted) or (wanted is Input and isinstance(spec, Output)):
                    raise PipelineDefinitionError(
                        f"{cls.describe()}: {kind}[{name!r}] must be a {wanted.__name__}(...), "
                        f"got {spec!r}"
                    )
                if not (isinstance(name, str) and name.isidentifier()):
                    raise PipelineDefinitionError(
                        f"{cls.describe()}: {kind} name {name!r} must be a Python identifier "
                        "(it is a keyword argument of run)"
                    )
        if not cls.outputs:
            raise PipelineDefinitionError(f"{cls.describe()} declares no outputs")
        if not isinstance(cls.config_defaults, Mapping):
            raise PipelineDefinitionError(f"{cls.describe()}: config_defaults must be a dict")

    @property
    def config(self) -> TaskConfig:
        """The task's configuration: defaults with overrides applied (read-only)."""
        return self._config

    # -- the algorithm -------------------------------------------------------
    def run(self, *args: Any, **inputs: Any) -> dict[str, Any]:
        """Process in-memory inputs into in-memory outputs.

        Subclasses declare one named parameter per input (and ``data_id`` if
        they want it); the executor passes them all by keyword. The generic
        ``*args, **inputs`` signature here lets such overrides type-check.

        Parameters
        ----------
        **inputs
            One keyword per input name: the object, or for a ``multiple``
            input a ``dict`` of `DataId` to object.

        Returns
        -------
        outputs : `dict` [`str`, `object`]
            One entry per output name: the object, or for a ``multiple``
            output a mapping of data ID to object.
        """
        raise NotImplementedError(f"{type(self).__qualname__} does not implement run()")

    @classmethod
    def wants_data_id(cls) -> bool:
        """Whether `run` takes a ``data_id`` keyword: the executor then passes the unit's data ID.

        A task whose work depends on where it runs (a coadd needs its patch's
        geometry) declares ``def run(self, ..., data_id)``; called directly,
        the caller passes it too.
        """
        import inspect

        return "data_id" in inspect.signature(cls.run).parameters and "data_id" not in cls.inputs

    # -- units of work ---------------------------------------------------------
    def build_quanta(self, inputs: dict[str, list[InputRef]], butler: Butler) -> list[Quantum]:
        """Group the available input datasets into units of work.

        The default groups by the task's `quantum_dimensions`: every input
        whose dimensions contain all of them is grouped by its data ID
        projected onto them; an input with fewer dimensions joins every unit
        whose data ID matches it on those. A unit is made only where every
        input has at least one dataset. Single outputs are predicted at the
        unit's data ID projected onto the output's dimensions; ``multiple``
        outputs at each ``multiple`` input's data ID (merged with the unit's)
        projected likewise.

        Override it for grouping the default cannot express (per tract, per
        patch: look datasets' regions up in a sky map). Return `Quantum`
        objects whose ``task_label`` is ``self.label``.

        Parameters
        ----------
        inputs : `dict` [`str`, `list` [`DatasetRef` or `PredictedRef`]]
            Per input name, every candidate dataset (already restricted by
            the user's ``where``).
        butler : `Butler`
            For lookups a grouping may need (it must not write).

        Returns
        -------
        quanta : `list` [`Quantum`]

        Raises
        ------
        PipelineDefinitionError
            If no input has all of the quantum dimensions, an output's
            dimensions cannot be derived, or a single input matches several
            datasets in one unit.
        """
        dims = self.quantum_dimensions()
        full = [n for n, s in self.inputs.items() if set(dims) <= set(s.dimensions)]
        if self.inputs and not full:
            raise PipelineDefinitionError(
                f"{self.describe(self.label)}: no input has all the quantum dimensions "
                f"({', '.join(dims)}); override build_quanta to group its inputs"
            )
        keys: set[DataId] | None = None
        for name in full:
            found = {project(ref.data_id, dims) for ref in inputs.get(name, [])}
            keys = found if keys is None else keys & found
        quanta = []
        for key in sorted(keys or (), key=lambda d: data_id_sort_key(d, dims)):
            chosen: dict[str, list[InputRef]] = {}
            for name, spec in self.inputs.items():
                shared = [d for d in dims if d in spec.dimensions]
                chosen[name] = [
                    ref
                    for ref in inputs.get(name, [])
                    if all(ref.data_id[d] == key[d] for d in shared)
                ]
                if not spec.multiple and len(chosen[name]) > 1:
                    raise PipelineDefinitionError(
                        f"{self.describe(self.label)}: input {name!r} ({spec.dataset_type}) has "
                        f"{len(chosen[name])} datasets for unit {key!r} but is not multiple; "
                        "declare it Input(..., multiple=True) or add dimensions to the task"
                    )
            if any(not refs for refs in chosen.values()):
                continue  # a unit without one of its inputs cannot run
            quanta.append(Quantum(self.label, key, chosen, self.predict_outputs(key, chosen)))
        return quanta

    def predict_outputs(
        self, data_id: DataId, inputs: Mapping[str, list[InputRef]]
    ) -> dict[str, list[DataId]]:
        """Return the data IDs the unit ``data_id`` with ``inputs`` will write, per output name.

        Raises
        ------
        PipelineDefinitionError
            If an output has dimensions neither the unit nor its inputs provide.
        """
        outputs: dict[str, list[DataId]] = {}
        multi_refs = [r for n, s in self.inputs.items() if s.multiple for r in inputs.get(n, [])]
        for name, spec in self.outputs.items():
            if not spec.multiple:
                sources = [data_id]
            else:
                sources = [DataId({**ref.data_id, **data_id}) for ref in multi_refs] or [data_id]
            ids = set()
            for source in sources:
                missing = [d for d in spec.dimensions if d not in source]
                if missing:
                    raise PipelineDefinitionError(
                        f"{self.describe(self.label)}: output {name!r} has dimensions "
                        f"{', '.join(missing)} that unit {data_id!r} does not provide; "
                        "override build_quanta (or predict_outputs) to say which data IDs it writes"
                    )
                ids.add(project(source, spec.dimensions))
            outputs[name] = sorted(ids, key=lambda d: data_id_sort_key(d, spec.dimensions))
        return outputs


def data_id_sort_key(
    data_id: Mapping[str, Any], dimensions: Sequence[str] | None = None
) -> tuple[Any, ...]:
    """A sort key for data IDs, in ``dimensions`` order, that never compares an int with a str."""
    keys = list(dimensions) if dimensions is not None else sorted(data_id)
    keys += sorted(k for k in data_id if k not in keys)
    return tuple((isinstance(data_id.get(k), str), data_id.get(k, "")) for k in keys)

"""Pipelines: ordered, labelled, configured tasks, read from YAML or built in Python.

A pipeline file looks like::

    description: single-frame recalibration   # optional
    tasks:
      jointcal:                  # the label: names the task in -c overrides and reports
        class: jointcal          # a task name (see _registry.py) or package.module:Class
        config:                  # optional overrides of the task's config_defaults
          order: 3

Files are read with ``yaml.safe_load`` only; every mistake is a
`PipelineDefinitionError` that names the file, the label and what was wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import PipelineDefinitionError
from ._config import validate_config
from ._registry import get_task_class, task_name_of
from ._task import Task

__all__ = ["Pipeline", "TaskDef"]

_MAX_PIPELINE_BYTES = 1 << 20

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TOP_KEYS = {"description", "tasks"}
_TASK_KEYS = {"class", "config"}


@dataclass(frozen=True)
class TaskDef:
    """One task of a pipeline: its label, class, the class's name and the config overrides."""

    label: str
    task_class: type[Task]
    class_name: str
    config: dict[str, Any] = field(default_factory=dict)

    def make_task(self) -> Task:
        """Return a configured instance of the task."""
        return self.task_class(config=self.config, label=self.label)


class Pipeline:
    """An ordered set of labelled, configured tasks.

    Parameters
    ----------
    description : `str`, optional
        Free text, kept in `to_dict`.

    Examples
    --------
    >>> pipeline = Pipeline.from_file("pipeline.yaml")          # doctest: +SKIP
    >>> pipeline.add_config_override("jointcal", "order", 3)    # doctest: +SKIP
    """

    def __init__(self, description: str = "") -> None:
        self.description = description
        self._tasks: dict[str, TaskDef] = {}

    # -- building ------------------------------------------------------------
    def add_task(
        self,
        label: str,
        task: str | type[Task],
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline:
        """Append a task under ``label``; return the pipeline (so calls chain).

        Parameters
        ----------
        label : `str`
            Unique within the pipeline: letters, digits, ``_`` and ``-``.
        task : `str` or `type` [`Task`]
            A task class, or a name (built-in, registered, entry point, or
            ``package.module:Class``).
        config : mapping, optional
            Overrides of the task's ``config_defaults``.

        Raises
        ------
        PipelineDefinitionError
            If the label is malformed or taken, the task name is unknown, or
            the config has unknown keys or wrongly typed values.
        """
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise PipelineDefinitionError(
                f"invalid task label {label!r}: use letters, digits, '_' and '-', "
                "starting with a letter or '_'"
            )
        if label in self._tasks:
            raise PipelineDefinitionError(
                f"task label {label!r} is used twice; labels are unique within a pipeline"
            )
        cls = get_task_class(task)
        cls.check_declarations()
        name = task if isinstance(task, str) else task_name_of(cls)
        overrides = validate_config(cls.describe(label), cls.config_defaults, config)
        given = {k: overrides[k] for k in (config or {})}
        self._tasks[label] = TaskDef(label, cls, name, given)
        return self

    @classmethod
    def from_task(
        cls,
        task: str | type[Task],
        label: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline:
        """Return a pipeline of the one task ``task`` (label: its name or class name).

        Raises
        ------
        PipelineDefinitionError
            As `add_task`.
        """
        if label is None:
            label = (
                task
                if isinstance(task, str) and _LABEL.fullmatch(task)
                else (get_task_class(task).__name__)
            )
        return cls().add_task(label, task, config)

    def add_config_override(self, label: str, key: str, value: Any) -> None:
        """Override config ``key`` of the task labelled ``label``.

        This is what ``-c LABEL:KEY=VALUE`` does on the command line.

        Raises
        ------
        PipelineDefinitionError
            If there is no task ``label`` (the message lists the labels), the
            task has no config ``key`` (the message lists its keys), or
            ``value`` does not have the default's type.
        """
        taskdef = self[label]
        cls = taskdef.task_class
        value = validate_config(cls.describe(label), cls.config_defaults, {key: value})[key]
        self._tasks[label] = TaskDef(label, cls, taskdef.class_name, {**taskdef.config, key: value})

    # -- reading and writing -------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "pipeline") -> Pipeline:
        """Build a pipeline from ``{"tasks": {LABEL: {"class": NAME, "config": {...}}}}``.

        Parameters
        ----------
        data : mapping
            The pipeline definition (as read from YAML).
        source : `str`, optional
            What ``data`` came from, for messages (a file name).

        Raises
        ------
        PipelineDefinitionError
            If the structure is wrong, a task is unknown or a config invalid;
            the message starts with ``source`` and names the label.
        """
        if not isinstance(data, Mapping):
            raise PipelineDefinitionError(
                f"{source}: a pipeline is a mapping with a 'tasks' key, got "
                f"{type(data).__name__}"
            )
        unknown = sorted(set(map(str, data)) - _TOP_KEYS)
        if unknown:
            raise PipelineDefinitionError(
                f"{source}: unknown top-level key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_TOP_KEYS))}"
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise PipelineDefinitionError(f"{source}: 'description' must be a string")
        tasks = data.get("tasks")
        if not isinstance(tasks, Mapping) or not tasks:
            raise PipelineDefinitionError(
                f"{source}: 'tasks' must be a non-empty mapping of LABEL to "
                "{class: NAME, config: {...}}"
            )
        pipeline = cls(description)
        for label, entry in tasks.items():
            where = f"{source}: task {label!r}"
            if not isinstance(entry, Mapping):
                raise PipelineDefinitionError(
                    f"{where}: expected a mapping with 'class' (and optionally 'config'), "
                    f"got {entry!r}"
                )
            extra = sorted(set(map(str, entry)) - _TASK_KEYS)
            if extra:
                raise PipelineDefinitionError(
                    f"{where}: unknown key(s) {', '.join(extra)}; allowed: class, config"
                )
            if "class" not in entry or not isinstance(entry["class"], str):
                raise PipelineDefinitionError(
                    f"{where}: 'class' is missing or not a string; give a task name "
                    "(jointcal, coadd, detection, a registered name) or package.module:Class"
                )
            config = entry.get("config") or {}
            if not isinstance(config, Mapping):
                raise PipelineDefinitionError(
                    f"{where}: 'config' must be a mapping of key to value"
                )
            try:
                pipeline.add_task(str(label), entry["class"], config)
            except PipelineDefinitionError as exc:
                raise PipelineDefinitionError(f"{where}: {exc}") from None
        return pipeline

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Read a pipeline from a YAML file (with ``yaml.safe_load``).

        Raises
        ------
        PipelineDefinitionError
            If the file is missing, is not YAML, or does not define a valid
            pipeline; the message names the file (and the label).
        """
        path = Path(path)
        try:
            with open(path, "rb") as f:
                # A pipeline is a few lines: reading at most the limit bounds memory.
                raw = f.read(_MAX_PIPELINE_BYTES + 1)
        except OSError as exc:
            raise PipelineDefinitionError(
                f"cannot read pipeline file {path}: {exc.strerror}"
            ) from None
        if len(raw) > _MAX_PIPELINE_BYTES:
            raise PipelineDefinitionError(
                f"{path}: a pipeline file is at most {_MAX_PIPELINE_BYTES:,} bytes; is it one?"
            )
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PipelineDefinitionError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            # ValueError: an integer of more than 4,300 digits; RecursionError: deep nesting.
            raise PipelineDefinitionError(f"{path}: not valid YAML: {str(exc)[:300]}") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Return the definition as plain data (what `from_dict` reads back)."""
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["tasks"] = {
            t.label: (
                {"class": t.class_name, "config": dict(t.config)}
                if t.config
                else {"class": t.class_name}
            )
            for t in self._tasks.values()
        }
        return out

    def to_yaml(self) -> str:
        """Return the definition as YAML text (what `from_file` reads back)."""
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False)
        return text

    # -- access -----------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Task labels, in pipeline order."""
        return list(self._tasks)

    def __getitem__(self, label: str) -> TaskDef:
        try:
            return self._tasks[label]
        except KeyError:
            raise PipelineDefinitionError(
                f"pipeline has no task labelled {label!r}; labels: {', '.join(self._tasks) or '(none)'}"
            ) from None

    def __iter__(self) -> Iterator[TaskDef]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, label: object) -> bool:
        return label in self._tasks

    def make_task(self, label: str) -> Task:
        """Return a configured instance of the task labelled ``label``."""
        return self[label].make_task()

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(f'{t.label}={t.class_name}' for t in self._tasks.values())})"

    def check(self) -> None:
        """Check the tasks fit together.

        Raises
        ------
        PipelineDefinitionError
            If two tasks write the same dataset type, a task reads a dataset
            type that only a later task writes, or two declarations of one
            dataset type disagree on storage class or on dimensions (beyond one
            adding dimensions to the other, as a later stage may).
        """
        declared: dict[str, tuple[str, tuple[str, ...], str]] = {}
        writers: dict[str, str] = {}
        for taskdef in self:
            cls = taskdef.task_class
            for kind, specs in (("input", cls.inputs), ("output", cls.outputs)):
                for name, spec in specs.items():
                    seen = declared.setdefault(
                        spec.dataset_type, (taskdef.label, spec.dimensions, spec.storage_class)
                    )
                    # A later stage may add a dimension (jointcal's calexp gains tract):
                    # one declaration's dimensions must contain the other's.
                    a, b = set(seen[1]), set(spec.dimensions)
                    if seen[2] != spec.storage_class or not (a <= b or b <= a):
                        raise PipelineDefinitionError(
                            f"task {taskdef.label!r} {kind} {name!r} declares {spec.dataset_type} "
                            f"as ({', '.join(spec.dimensions)}) {spec.storage_class}, but task "
                            f"{seen[0]!r} declares it as ({', '.join(seen[1])}) {seen[2]}"
                        )
            for spec in cls.outputs.values():
                if spec.dataset_type in writers:
                    raise PipelineDefinitionError(
                        f"tasks {writers[spec.dataset_type]!r} and {taskdef.label!r} both write "
                        f"{spec.dataset_type}; within one output run each dataset type has one writer"
                    )
                writers[spec.dataset_type] = taskdef.label
        order = {label: i for i, label in enumerate(self.labels)}
        for taskdef in self:
            for spec in taskdef.task_class.inputs.values():
                writer = writers.get(spec.dataset_type)
                if writer is not None and order[writer] > order[taskdef.label]:
                    raise PipelineDefinitionError(
                        f"task {taskdef.label!r} reads {spec.dataset_type}, which the later task "
                        f"{writer!r} writes; put {writer!r} first"
                    )

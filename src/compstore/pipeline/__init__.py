"""Pipelines: tasks on in-memory objects, and the machinery that runs them on a repository.

Two layers, usable separately:

- `Task` subclasses are algorithms: ``task.run(**objects) -> dict`` needs no
  repository at all.
- `Pipeline` (ordered, labelled, configured tasks), `build_graph` (which
  units of work a repository offers) and `execute` (read inputs, run, write
  outputs with provenance) connect tasks to a `~compstore.Butler`. The
  ``compstore run`` command is exactly::

      butler = Butler(repo, collections=[...], run=OUTPUT)
      pipeline = Pipeline.from_file(PIPELINE)
      report = execute(pipeline, butler, where=..., jobs=...)

See ``docs/pipelines.md``.
"""

from __future__ import annotations

from ._config import TaskConfig
from ._executor import ExecutionReport, QuantumResult, execute, run_quantum
from ._graph import QuantumGraph, build_graph
from ._pipeline import Pipeline, TaskDef
from ._registry import get_task_class, register_task, registered_tasks
from ._task import Input, Output, PredictedRef, Quantum, Task, project

__all__ = [
    "ExecutionReport",
    "Input",
    "Output",
    "Pipeline",
    "PredictedRef",
    "Quantum",
    "QuantumGraph",
    "QuantumResult",
    "Task",
    "TaskConfig",
    "TaskDef",
    "build_graph",
    "execute",
    "get_task_class",
    "project",
    "register_task",
    "registered_tasks",
    "run_quantum",
]

"""The task name registry: how a name in a pipeline file becomes a `Task` class.

A name is looked up, in order, among

1. names registered in this process with `register_task` (the built-in
   ``jointcal``, ``coadd`` and ``detection`` are pre-registered and imported
   lazily, on first use);
2. entry points in the group ``compstore.tasks`` of installed packages;
3. ``package.module:Class``, imported.

Only pipeline files and Python calls (user code) reach this module: nothing
read from a repository is ever resolved here, so opening a repository never
imports code.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import threading
from typing import TYPE_CHECKING

from ..errors import PipelineDefinitionError

if TYPE_CHECKING:
    from ._task import Task

__all__ = [
    "BUILTIN_TASKS",
    "ENTRY_POINT_GROUP",
    "class_path",
    "get_task_class",
    "register_task",
    "registered_tasks",
    "task_name_of",
]

ENTRY_POINT_GROUP = "compstore.tasks"

#: Built-in task names -> ``module:Class``, imported only when first used so that
#: the pipeline machinery works (and imports fast) without them.
BUILTIN_TASKS: dict[str, str] = {
    "jointcal": "compstore.pipeline.tasks:JointcalTask",
    "coadd": "compstore.pipeline.tasks:CoaddTask",
    "detection": "compstore.pipeline.tasks:DetectionTask",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*")

_lock = threading.Lock()
_registered: dict[str, type[Task]] = {}


def register_task(name: str, cls: type[Task], *, replace: bool = False) -> None:
    """Make ``name`` stand for task class ``cls`` in pipeline files and `Pipeline.add_task`.

    Parameters
    ----------
    name : `str`
        The name, e.g. ``"recalibrate"`` (letters, digits, ``_ . -``).
    cls : `type` [`Task`]
        The task class.
    replace : `bool`, optional
        Allow rebinding a name that stands for another class.

    Raises
    ------
    PipelineDefinitionError
        If ``name`` is malformed, ``cls`` is not a `Task` subclass, or the name
        is taken by another class and ``replace`` is false.
    """
    from ._task import Task

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PipelineDefinitionError(
            f"invalid task name {name!r}: use letters, digits, '_', '.', '-'"
        )
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise PipelineDefinitionError(
            f"cannot register {cls!r} as task {name!r}: not a Task subclass"
        )
    with _lock:
        current = _registered.get(name)
        if current is not None and current is not cls and not replace:
            raise PipelineDefinitionError(
                f"task name {name!r} stands for {class_path(current)} already; "
                "pick another name or pass replace=True"
            )
        _registered[name] = cls


def registered_tasks() -> dict[str, str]:
    """Return every known task name and what it stands for (``module:Class``)."""
    names = dict(BUILTIN_TASKS)
    names.update({n: class_path(c) for n, c in _registered.items()})
    for ep in _entry_points():
        names.setdefault(ep.name, ep.value)
    return dict(sorted(names.items()))


def class_path(cls: type) -> str:
    """Return ``module:QualifiedName`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def task_name_of(cls: type[Task]) -> str:
    """Return the name a pipeline file should use for ``cls``.

    A registered (or built-in) name if there is one, else ``module:Class``.
    """
    with _lock:
        for name, registered in _registered.items():
            if registered is cls:
                return name
    path = class_path(cls)
    for name, target in BUILTIN_TASKS.items():
        if target == path:
            return name
    return path


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _import_path(path: str, name: str) -> type[Task]:
    from ._task import Task

    module_name, _, qualname = path.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineDefinitionError(
            f"cannot import module {module_name!r} for task {name!r}: {exc}"
        ) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PipelineDefinitionError(
                f"module {module_name!r} has no {qualname!r} (task {name!r})"
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise PipelineDefinitionError(
            f"{path} (task {name!r}) is not a compstore.pipeline.Task subclass"
        )
    return obj


def get_task_class(name: str | type[Task]) -> type[Task]:
    """Return the task class a name stands for (see the module docstring for the order).

    Parameters
    ----------
    name : `str` or `type` [`Task`]
        A registered or built-in name, an entry point name, ``module:Class``,
        or a task class (returned as is after a check).

    Raises
    ------
    PipelineDefinitionError
        If nothing goes by that name, its module cannot be imported, or it is
        not a `Task` subclass. The message lists the known names.
    """
    from ._task import Task

    if isinstance(name, type):
        if issubclass(name, Task):
            return name
        raise PipelineDefinitionError(f"{name!r} is not a compstore.pipeline.Task subclass")
    if not isinstance(name, str):
        raise PipelineDefinitionError(f"a task class is named by a string, got {name!r}")
    with _lock:
        found = _registered.get(name)
    if found is not None:
        return found
    if name in BUILTIN_TASKS:
        try:
            cls = _import_path(BUILTIN_TASKS[name], name)
        except PipelineDefinitionError as exc:
            raise PipelineDefinitionError(
                f"built-in task {name!r} ({BUILTIN_TASKS[name]}) is not available: {exc}"
            ) from exc
        with _lock:
            _registered.setdefault(name, cls)
        return cls
    for ep in _entry_points():
        if ep.name == name:
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plug-in must not read as "unknown name"
                raise PipelineDefinitionError(
                    f"entry point {name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} failed to "
                    f"load: {exc}"
                ) from exc
            return get_task_class(loaded)
    if _PATH.fullmatch(name):
        return _import_path(name, name)
    raise PipelineDefinitionError(
        f"unknown task {name!r}: known names are {', '.join(registered_tasks())}; "
        "or register one with register_task(name, cls), or write package.module:Class"
    )

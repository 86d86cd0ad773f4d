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

import re
from typing import TYPE_CHECKING

from .._plugins import Plugins, import_path
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


def _accept(name: str, loaded: object) -> type[Task]:
    from ._task import Task

    if not (isinstance(loaded, type) and issubclass(loaded, Task)):
        raise PipelineDefinitionError(
            f"{loaded!r:.100} (task {name!r}) is not a compstore.pipeline.Task subclass"
        )
    return loaded


def class_path(cls: type) -> str:
    """Return ``module:QualifiedName`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


_tasks: Plugins[type[Task]] = Plugins(
    ENTRY_POINT_GROUP,
    "task",
    PipelineDefinitionError,
    builtins=lambda: BUILTIN_TASKS,
    accept=_accept,
    describe=class_path,
    same=lambda old, new: old is new,
)


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
    _tasks.register(name, cls, replace=replace)


def registered_tasks() -> dict[str, str]:
    """Return every known task name and what it stands for (``module:Class``)."""
    return _tasks.names()


def task_name_of(cls: type[Task]) -> str:
    """Return the name a pipeline file should use for ``cls``.

    A registered (or built-in) name if there is one, else ``module:Class``.
    """
    for name, registered in _tasks.loaded().items():
        if registered is cls:
            return name
    path = class_path(cls)
    for name, target in BUILTIN_TASKS.items():
        if target == path:
            return name
    return path


def _import_path(path: str, name: str) -> type[Task]:
    module_name, _, qualname = path.partition(":")
    try:
        loaded = import_path(path)
    except ImportError as exc:
        raise PipelineDefinitionError(
            f"cannot import module {module_name!r} for task {name!r}: {exc}"
        ) from exc
    except AttributeError:
        raise PipelineDefinitionError(
            f"module {module_name!r} has no {qualname!r} (task {name!r})"
        ) from None
    return _accept(name, loaded)


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
    if isinstance(name, type):
        return _accept(name.__qualname__, name)
    if not isinstance(name, str):
        raise PipelineDefinitionError(f"a task class is named by a string, got {name!r}")
    found = _tasks.get(name)
    if found is not None:
        return found
    if _PATH.fullmatch(name):
        return _import_path(name, name)
    raise PipelineDefinitionError(
        f"unknown task {name!r}: known names are {', '.join(registered_tasks())}; "
        "or register one with register_task(name, cls), or write package.module:Class"
    )

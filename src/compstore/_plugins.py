"""Named plug-ins: one table per kind, filled from built-ins, registrations and entry points.

Storage classes (entry-point group ``compstore.storage_classes``), combiners
(``compstore.combiners``) and pipeline tasks (``compstore.tasks``) are each a
`Plugins` table. A name is looked up, in order, among

1. plug-ins registered in this process (`Plugins.register`), and built-ins
   already loaded;
2. the built-ins, each loaded on first use (an object, or a ``module:attr``
   path imported then, so that a table costs no import until it is used);
3. the entry points of installed packages in the table's group, the one of
   that name loaded on first use (a broken plug-in breaks only its own name).

A repository names plug-ins (``"Exposure"``), never import paths, so opening
one runs no code from it; only user code and pipeline files reach the tasks'
``module:Class`` fallback (`compstore.pipeline.get_task_class`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from .errors import CompstoreError

__all__ = ["Plugins", "import_path", "instance_check"]

T = TypeVar("T")


def import_path(path: str) -> object:
    """Import ``module:qualified.name`` and return the object.

    Raises
    ------
    ImportError
        If the module cannot be imported.
    AttributeError
        If it has no such attribute.
    """
    module_name, _, qualname = path.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def instance_check(
    base: type[T], key_of: Callable[[T], str], group: str, error: type[CompstoreError]
) -> Callable[[str, object], T]:
    """An ``accept`` for plug-ins that are instances of ``base`` keyed by ``key_of``.

    What was loaded may be the class (instantiated with no arguments) or an
    instance; either way its key must be the entry point's name.
    """

    def accept(name: str, loaded: object) -> T:
        try:
            instance = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plug-in's constructor
            raise error(
                f"entry point {name!r} in group {group!r}: {loaded!r:.100}() failed: {exc}; "
                "fix or uninstall the package that provides it"
            ) from exc
        if not isinstance(instance, base) or key_of(instance) != name:
            raise error(
                f"entry point {name!r} in group {group!r} must load a {base.__name__} "
                f"for {name!r}, not {instance!r:.100}"
            )
        return instance

    return accept


class Plugins(Generic[T]):
    """The plug-ins of one kind, by name.

    Parameters
    ----------
    group
        The entry-point group third-party packages register in.
    kind
        What a plug-in is, for messages ("storage class", "task").
    error
        The `CompstoreError` subclass raised for a plug-in that fails to load,
        is not what it should be, or clashes with another.
    builtins
        Called once, on first use: built-in name -> plug-in, or a
        ``module:attr`` path to import when that name is first used.
    accept
        ``accept(name, loaded)``: the plug-in made of what an entry point or
        path loaded (e.g. an instance of a loaded class); raises ``error`` if
        it is not one for ``name``.
    describe
        A plug-in's description in messages (e.g. its class path).
    same
        Whether registering ``new`` where ``old`` is is a repeat, not a clash.
    """

    def __init__(
        self,
        group: str,
        kind: str,
        error: type[CompstoreError],
        *,
        builtins: Callable[[], Mapping[str, T | str]],
        accept: Callable[[str, object], T],
        describe: Callable[[T], str],
        same: Callable[[T, T], bool],
    ) -> None:
        self.group = group
        self.kind = kind
        self._error = error
        self._builtins_of = builtins
        self._builtins: Mapping[str, T | str] | None = None
        self._accept = accept
        self._describe = describe
        self._same = same
        self._lock = threading.RLock()
        self._loaded: dict[str, T] = {}

    # -- what is there ------------------------------------------------------------------
    def entry_points(self) -> list[importlib.metadata.EntryPoint]:
        """The entry points of the group in installed packages (not loaded)."""
        return list(importlib.metadata.entry_points(group=self.group))

    def builtins(self) -> Mapping[str, T | str]:
        """Built-in name -> plug-in or ``module:attr`` path (computed once)."""
        with self._lock:
            if self._builtins is None:
                self._builtins = dict(self._builtins_of())
            return self._builtins

    def names(self) -> dict[str, str]:
        """Every known name and what it stands for, sorted by name (loads nothing new)."""
        with self._lock:
            known: dict[str, str] = {
                name: value if isinstance(value, str) else self._describe(value)
                for name, value in self.builtins().items()
            }
            known.update({name: self._describe(p) for name, p in self._loaded.items()})
        for ep in self.entry_points():
            known.setdefault(ep.name, ep.value)
        return dict(sorted(known.items()))

    def loaded(self) -> dict[str, T]:
        """The plug-ins registered or loaded so far, by name."""
        with self._lock:
            return dict(self._loaded)

    # -- lookups and registrations ------------------------------------------------------
    def get(self, name: str) -> T | None:
        """The plug-in called ``name``, loaded now if need be; None if there is none.

        Raises
        ------
        CompstoreError
            (this table's ``error``) If the built-in or entry point of that
            name fails to load or loads something else than a plug-in for it.
        """
        if not isinstance(name, str):  # a name read from a damaged manifest, say {}
            return None
        found = self._loaded.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._loaded.get(name)
            if found is not None:
                return found
            builtin = self.builtins().get(name)
            if builtin is not None:
                plugin = self._load_builtin(name, builtin)
            else:
                ep = next((e for e in self.entry_points() if e.name == name), None)
                if ep is None:
                    return None
                plugin = self._load_entry_point(ep)
            return self._loaded.setdefault(name, plugin)

    def register(self, name: str, plugin: T, *, replace: bool = False) -> None:
        """Make ``name`` stand for ``plugin`` in this process.

        Raises
        ------
        CompstoreError
            (this table's ``error``) If ``name`` stands for another plug-in
            already and ``replace`` is false.
        """
        with self._lock:
            if not replace:
                existing = self._loaded.get(name)
                builtin = self.builtins().get(name) if existing is None else None
                if isinstance(builtin, str):  # compared by path: nothing imported
                    clash = builtin if self._describe(plugin) != builtin else None
                else:
                    existing = existing if existing is not None else builtin
                    same = existing is None or self._same(existing, plugin)
                    clash = None if same else self._describe(existing)  # type: ignore[arg-type]
                if clash is not None:
                    raise self._error(
                        f"{self.kind} name {name!r} is registered already, for {clash}; "
                        "pick another name or pass replace=True"
                    )
            self._loaded[name] = plugin

    def forget(self, name: str) -> None:
        """Drop what ``name`` was registered or loaded as (the next `get` loads it afresh)."""
        with self._lock:
            self._loaded.pop(name, None)

    # -- loading ------------------------------------------------------------------------
    def _load_builtin(self, name: str, builtin: T | str) -> T:
        if not isinstance(builtin, str):
            return builtin
        try:
            loaded = import_path(builtin)
        except (ImportError, AttributeError) as exc:
            raise self._error(
                f"built-in {self.kind} {name!r} ({builtin}) is not available: {exc}"
            ) from exc
        return self._accept(name, loaded)

    def _load_entry_point(self, ep: importlib.metadata.EntryPoint) -> T:
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in must not read as "unknown name"
            raise self._error(
                f"{self.kind} plug-in {ep.name!r} ({ep.value}) in entry-point group "
                f"{self.group!r} failed to load: {exc}; fix or uninstall the package "
                "that provides it"
            ) from exc
        return self._accept(ep.name, loaded)

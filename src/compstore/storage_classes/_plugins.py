"""Loading plug-ins from an entry-point group: one way, for every kind of plug-in.

Storage classes (``compstore.storage_classes``) and combiners
(``compstore.combiners``) are both named plug-ins: an entry point's name is
the plug-in's key, and it loads a class (instantiated with no arguments) or
an instance whose own key must equal that name.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from importlib.metadata import entry_points
from typing import Any

from ..errors import StorageClassError

__all__ = ["load_entry_points"]


def load_entry_points(
    group: str,
    into: MutableMapping[str, Any],
    base: type,
    key_of: Callable[[Any], str],
    kind: str,
) -> None:
    """Add every plug-in of entry-point ``group`` to ``into`` (keys already there win).

    Parameters
    ----------
    group
        The entry-point group.
    into
        Key -> plug-in; built-ins and explicit registrations are in it already.
    base
        What each plug-in must be an instance of.
    key_of
        The plug-in's own key (``name``, ``storage_class``), checked against the
        entry point's name.
    kind
        What a plug-in is, for messages ("storage class", "combiner").

    Raises
    ------
    StorageClassError
        If a plug-in fails to load, or loads something else than a ``base``
        keyed by its entry point's name.
    """
    for ep in entry_points(group=group):
        if ep.name in into:
            continue  # a built-in or an explicit registration wins
        try:
            loaded = ep.load()
        except Exception as err:  # a broken plug-in must not break every repository
            raise StorageClassError(
                f"{kind} plug-in {ep.name!r} ({ep.value}) failed to load: {err}; "
                "fix or uninstall the package that provides it"
            ) from err
        instance = loaded() if isinstance(loaded, type) else loaded
        if not isinstance(instance, base) or key_of(instance) != ep.name:
            raise StorageClassError(
                f"entry point {ep.name!r} in group {group!r} must load a {base.__name__} "
                f"for {ep.name!r}"
            )
        into[ep.name] = instance

"""The one walk over a manifest tree: every component a dataset's manifest needs.

`walk_entries` is the traversal (a stack, each manifest once); `walk` is what
readers, `gc`, `subset`, `stats` and removal use of it; `verify` uses
`walk_entries` in its tolerant mode, which reports what is damaged instead of
raising, so that it checks everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import CompstoreError
from ._manifest import Manifest, check_entry, entry_kind

__all__ = ["walk", "walk_entries", "OnUnreadable"]

#: ``on_unreadable(digest, error)`` of `walk_entries`: the components to walk of a
#: manifest that could not be read (salvaged some other way), or None to skip it.
OnUnreadable = Callable[[str, CompstoreError], "Mapping[str, Any] | None"]


def walk_entries(
    load: Callable[[str], Manifest],
    digest: str,
    *,
    seen: set[str] | None = None,
    on_unreadable: OnUnreadable | None = None,
) -> Iterator[tuple[str, str, str, Any]]:
    """Yield ``(kind, target, name, entry)`` for manifest ``digest`` and everything it names.

    ``kind`` is ``"manifest"`` (``digest`` itself first, then each nested
    manifest, once: ``name`` is ``""`` and ``entry`` None), ``"array"`` or
    ``"document"`` (a digest; repeated if named twice), ``"dataset"`` (the ID
    of another dataset a reference entry names; its own components are not
    walked: they are that dataset's), each with the ``name`` and ``entry``
    of the manifest that names it. Iterative: however deep manifests nest,
    the walk ends without exhausting the stack.

    Parameters
    ----------
    load
        Returns the parsed manifest of a digest (e.g. `ObjectIO.manifest`).
    digest
        The manifest to start from.
    seen
        Manifests walked already (by an earlier call, for another dataset):
        not walked again. Updated with those this walk meets.
    on_unreadable
        The tolerant mode, for tools that report damage and go on (`verify`).
        A manifest that does not load is given to it, and its return value
        walked instead (None: nothing). Entries are then taken as
        `entry_kind` reads them, leniently (a reference's ID and component
        are not checked), and one that names nothing readable is yielded as
        ``("malformed", manifest, name, entry)``, ``manifest`` holding it.
        Without it, both raise.

    Raises
    ------
    CorruptBlobError
        Without ``on_unreadable``: if a manifest on the way is damaged, or an
        entry malformed.
    BlobNotFoundError
        Without ``on_unreadable``: if a manifest on the way is missing.
    """
    seen = set() if seen is None else seen
    if digest in seen:
        return
    seen.add(digest)
    stack = [digest]
    while stack:
        manifest = stack.pop()
        yield "manifest", manifest, "", None
        if on_unreadable is None:
            components: Mapping[str, Any] = load(manifest).components
        else:
            try:
                components = load(manifest).components
            except CompstoreError as exc:
                salvaged = on_unreadable(manifest, exc)
                if salvaged is None:
                    continue
                components = salvaged
        for name, entry in components.items():
            if on_unreadable is None:
                check_entry(entry)
                kind = _kind(entry)
            else:
                found = entry_kind(entry)
                if found is None:
                    yield "malformed", manifest, name, entry
                    continue
                kind = found
            target = entry[kind]
            if kind == "manifest":
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
            else:
                yield kind, target, name, entry


def _kind(entry: Mapping[str, Any]) -> str:
    # check_entry passed: the first kind key is there, naming a string.
    if "array" in entry:
        return "array"
    if "document" in entry:
        return "document"
    if "manifest" in entry:
        return "manifest"
    return "dataset"


def walk(
    load: Callable[[str], Manifest], digest: str, *, datasets: bool = False
) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, target)`` for manifest ``digest`` and everything it names.

    ``kind`` is ``"manifest"`` (``digest`` itself first, then each nested
    manifest, once), ``"array"`` or ``"document"`` (a digest; repeated if
    named twice), or, with ``datasets``, ``"dataset"`` (the UUID of another
    dataset a precursor entry refers to; its own components are not walked:
    they are that dataset's). `walk_entries` is the walk.

    Parameters
    ----------
    load
        Returns the parsed manifest of a digest (e.g. `ObjectIO.manifest`).
    digest
        The manifest to start from.
    datasets
        Also yield references to other datasets.

    Raises
    ------
    CorruptBlobError
        If a manifest on the way is damaged, or an entry malformed.
    BlobNotFoundError
        If a manifest on the way is missing.
    """
    for kind, target, _, _ in walk_entries(load, digest):
        if datasets or kind != "dataset":
            yield kind, target

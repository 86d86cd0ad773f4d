"""The table of known storage classes: built-ins plus entry-point plug-ins.

A repository names storage classes (``"Exposure"``), never import paths, so
opening a repository runs no code from it. Third-party packages add storage
classes through the ``compstore.storage_classes`` entry-point group: the entry
point's name is the storage class name and it loads a `StorageClass` subclass.
"""

from __future__ import annotations

import threading

from ..errors import StorageClassError, UnknownStorageClassError
from ._base import ArrayStorageClass, StorageClass
from ._plugins import load_entry_points

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_storage_class",
    "register_storage_class",
    "storage_class_names",
]

ENTRY_POINT_GROUP = "compstore.storage_classes"

_lock = threading.Lock()
_classes: dict[str, StorageClass] = {}
_entry_points_loaded = False


def _builtins() -> list[StorageClass]:
    from ._catalog import SourceCatalogStorageClass, TableStorageClass
    from ._coadd import CoaddInputsStorageClass
    from ._image import ExposureStorageClass, MaskStorageClass
    from ._leaf import (
        BackgroundStorageClass,
        Box2IStorageClass,
        CalibStorageClass,
        MetadataStorageClass,
        PsfStorageClass,
        VisitInfoStorageClass,
        WcsStorageClass,
    )

    return [
        ArrayStorageClass(),
        WcsStorageClass(),
        CalibStorageClass(),
        PsfStorageClass(),
        BackgroundStorageClass(),
        VisitInfoStorageClass(),
        Box2IStorageClass(),
        MetadataStorageClass(),
        MaskStorageClass(),
        ExposureStorageClass(),
        TableStorageClass(),
        SourceCatalogStorageClass(),
        CoaddInputsStorageClass(),
    ]


def _ensure_loaded() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    with _lock:
        if _entry_points_loaded:
            return
        for storage_class in _builtins():
            _classes.setdefault(storage_class.name, storage_class)
        load_entry_points(
            ENTRY_POINT_GROUP, _classes, StorageClass, lambda sc: sc.name, "storage class"
        )
        _entry_points_loaded = True


def register_storage_class(storage_class: StorageClass, *, replace: bool = False) -> None:
    """Make ``storage_class`` known under its ``name`` in this process.

    Raises
    ------
    StorageClassError
        If another storage class has the name already and ``replace`` is false.
    """
    _ensure_loaded()
    with _lock:
        existing = _classes.get(storage_class.name)
        if existing is not None and not replace and type(existing) is not type(storage_class):
            raise StorageClassError(
                f"a storage class named {storage_class.name!r} is registered already "
                f"({type(existing).__qualname__}); pass replace=True to replace it"
            )
        _classes[storage_class.name] = storage_class


def get_storage_class(name: str) -> StorageClass:
    """Return the storage class called ``name``.

    Raises
    ------
    UnknownStorageClassError
        If no built-in, registered or entry-point storage class has that name.
    """
    _ensure_loaded()
    try:
        return _classes[name]
    except (KeyError, TypeError):  # TypeError: a name read from a damaged manifest, say {}
        raise UnknownStorageClassError(
            f"unknown storage class {str(name)[:100]!r}; known: {', '.join(sorted(_classes))}. "
            f"Third-party storage classes register in the {ENTRY_POINT_GROUP!r} entry-point group"
        ) from None


def storage_class_names() -> list[str]:
    """Return the names of every known storage class, sorted."""
    _ensure_loaded()
    return sorted(_classes)

"""The table of known storage classes: built-ins plus entry-point plug-ins.

A repository names storage classes (``"Exposure"``), never import paths, so
opening a repository runs no code from it. Third-party packages add storage
classes through the ``compstore.storage_classes`` entry-point group: the entry
point's name is the storage class name and it loads a `StorageClass` subclass
(or instance). The table is a `compstore._plugins.Plugins`, as the combiners'
and the pipeline tasks' are.
"""

from __future__ import annotations

from .._plugins import Plugins, instance_check
from ..errors import StorageClassError, UnknownStorageClassError
from ._base import ArrayStorageClass, StorageClass

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_storage_class",
    "register_storage_class",
    "storage_class_names",
]

ENTRY_POINT_GROUP = "compstore.storage_classes"

def _builtins() -> dict[str, StorageClass]:
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

    classes: list[StorageClass] = [
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
    return {c.name: c for c in classes}


_classes: Plugins[StorageClass] = Plugins(
    ENTRY_POINT_GROUP,
    "storage class",
    StorageClassError,
    builtins=_builtins,
    accept=instance_check(StorageClass, lambda sc: sc.name, ENTRY_POINT_GROUP, StorageClassError),
    describe=lambda sc: type(sc).__qualname__,
    same=lambda old, new: type(old) is type(new),
)


def register_storage_class(storage_class: StorageClass, *, replace: bool = False) -> None:
    """Make ``storage_class`` known under its ``name`` in this process.

    Raises
    ------
    StorageClassError
        If another storage class has the name already and ``replace`` is false.
    """
    _classes.register(storage_class.name, storage_class, replace=replace)


def get_storage_class(name: str) -> StorageClass:
    """Return the storage class called ``name``.

    Raises
    ------
    UnknownStorageClassError
        If no built-in, registered or entry-point storage class has that name.
    """
    found = _classes.get(name)
    if found is None:
        raise UnknownStorageClassError(
            f"unknown storage class {str(name)[:100]!r}; known: {', '.join(_classes.names())}. "
            f"Third-party storage classes register in the {ENTRY_POINT_GROUP!r} entry-point group"
        )
    return found


def storage_class_names() -> list[str]:
    """Return the names of every known storage class, sorted."""
    return list(_classes.names())

"""Storage classes: how each Python type splits into components and joins back.

Built in: ``Exposure``, ``Mask``, ``SourceCatalog``, ``Table``, ``Array`` and the
leaf values ``Wcs``, ``Calib``, ``Psf``, ``VisitInfo``, ``Background``,
``Box2I``, ``Metadata``. Third-party storage classes register through the
``compstore.storage_classes`` entry-point group (see ``docs/concepts.md``).
"""

from __future__ import annotations

from ._base import (
    ArrayStorageClass,
    ComponentReader,
    CompositeStorageClass,
    DatasetReference,
    Disassembly,
    DocumentStorageClass,
    StorageClass,
)
from ._combine import (
    COMBINER_ENTRY_POINT_GROUP,
    Combiner,
    Member,
    get_combiner,
    register_combiner,
)
from ._registry import (
    ENTRY_POINT_GROUP,
    get_storage_class,
    register_storage_class,
    storage_class_names,
)

__all__ = [
    "COMBINER_ENTRY_POINT_GROUP",
    "Combiner",
    "Member",
    "get_combiner",
    "register_combiner",
    "DOCUMENT_FORMAT",
    "ENTRY_POINT_GROUP",
    "MANIFEST_FORMAT",
    "ArrayStorageClass",
    "ComponentReader",
    "CompositeStorageClass",
    "DatasetReference",
    "Disassembly",
    "DocumentStorageClass",
    "ObjectIO",
    "StorageClass",
    "WriteReport",
    "get_storage_class",
    "register_storage_class",
    "storage_class_names",
]

# The manifest format and the I/O engine moved to `compstore.datastore`, which
# sits above this package; these names are still answered here, on first use,
# for code written before the move (no import of the layer above at load time).
_MOVED = frozenset({"DOCUMENT_FORMAT", "MANIFEST_FORMAT", "ObjectIO", "WriteReport"})


def __getattr__(name: str) -> object:
    if name in _MOVED:
        from .. import datastore

        return getattr(datastore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The SQL registry: dataset types, data IDs, collections, datasets and provenance.

Built on SQLAlchemy Core over a SQLite file (or a PostgreSQL URL). This
package imports nothing from compstore but :mod:`compstore.errors`.
"""

from __future__ import annotations

from ._definitions import DatasetTypeDefinition
from ._dimensions import BUILTIN_DIMENSIONS
from ._ids import derived_dataset_id
from ._registry import Registry
from ._types import CollectionType, DataId, DatasetRef, DatasetType
from .where import parse_where

__all__ = [
    "BUILTIN_DIMENSIONS",
    "CollectionType",
    "DataId",
    "DatasetRef",
    "DatasetType",
    "DatasetTypeDefinition",
    "Registry",
    "derived_dataset_id",
    "parse_where",
]

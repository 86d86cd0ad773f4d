"""The datastore: the manifest format, and the engine writing and reading composites.

It sits between the Butler (above) and the storage classes, the cache and the
blob store (below): `ObjectIO` writes an object as components written once by
digest plus manifests (`_write`), and reads it back through the identity cache
(`_read`); `Manifest` is the typed manifest (`_manifest`), `walk` the one walk
over a manifest tree (`_walk`), and `DatasetResolver` what it asks of the
registry, through the Butler (`_resolve`).
"""

from __future__ import annotations

from ._manifest import (
    DOCUMENT_FORMAT,
    ENTRY_KINDS,
    MANIFEST_FORMAT,
    MAX_MANIFEST_DEPTH,
    ArrayEntry,
    DatasetEntry,
    DocumentEntry,
    Entry,
    Manifest,
    ManifestEntry,
    check_entry,
    entry_kind,
    parse_document,
    parse_manifest,
)
from ._read import ObjectReader
from ._resolve import DatasetResolver
from ._walk import walk, walk_entries
from ._write import ASYNC_WRITE_MIN_BYTES, ObjectIO, WriteReport

__all__ = [
    "ASYNC_WRITE_MIN_BYTES",
    "DOCUMENT_FORMAT",
    "ENTRY_KINDS",
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_DEPTH",
    "ArrayEntry",
    "DatasetEntry",
    "DatasetResolver",
    "DocumentEntry",
    "Entry",
    "Manifest",
    "ManifestEntry",
    "ObjectIO",
    "ObjectReader",
    "WriteReport",
    "check_entry",
    "entry_kind",
    "parse_document",
    "parse_manifest",
    "walk",
    "walk_entries",
]

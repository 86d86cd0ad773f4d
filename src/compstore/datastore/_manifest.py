"""The manifest format: its constants, its entry types, the typed `Manifest`, parsing and writing.

A dataset's root is always a *manifest* document::

    {"format": "compstore.manifest/1", "storage_class": "Exposure",
     "attributes": {"xy0": [0, 0], ...},
     "components": {"image": {"storage_class": "Array", "array": "<digest>",
                              "dtype": "<f4", "shape": [2048, 2048]},
                    "mask":  {"storage_class": "Mask", "manifest": "<digest>"},
                    "wcs":   {"storage_class": "Wcs", "document": "<digest>"},
                    "inputs": {"storage_class": "Wcs", "dataset": "<uuid>", "component": "wcs"}}}

A leaf-typed dataset (a lone Wcs) has one component, ``value``. Entries are
self-describing, so reading never needs the parent storage class to know its
children. ``docs/format.md`` is the specification.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Union, final

from ..cas import canonical_json, parse_json
from ..errors import CorruptBlobError

__all__ = [
    "DOCUMENT_FORMAT",
    "ENTRY_KINDS",
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_DEPTH",
    "ArrayEntry",
    "DatasetEntry",
    "DocumentEntry",
    "Entry",
    "Manifest",
    "ManifestEntry",
    "check_entry",
    "entry_kind",
    "parse_document",
    "parse_manifest",
]

MANIFEST_FORMAT: Final = "compstore.manifest/1"
DOCUMENT_FORMAT: Final = "compstore.document/1"

#: Manifest entry kinds, by the key that holds the digest or reference.
ENTRY_KINDS: Final = ("array", "document", "manifest", "dataset")

#: The deepest chain of manifests (nested composites and references to other
#: datasets) a read follows. Built-in composites nest two or three levels; a
#: deeper chain is damaged or hostile, and would exhaust the stack of the
#: (recursive) assemblers. ``docs/format.md`` ("Manifests") states it.
MAX_MANIFEST_DEPTH: Final = 64


@final
class ArrayEntry(TypedDict):
    """An array component: its digest, dtype (numpy ``dtype.str``) and shape."""

    storage_class: str
    array: str
    dtype: str
    shape: list[int]


@final
class DocumentEntry(TypedDict):
    """A leaf value stored as a canonical JSON document."""

    storage_class: str
    document: str


@final
class ManifestEntry(TypedDict):
    """A nested composite: the digest of its own manifest."""

    storage_class: str
    manifest: str


class _DatasetEntryBase(TypedDict):
    storage_class: str
    dataset: str


@final
class DatasetEntry(_DatasetEntryBase, total=False):
    """A reference to another dataset (its UUID), or to one ``component`` of it."""

    component: str


#: One entry of a manifest's ``components`` (entries are plain dicts on disk
#: and in memory: reads index them on the hot path).
Entry = Union[ArrayEntry, DocumentEntry, ManifestEntry, DatasetEntry]


@dataclass(frozen=True, eq=False)
class Manifest(Mapping[str, Any]):
    """One parsed manifest: a composite's storage class, attributes and component entries.

    Treat ``attributes`` and ``components`` as read-only: parsed manifests are
    cached and shared. The manifest also reads as the mapping it was parsed
    from (``manifest["components"]``), for code written against the document.
    """

    storage_class: str
    attributes: Mapping[str, Any]
    components: Mapping[str, Entry]

    def __getitem__(self, key: str) -> Any:
        if key == "format":
            return MANIFEST_FORMAT
        if key in ("storage_class", "attributes", "components"):
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("format", "storage_class", "attributes", "components"))

    def __len__(self) -> int:
        return 4

    def to_document(self, encode: Callable[[Any], bytes] = canonical_json) -> bytes:
        """The canonical JSON bytes of this manifest (what its digest hashes).

        ``encode``: the repository's document encoding (`compstore.cas.jcs` from
        format 3, `compstore.cas.canonical_json` before).
        """
        return encode(
            {
                "format": MANIFEST_FORMAT,
                "storage_class": self.storage_class,
                "attributes": self.attributes,
                "components": self.components,
            }
        )


def parse_document(digest: str, data: bytes) -> dict[str, Any]:
    """Parse document ``digest`` (its bytes ``data``) as a JSON object.

    Raises
    ------
    CorruptBlobError
        If it is not JSON, or not a JSON object.
    """
    try:
        value = parse_json(data)
    except ValueError as err:
        raise CorruptBlobError(
            f"document {digest} is not valid JSON ({err}); the repository may be damaged"
        ) from None
    if not isinstance(value, dict):
        raise CorruptBlobError(f"document {digest} is not a JSON object")
    return value


def parse_manifest(digest: str, data: bytes) -> Manifest:
    """Parse manifest ``digest`` from its bytes, checking its shape once.

    Entries are checked where they are followed (`check_entry`), not here.

    Raises
    ------
    CorruptBlobError
        If it is not a JSON object, not a compstore manifest, or lacks its
        storage class, attributes or components.
    """
    value = parse_document(digest, data)
    if value.get("format") != MANIFEST_FORMAT:
        raise CorruptBlobError(
            f"document {digest} is not a compstore manifest (format {value.get('format')!r}); "
            "the repository may be damaged: run `compstore verify`"
        )
    # Readers index these without looking: check their shape once, here.
    for key, kind in (("storage_class", str), ("attributes", dict), ("components", dict)):
        if not isinstance(value.get(key), kind):
            raise CorruptBlobError(
                f"manifest {digest} has no {key!r} {kind.__name__} (it has "
                f"{_type_name(value.get(key))}); the repository may be damaged: "
                "run `compstore verify`"
            )
    return Manifest(value["storage_class"], value["attributes"], value["components"])


def _type_name(value: object) -> str:
    return "none" if value is None else f"a {type(value).__name__}"


def entry_kind(entry: object) -> str | None:
    """The kind of a manifest entry (one of `ENTRY_KINDS`) whose target is a string, else None.

    Lenient: for the tools that report a malformed entry rather than fail on it.
    """
    if isinstance(entry, Mapping):
        for kind in ENTRY_KINDS:
            if isinstance(entry.get(kind), str):
                return kind
    return None


def check_entry(entry: object) -> None:
    """Raise CorruptBlobError unless ``entry`` is a manifest entry readers can follow."""
    if isinstance(entry, Mapping):
        # A plain loop, no generator: this runs for every component a read touches.
        kind = None
        for k in ENTRY_KINDS:
            if k in entry:
                kind = k
                break
        if kind is not None and isinstance(entry[kind], str):
            if kind != "dataset":
                return
            component = entry.get("component")
            if component is None or isinstance(component, str):
                try:
                    uuid.UUID(entry[kind])
                    return
                except ValueError:
                    pass
    raise CorruptBlobError(
        f"manifest entry {str(entry)[:200]} is not one of {', '.join(ENTRY_KINDS)} naming a "
        "digest or dataset ID; the repository may be damaged: run `compstore verify`"
    )

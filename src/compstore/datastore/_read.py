"""The read path: manifests, through the identity cache, back into objects."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..cache import ObjectCache
from ..cas import BlobStore
from ..errors import (
    CompstoreError,
    CorruptBlobError,
    InvalidParameterError,
    ObjectError,
    StorageClassError,
)
from ..storage_classes import CompositeStorageClass, DocumentStorageClass, get_storage_class
from ._manifest import (
    DOCUMENT_FORMAT,
    MAX_MANIFEST_DEPTH,
    Manifest,
    check_entry,
    parse_document,
    parse_manifest,
)
from ._resolve import DatasetResolver
from ._walk import walk

__all__ = ["ObjectReader"]


class _Reader:
    """A `ComponentReader` over one manifest; ``trail`` is the chain of reads that led here."""

    __slots__ = ("_io", "_manifest", "_trail")

    def __init__(self, io: ObjectReader, manifest: Manifest, trail: _Trail) -> None:
        self._io = io
        self._manifest = manifest
        self._trail = trail

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._manifest.attributes

    def has(self, name: str) -> bool:
        return name in self._manifest.components

    def get(
        self, name: str, parameters: Mapping[str, Any] | None = None, *, cache: bool = True
    ) -> Any:
        return self._io.read_entry(
            self._manifest.components[name], parameters, cache=cache, _trail=self._trail
        )

    def get_component(self, name: str, component: str) -> Any:
        entry: Mapping[str, Any] = self._manifest.components[name]
        if "manifest" not in entry:
            raise CorruptBlobError(
                f"component {name!r} is not a composite here (entry {entry!r}); "
                "run `compstore verify`"
            )
        return self._io.read(entry["manifest"], None, component=component, _trail=self._trail)


@dataclass(frozen=True)
class _Trail:
    """The manifests and datasets one read went through, outermost first.

    Bounds the depth of a read (`MAX_MANIFEST_DEPTH`) and finds a reference
    cycle (dataset A's manifest refers to B, whose manifest refers to A),
    which would otherwise recurse without end.
    """

    manifests: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()

    def enter(self, digest: str) -> _Trail:
        if len(self.manifests) >= MAX_MANIFEST_DEPTH:
            raise CorruptBlobError(
                f"manifest {self.manifests[0]} nests manifests more than {MAX_MANIFEST_DEPTH} "
                f"deep (at {digest}); the repository is damaged: run `compstore verify`"
            )
        return _Trail((*self.manifests, digest), self.datasets)

    def via(self, dataset_id: str) -> _Trail:
        if dataset_id in self.datasets:
            cycle = [*self.datasets[self.datasets.index(dataset_id):], dataset_id]
            raise CorruptBlobError(
                f"datasets refer to each other in a cycle ({' -> '.join(cycle)}); none of "
                "them can be read whole: the repository is damaged, run `compstore verify`"
            )
        return _Trail(self.manifests, (*self.datasets, dataset_id))


class ObjectReader:
    """Reads objects back from their manifests (`ObjectIO` adds the write path).

    Parameters
    ----------
    blobs
        Where components and manifests live.
    cache
        The identity cache: the same digest yields the same object while held.
    resolver
        Finds other datasets (precursor references), or None: then an entry
        referring to another dataset cannot be read.
    """

    def __init__(
        self, blobs: BlobStore, cache: ObjectCache, resolver: DatasetResolver | None = None
    ) -> None:
        self.blobs = blobs
        self.cache = cache
        self._resolver = resolver

    def manifest(self, digest: str) -> Manifest:
        """Return the parsed manifest ``digest`` (cached; treat as read-only).

        Raises
        ------
        CorruptBlobError
            If it is not a manifest (`parse_manifest`).
        BlobNotFoundError
            If it is missing.
        """
        return self.cache.get_or_load(
            "manifest:" + digest,
            lambda: parse_manifest(digest, self.blobs.get_document(digest)),
            size_of=lambda m: 1024,
        )

    def read(
        self,
        digest: str,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        *,
        _trail: _Trail = _Trail(),
    ) -> Any:
        """Read the object (or one ``component`` of it) whose manifest is ``digest``.

        Raises
        ------
        CorruptBlobError
            If a manifest on the way is damaged: not a manifest, nested more than
            `MAX_MANIFEST_DEPTH` deep, in a reference cycle, or holding values
            its storage class cannot assemble.
        BlobNotFoundError
            If a component it needs is missing.
        """
        trail = _trail.enter(digest)
        manifest = self.manifest(digest)
        sc = get_storage_class(manifest.storage_class)
        reader = _Reader(self, manifest, trail)
        if isinstance(sc, CompositeStorageClass):
            if component is not None:
                return _assembling(
                    digest, lambda: sc.read_component(reader, component, dict(parameters or {}))
                )
            params = sc.check_parameters(parameters)
            if params or not sc.cacheable:
                self._prefetch(manifest, arrays=not params)
                return _assembling(digest, lambda: sc.assemble(reader, params))
            if digest not in self.cache:
                self._prefetch(manifest, arrays=True)
            return self.cache.get_or_load(
                digest, lambda: _assembling(digest, lambda: sc.assemble(reader, {})),
                size_of=sc.size_of,
            )
        if component is not None:
            raise InvalidParameterError(
                f"storage class {sc.name!r} is a leaf value and has no component {component!r}"
            )
        if not reader.has("value"):
            raise CorruptBlobError(
                f"manifest {digest} of leaf storage class {sc.name!r} has no 'value' component; "
                "the repository may be damaged: run `compstore verify`"
            )
        return reader.get("value", parameters)

    def _prefetch(self, manifest: Manifest, *, arrays: bool) -> None:
        """Tell the store which components the manifest will read (`BlobStore.prefetch`).

        Those the identity cache holds are left out; so are arrays when
        ``arrays`` is false (a cut-out reads only part of each). Generators:
        a store that does not read ahead never walks them.
        """
        cache = self.cache
        entries = manifest.components.values()

        def documents() -> Iterator[str]:
            for e in entries:
                if not isinstance(e, Mapping):
                    continue  # (the read reports it)
                if "document" in e and e["document"] not in cache:
                    yield e["document"]
                elif "manifest" in e and "manifest:" + str(e["manifest"]) not in cache:
                    yield e["manifest"]

        def wanted() -> Iterator[str]:
            for e in entries:
                if isinstance(e, Mapping) and "array" in e and e["array"] not in cache:
                    yield e["array"]

        self.blobs.prefetch(documents(), wanted() if arrays else ())

    def read_entry(
        self,
        entry: Mapping[str, Any],
        parameters: Mapping[str, Any] | None,
        *,
        cache: bool = True,
        _trail: _Trail = _Trail(),
    ) -> Any:
        """Read one manifest entry (array, document, nested manifest or dataset reference).

        ``cache=False`` reads an array past the identity cache (unless it is
        alive there already): for values an assembler consumes.

        Raises
        ------
        CorruptBlobError
            If the entry is malformed (not a mapping, no kind, a digest or
            dataset ID that is not a string), or as `read`.
        """
        check_entry(entry)
        if "array" in entry:
            digest = entry["array"]
            region = (parameters or {}).get("region")
            if region is not None:
                return self.blobs.get_array(digest, region)
            if not cache:
                alive = self.cache.peek(digest)
                return alive if alive is not None else self.blobs.get_array(digest)
            return self.cache.get_or_load(
                digest, lambda: self.blobs.get_array(digest), size_of=lambda a: a
            )
        if "document" in entry:
            digest = entry["document"]
            return self.cache.get_or_load(digest, lambda: self._decode_document(digest))
        if "manifest" in entry:
            return self.read(entry["manifest"], parameters, _trail=_trail)
        if self._resolver is None:
            raise StorageClassError("this store cannot resolve references to other datasets")
        dataset_id = entry["dataset"]
        trail = _trail.via(dataset_id)
        return self.read(
            self._resolver.manifest_of(dataset_id), parameters, component=entry.get("component"),
            _trail=trail,
        )

    def _decode_document(self, digest: str) -> Any:
        value = parse_document(digest, self.blobs.get_document(digest))
        if value.get("format") != DOCUMENT_FORMAT:
            raise CorruptBlobError(f"document {digest} is not a compstore value document")
        sc = get_storage_class(value["storage_class"])
        if not isinstance(sc, DocumentStorageClass):
            raise CorruptBlobError(
                f"document {digest} names storage class {sc.name!r}, which is not a document type"
            )
        return sc.from_json(value["value"])

    # -- walking --------------------------------------------------------------
    def iter_components(self, digest: str) -> Iterator[tuple[str, str]]:
        """Yield ``(kind, digest)`` of every blob manifest ``digest`` needs, itself included.

        ``kind`` is ``"array"`` or ``"document"`` (manifests are documents).
        References to other datasets are not followed (they are those datasets'
        bytes). `walk` is the walk.

        Raises
        ------
        As `walk`.
        """
        for kind, target in walk(self.manifest, digest):
            yield ("document" if kind == "manifest" else kind), target

# What assemblers raise on values of the wrong type or shape in a manifest that
# parsed: its attributes, or components of another storage class than expected.
_ASSEMBLY_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def _assembling(digest: str, assemble: Callable[[], Any]) -> Any:
    """Run ``assemble``; a builtin error from it means the manifest is damaged, so say so.

    Manifests are data from disk: a hand-edited or damaged one can hold any
    JSON. The assemblers trust its shape, so their builtin errors (and an
    object's `ObjectError` over the values) are turned into a `CorruptBlobError`
    naming the manifest (the cause is chained).
    """
    try:
        return assemble()
    except ObjectError as exc:  # objects refusing the values: also the manifest's fault
        raise CorruptBlobError(
            f"manifest {digest} holds values its storage class refuses ({exc}); "
            "the repository may be damaged: run `compstore verify`"
        ) from exc
    except CompstoreError:
        raise
    except _ASSEMBLY_ERRORS as exc:
        raise CorruptBlobError(
            f"manifest {digest} cannot be assembled ({type(exc).__name__}: {str(exc)[:200]}); "
            "the repository may be damaged: run `compstore verify`"
        ) from exc

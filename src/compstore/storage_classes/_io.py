"""Objects <-> manifests: writing components once by digest and reading them back through the cache.

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

import functools
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._pool import submit
from ..cache import ObjectCache
from ..cas import BlobStore, canonical_json, check_array, digest_bytes, parse_json
from ..errors import (
    CompstoreError,
    CorruptBlobError,
    InvalidParameterError,
    ObjectError,
    StorageClassError,
)
from ._base import (
    ArrayStorageClass,
    CompositeStorageClass,
    DatasetReference,
    DocumentStorageClass,
    StorageClass,
)
from ._registry import get_storage_class

__all__ = ["DOCUMENT_FORMAT", "MANIFEST_FORMAT", "MAX_MANIFEST_DEPTH", "ObjectIO", "WriteReport"]

MANIFEST_FORMAT = "compstore.manifest/1"
DOCUMENT_FORMAT = "compstore.document/1"

# manifest entry kinds, by the key that holds the digest or reference
_KINDS = ("array", "document", "manifest", "dataset")

#: The deepest chain of manifests (nested composites and references to other
#: datasets) a read follows. Built-in composites nest two or three levels; a
#: deeper chain is damaged or hostile, and would exhaust the stack of the
#: (recursive) assemblers. ``docs/format.md`` ("Manifests") states it.
MAX_MANIFEST_DEPTH = 64


@dataclass
class WriteReport:
    """What one write added to the blob store.

    ``written`` lists the digests of the new components; ``bytes_written``
    (their size on disk) is filled by `ObjectIO.measure`, which `Butler.put`
    does not pay for and `Butler.put_with_report` does.
    """

    arrays_written: int = 0
    documents_written: int = 0
    bytes_written: int = 0
    components_reused: int = 0
    bytes_hashed: int = 0
    written: list[str] = field(default_factory=list)


#: Arrays at least this big are hashed and written on the shared pool
#: (`BlobStore.put_new_array`), while the caller goes on with the next
#: component; their digests are known when the manifests are made.
ASYNC_WRITE_MIN_BYTES = 1 << 20

_UNSET: Any = object()


class _Task:
    """An array write on the shared pool, which its caller may take back if not started."""

    __slots__ = ("error", "fn", "future", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = submit(fn)
        self.value: Any = _UNSET
        self.error: BaseException | None = None

    def take_back(self) -> None:
        """Run the write here if the pool has not started it (its error kept for `result`)."""
        if self.future.cancel():
            try:
                self.value = self.fn()
            except Exception as exc:  # noqa: BLE001 - raised by result(), as the pool's would be
                self.error = exc

    def result(self) -> Any:
        """The write's result (from the pool, or from `take_back`); raises its error."""
        if self.error is not None:
            raise self.error
        if self.value is not _UNSET:
            return self.value
        return self.future.result()


class _PendingArray:
    """An array being hashed and written on the pool (`BlobStore.put_new_array`)."""

    __slots__ = ("task",)

    def __init__(self, task: _Task) -> None:
        self.task = task

    def resolve(self, w: _Write) -> str:
        """Its digest, once written; reports it written, or reused if this write has it already."""
        digest, stored = self.task.result()
        w.account(digest, stored)
        return digest


@dataclass
class _PendingManifest:
    """A manifest naming a `_PendingArray` (maybe through a nested manifest)."""

    storage_class: str
    components: dict[str, Any]
    attributes: dict[str, Any]


def _pending(entry: Mapping[str, Any]) -> _PendingArray | _PendingManifest | None:
    """What of a manifest entry is still being written: its array, its manifest, or None."""
    value = entry.get("array", entry.get("manifest"))
    return value if isinstance(value, (_PendingArray, _PendingManifest)) else None


@dataclass
class _Write:
    """One `ObjectIO.write` in progress: its report, the array writes running on the
    pool, and the manifests waiting for them (components before manifests)."""

    report: WriteReport
    tasks: list[_Task] = field(default_factory=list)
    # Array digests this write has stored, or started storing: each is reported once.
    stored: set[str] = field(default_factory=set)
    # Arrays handed to put_new_array, by id (each kept alive here, so its id stays its own).
    new_arrays: dict[int, tuple[np.ndarray, _PendingArray]] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)

    def start(self, fn: Callable[[], Any]) -> _Task:
        """Run ``fn`` (an array write) on the shared pool."""
        task = _Task(fn)
        self.tasks.append(task)
        return task

    def account(self, digest: str, stored: bool) -> None:
        """Report an array written (the first time this write stores it) or reused."""
        if stored and digest not in self.stored:
            self.stored.add(digest)
            self.report.arrays_written += 1
            self.report.written.append(digest)
        else:
            self.report.components_reused += 1

    def wait(self, *, raise_error: bool = True) -> None:
        """Finish every array write; then raise the first failure (if ``raise_error``).

        A write still queued is taken back and run here: a caller with nothing
        left to do works instead of waiting for a busy pool. Once a write has
        failed, or with ``raise_error`` false (the walk itself failed), the
        writes not started are cancelled instead; those running are waited for.
        """
        errors: list[BaseException] = []
        try:
            for task in self.tasks if raise_error else ():
                task.take_back()
                if task.error is not None:
                    break
        finally:
            for task in self.tasks:
                task.future.cancel()  # a no-op for those started, or taken back
            for task in self.tasks:
                try:
                    task.result()
                except CancelledError:
                    pass  # never started: nothing to wait for
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the rest
                    errors.append(exc)
            self.tasks.clear()
        if errors and raise_error:
            raise errors[0]


class _Reader:
    """A `ComponentReader` over one manifest; ``trail`` is the chain of reads that led here."""

    __slots__ = ("_io", "_manifest", "_trail")

    def __init__(self, io: ObjectIO, manifest: Mapping[str, Any], trail: _Trail) -> None:
        self._io = io
        self._manifest = manifest
        self._trail = trail

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._manifest["attributes"]

    def has(self, name: str) -> bool:
        return name in self._manifest["components"]

    def get(
        self, name: str, parameters: Mapping[str, Any] | None = None, *, cache: bool = True
    ) -> Any:
        return self._io.read_entry(
            self._manifest["components"][name], parameters, cache=cache, _trail=self._trail
        )

    def get_component(self, name: str, component: str) -> Any:
        entry = self._manifest["components"][name]
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


class ObjectIO:
    """Writes objects as components + manifests and reads them back.

    Parameters
    ----------
    blobs
        Where components and manifests live.
    cache
        The identity cache: the same digest yields the same object while held.
    resolve_dataset
        Maps a dataset UUID (a precursor reference) to its manifest digest.
    find_dataset
        Maps ``(dataset_type, data_id)`` to ``(UUID, manifest digest)`` of a
        dataset that a `DatasetReference` may point at, or None.
    """

    def __init__(
        self,
        blobs: BlobStore,
        cache: ObjectCache,
        resolve_dataset: Callable[[str], str] | None = None,
        find_dataset: Callable[[str, Mapping[str, Any]], tuple[str, str] | None] | None = None,
    ) -> None:
        self.blobs = blobs
        self.cache = cache
        self._resolve_dataset = resolve_dataset
        self._find_dataset = find_dataset

    # -- writing ------------------------------------------------------------
    def write(self, obj: Any, storage_class: str, report: WriteReport | None = None) -> str:
        """Store ``obj`` under ``storage_class``; return its manifest digest.

        Components whose digest is present already are not written again, and
        objects that came from this store are recognised without hashing. New
        big arrays are hashed and written on the shared thread pool while the
        walk goes on (a write still queued at its end is run by the caller);
        manifests are made and written once every component they name is.
        """
        w = _Write(report if report is not None else WriteReport())
        sc = get_storage_class(storage_class)
        sc.check_type(obj)
        try:
            if isinstance(sc, CompositeStorageClass):
                root = self._write_composite(obj, sc, w)
            else:
                entry = self._write_entry(obj, sc, w)
                root = self._write_manifest(sc.name, {"value": entry}, {}, w)
        except BaseException:
            w.wait(raise_error=False)  # no write left running; the first error is the one raised
            raise
        w.wait()
        digest = self._resolve_manifest(root, w)
        for manifest, data in w.manifests.items():
            self._put_document(data, w.report, manifest)
        return digest

    def _write_entry(self, value: Any, sc: StorageClass, w: _Write) -> dict[str, Any]:
        if isinstance(value, DatasetReference):
            entry = self._reference_entry(value, sc)
            if entry is not None:
                w.report.components_reused += 1
                return entry
            value = value.value
        sc.check_type(value)
        if isinstance(sc, ArrayStorageClass):
            return self._write_array(value, w)
        if isinstance(sc, DocumentStorageClass):
            return {"storage_class": sc.name, "document": self._write_document(value, sc, w.report)}
        if isinstance(sc, CompositeStorageClass):
            return {"storage_class": sc.name, "manifest": self._write_composite(value, sc, w)}
        raise StorageClassError(f"storage class {sc.name!r} is neither array, document nor composite")

    def _write_array(self, array: np.ndarray, w: _Write) -> dict[str, Any]:
        report = w.report
        entry: dict[str, Any] = {
            "storage_class": "Array",
            "array": None,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
        }
        digest = self.cache.known_digest(array)
        if digest is None and array.nbytes >= ASYNC_WRITE_MIN_BYTES:
            # Hashed and written on the pool; the digest is filled in with the manifests.
            seen = w.new_arrays.get(id(array))
            if seen is None:
                check_array(array)  # a refused dtype fails here, not after the walk
                report.bytes_hashed += array.nbytes
                pending = _PendingArray(w.start(functools.partial(self.blobs.put_new_array, array)))
                w.new_arrays[id(array)] = (array, pending)
            else:
                pending = seen[1]
            entry["array"] = pending
            return entry
        if digest is None:
            # Small and new to the cache: hashed, looked up and stored here, in one
            # call (big ones go to the pool, above).
            report.bytes_hashed += array.nbytes
            digest, stored = self.blobs.put_new_array(array)
            w.account(digest, stored)
            entry["array"] = digest
            return entry
        if digest in w.stored or self.blobs.has_array(digest):
            report.components_reused += 1
        else:
            if array.nbytes >= ASYNC_WRITE_MIN_BYTES:
                w.start(functools.partial(self.blobs.put_array, array, digest))
            else:
                self.blobs.put_array(array, digest=digest)
            w.account(digest, True)
        entry["array"] = digest
        return entry

    def _reference_entry(self, ref: DatasetReference, sc: StorageClass) -> dict[str, Any] | None:
        """A manifest entry pointing at another dataset's component, if it holds the same value."""
        if self._find_dataset is None or not isinstance(sc, DocumentStorageClass):
            return None
        found = self._find_dataset(ref.dataset_type, ref.data_id)
        if found is None:
            return None
        dataset_id, manifest = found
        target = self.manifest(manifest)["components"].get(ref.component)
        if target is None or "document" not in target:
            return None
        digest = self.cache.known_digest(ref.value)
        if digest is None:
            digest = digest_bytes(self._document_bytes(ref.value, sc))
        if digest != target["document"]:
            return None  # the referenced dataset holds another value: store this one
        return {"storage_class": sc.name, "dataset": dataset_id, "component": ref.component}

    @staticmethod
    def _document_bytes(obj: Any, sc: DocumentStorageClass) -> bytes:
        return canonical_json(
            {"format": DOCUMENT_FORMAT, "storage_class": sc.name, "value": sc.to_json(obj)}
        )

    def _put_document(self, data: bytes, report: WriteReport, digest: str | None = None) -> str:
        digest = digest or digest_bytes(data)
        if self.blobs.has_document(digest):
            report.components_reused += 1
            return digest
        stored = self.blobs.put_document(data, digest=digest)
        report.documents_written += 1
        report.written.append(stored)
        return stored

    def measure(self, report: WriteReport) -> WriteReport:
        """Fill ``report.bytes_written``: the bytes on disk of the components it wrote.

        Costs a walk of each new component's files, so it is asked for, not paid
        by every put.
        """
        report.bytes_written = sum(self.blobs.stored_bytes(d) for d in report.written)
        return report

    def _write_document(self, obj: Any, sc: DocumentStorageClass, report: WriteReport) -> str:
        digest = self.cache.known_digest(obj)
        if digest is not None:
            report.components_reused += 1
            return digest
        digest = self._put_document(self._document_bytes(obj, sc), report)
        # Leaf values are immutable: later gets may hand back this very object, and
        # putting it again costs no hashing (get_or_load remembers what it loads;
        # an equal object cached already is another one, remembered here).
        if self.cache.get_or_load(digest, lambda: obj) is not obj:
            self.cache.remember_digest(obj, digest)
        return digest

    def _write_composite(
        self, obj: Any, sc: CompositeStorageClass, w: _Write
    ) -> str | _PendingManifest:
        digest = self.cache.known_digest(obj)
        if digest is not None:
            w.report.components_reused += 1
            return digest
        parts = sc.disassemble(obj)
        components: dict[str, Any] = {}
        for name, (sc_name, value) in parts.components.items():
            if value is None:
                continue
            components[name] = self._write_entry(value, get_storage_class(sc_name), w)
        return self._write_manifest(sc.name, components, dict(parts.attributes), w)

    def _write_manifest(
        self,
        storage_class: str,
        components: dict[str, Any],
        attributes: dict[str, Any],
        w: _Write,
    ) -> str | _PendingManifest:
        """Return the manifest's digest; `write` stores it after the components.

        A manifest naming an array still being hashed on the pool is returned
        as a `_PendingManifest`, made once the writes are done.
        """
        if any(_pending(entry) for entry in components.values()):
            return _PendingManifest(storage_class, components, attributes)
        data = canonical_json(
            {
                "format": MANIFEST_FORMAT,
                "storage_class": storage_class,
                "attributes": attributes,
                "components": components,
            }
        )
        digest = digest_bytes(data)
        w.manifests.setdefault(digest, data)
        return digest

    def _resolve_manifest(self, manifest: str | _PendingManifest, w: _Write) -> str:
        """The digest of ``manifest``, made now if pending (its writes have finished)."""
        if isinstance(manifest, str):
            return manifest
        for entry in manifest.components.values():
            pending = _pending(entry)
            if isinstance(pending, _PendingArray):
                entry["array"] = pending.resolve(w)
            elif isinstance(pending, _PendingManifest):
                entry["manifest"] = self._resolve_manifest(pending, w)
        resolved = self._write_manifest(
            manifest.storage_class, manifest.components, manifest.attributes, w
        )
        assert isinstance(resolved, str)
        return resolved

    # -- reading ------------------------------------------------------------
    def manifest(self, digest: str) -> Mapping[str, Any]:
        """Return the parsed manifest ``digest`` (cached; treat as read-only)."""
        return self.cache.get_or_load(
            "manifest:" + digest, lambda: self._parse_manifest(digest), size_of=lambda m: 1024
        )

    def _parse_manifest(self, digest: str) -> dict[str, Any]:
        value = self._parse_document(digest)
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
        return value

    def _parse_document(self, digest: str) -> dict[str, Any]:
        data = self.blobs.get_document(digest)
        try:
            value = parse_json(data)
        except ValueError as err:
            raise CorruptBlobError(
                f"document {digest} is not valid JSON ({err}); the repository may be damaged"
            ) from None
        if not isinstance(value, dict):
            raise CorruptBlobError(f"document {digest} is not a JSON object")
        return value

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
        sc = get_storage_class(manifest["storage_class"])
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

    def _prefetch(self, manifest: Mapping[str, Any], *, arrays: bool) -> None:
        """Let a store that reads ahead (object storage) fetch the manifest's components at once.

        Those the identity cache holds are left out; so are arrays when
        ``arrays`` is false (a cut-out reads only part of each).
        """
        prefetch = getattr(self.blobs, "prefetch", None)
        if prefetch is None:
            return
        documents, wanted = [], []
        for entry in manifest["components"].values():
            if not isinstance(entry, Mapping):
                continue  # (the read reports it)
            if "document" in entry and entry["document"] not in self.cache:
                documents.append(entry["document"])
            elif "manifest" in entry and "manifest:" + str(entry["manifest"]) not in self.cache:
                documents.append(entry["manifest"])
            elif arrays and "array" in entry and entry["array"] not in self.cache:
                wanted.append(entry["array"])
        if documents or wanted:
            prefetch(documents, wanted)

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
        _check_entry(entry)
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
        if self._resolve_dataset is None:
            raise StorageClassError("this store cannot resolve references to other datasets")
        dataset_id = entry["dataset"]
        trail = _trail.via(dataset_id)
        return self.read(
            self._resolve_dataset(dataset_id), parameters, component=entry.get("component"),
            _trail=trail,
        )

    def _decode_document(self, digest: str) -> Any:
        value = self._parse_document(digest)
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

        References to other datasets are not followed (they are those datasets' bytes).
        Iterative, and each nested manifest is walked once: however deep
        manifests nest, the walk ends without exhausting the stack.

        Raises
        ------
        CorruptBlobError
            If a manifest on the way is damaged (`read`), or an entry malformed.
        BlobNotFoundError
            If a manifest on the way is missing.
        """
        stack, seen = [digest], {digest}
        while stack:
            manifest = stack.pop()
            yield "document", manifest
            for entry in self.manifest(manifest)["components"].values():
                _check_entry(entry)
                if "array" in entry:
                    yield "array", entry["array"]
                elif "document" in entry:
                    yield "document", entry["document"]
                elif "manifest" in entry and entry["manifest"] not in seen:
                    seen.add(entry["manifest"])
                    stack.append(entry["manifest"])


def _type_name(value: object) -> str:
    return "none" if value is None else f"a {type(value).__name__}"


def _check_entry(entry: object) -> None:
    """Raise CorruptBlobError unless ``entry`` is a manifest entry readers can follow."""
    if isinstance(entry, Mapping):
        # A plain loop, no generator: this runs for every component a read touches.
        kind = None
        for k in _KINDS:
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
        f"manifest entry {str(entry)[:200]} is not one of {', '.join(_KINDS)} naming a "
        "digest or dataset ID; the repository may be damaged: run `compstore verify`"
    )


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

"""The write path: objects into components written once by digest, then their manifests."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._pool import submit
from ..cache import ObjectCache
from ..cas import BlobStore, canonical_json, check_array, jcs
from ..errors import StorageClassError
from ..storage_classes import (
    ArrayStorageClass,
    CompositeStorageClass,
    DatasetReference,
    DocumentStorageClass,
    StorageClass,
    get_storage_class,
)
from ._manifest import DOCUMENT_FORMAT, Manifest
from ._read import ObjectReader
from ._resolve import DatasetResolver

__all__ = ["ASYNC_WRITE_MIN_BYTES", "ObjectIO", "WriteReport"]


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
        digest: str
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


class ObjectIO(ObjectReader):
    """Writes objects as components + manifests and reads them back (`ObjectReader`).

    Parameters
    ----------
    blobs
        Where components and manifests live.
    cache
        The identity cache: the same digest yields the same object while held.
    resolver
        Finds other datasets: a `DatasetReference` is stored as a reference
        to the dataset it names when that dataset holds the same value, and
        references are read through it. None: values are always stored.
    encode
        How documents and manifests become bytes: `compstore.cas.jcs` (RFC 8785)
        in a format 3 repository, `compstore.cas.canonical_json` in older ones.
        Their digests are ``blobs.digest_algorithm``'s.
    """

    def __init__(
        self,
        blobs: BlobStore,
        cache: ObjectCache,
        resolver: DatasetResolver | None = None,
        encode: Callable[[Any], bytes] = canonical_json,
    ) -> None:
        super().__init__(blobs, cache, resolver)
        self._encode = encode

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
        if self._resolver is None or not isinstance(sc, DocumentStorageClass):
            return None
        found = self._resolver.find_target(ref.dataset_type, ref.data_id)
        if found is None:
            return None
        dataset_id, manifest = found
        target: Mapping[str, Any] | None = self.manifest(manifest).components.get(ref.component)
        if target is None or "document" not in target:
            return None
        digest = self.cache.known_digest(ref.value)
        if digest is None:
            digest = self.blobs.digest_algorithm.digest_bytes(self._document_bytes(ref.value, sc))
        if digest != target["document"]:
            return None  # the referenced dataset holds another value: store this one
        return {"storage_class": sc.name, "dataset": dataset_id, "component": ref.component}

    def _document_bytes(self, obj: Any, sc: DocumentStorageClass) -> bytes:
        # RFC 8785 numbers do not say int or float: a storage class may mark its floats.
        value = sc.to_json_exact(obj) if self._encode is jcs else sc.to_json(obj)
        return self._encode({"format": DOCUMENT_FORMAT, "storage_class": sc.name, "value": value})

    def _put_document(self, data: bytes, report: WriteReport, digest: str | None = None) -> str:
        # One question to the store: the put says whether it stored the document.
        digest, stored = self.blobs.put_new_document(
            data, digest or self.blobs.digest_algorithm.digest_bytes(data)
        )
        if stored:
            report.documents_written += 1
            report.written.append(digest)
        else:
            report.components_reused += 1
        return digest

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
        data = Manifest(storage_class, attributes, components).to_document(self._encode)
        digest = self.blobs.digest_algorithm.digest_bytes(data)
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


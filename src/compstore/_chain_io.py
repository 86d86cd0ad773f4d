"""Writing through a chain of repositories: the first one stays self-contained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._chain_blobs import ChainedBlobStore
from .cache import ObjectCache
from .datastore import DatasetResolver, ObjectIO, WriteReport, walk
from .datastore._write import _Write
from .storage_classes import CompositeStorageClass, get_storage_class

__all__ = ["ChainIO"]


class ChainIO(ObjectIO):
    """`ObjectIO` over a `ChainedBlobStore` that keeps the first repository self-contained.

    The identity cache knows the digest of every object read through the
    chain, and `ObjectIO` reuses a known digest without writing it: right
    within one repository, wrong when the component is in a later one. Here a
    known document or composite that the first store lacks is copied into it
    (a composite with its whole closure: leaves, then manifests, deepest
    first) during the walk, so before the put's own manifests and row.
    """

    blobs: ChainedBlobStore

    def __init__(
        self,
        blobs: ChainedBlobStore,
        cache: ObjectCache,
        resolver: DatasetResolver,
        in_first: Callable[[str], bool],
        encode: Callable[[Any], bytes],
    ) -> None:
        super().__init__(blobs, cache, resolver, encode)
        self._in_first = in_first

    def _write_document(self, obj: Any, sc: Any, report: WriteReport) -> str:
        digest = self.cache.known_digest(obj)
        if digest is None or self.blobs.has_document(digest):
            return super()._write_document(obj, sc, report)
        self._copy_document(digest, report)  # exact bytes: no re-encoding, no hashing
        return digest

    def _write_composite(self, obj: Any, sc: CompositeStorageClass, w: _Write) -> Any:
        digest = self.cache.known_digest(obj)
        if digest is None:
            return super()._write_composite(obj, sc, w)
        closure = self._closure(digest)
        if closure is not None:
            if self.blobs.has_document(digest):
                # Its closure is there too: a manifest is written after all it names.
                w.report.components_reused += 1
            else:
                self._copy_closure(*closure, w.report)
            return digest
        # Its closure refers to datasets the first repository lacks: write the
        # object afresh, so that references resolvable there stay references and
        # the others become stored values.
        parts = sc.disassemble(obj)
        components: dict[str, Any] = {}
        for name, (sc_name, value) in parts.components.items():
            if value is not None:
                components[name] = self._write_entry(value, get_storage_class(sc_name), w)
        return self._write_manifest(sc.name, components, dict(parts.attributes), w)

    def _copy_document(self, digest: str, report: WriteReport) -> None:
        self.blobs.put_document(self.blobs.get_document(digest), digest=digest)
        report.documents_written += 1
        report.written.append(digest)

    def _closure(self, digest: str) -> tuple[list[str], list[str], list[str]] | None:
        """The manifests, arrays and documents manifest ``digest`` needs (manifests parents first).

        None if the closure refers to a dataset the first repository does not
        hold: reusing the manifest there would leave a dangling reference,
        even when the first store holds the manifest itself (a subset carrying
        a coadd without its inputs).
        """
        manifests: list[str] = []
        arrays: dict[str, None] = {}
        documents: dict[str, None] = {}
        for kind, target in walk(self.manifest, digest, datasets=True):
            if kind == "manifest":
                manifests.append(target)
            elif kind == "array":
                arrays[target] = None
            elif kind == "document":
                documents[target] = None
            elif not self._in_first(target):
                return None
        return manifests, list(arrays), list(documents)

    def _copy_closure(
        self, manifests: list[str], arrays: list[str], documents: list[str], report: WriteReport
    ) -> None:
        """Copy what of a closure the first store lacks: leaves, then manifests, children first."""
        first = self.blobs.first
        for array in arrays:
            if first.has_array(array):
                report.components_reused += 1
            else:
                first.put_array(self.blobs.get_array(array), digest=array)
                report.arrays_written += 1
                report.written.append(array)
        for document in documents:
            if first.has_document(document):
                report.components_reused += 1
            else:
                self._copy_document(document, report)
        # A parent is walked before its children: reversed, children come first.
        for manifest in reversed(manifests):
            if first.has_document(manifest):
                report.components_reused += 1
            else:
                self._copy_document(manifest, report)

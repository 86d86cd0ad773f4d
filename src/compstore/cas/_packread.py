"""Reading the packed (and pending) components of a local blob store.

Where a component is comes from the pack index (cached: a pack never
changes); its bytes are read from its pack with `pread_members`. A packed
array is small: every read decodes it whole and checks it against its digest.
"""

from __future__ import annotations

import os

import numpy as np

from compstore.cas._checks import DECODE_ERRORS, bounded_put, corrupt_array, read_only_view
from compstore.cas._localbase import LOCATED_CACHE_SIZE, META_CACHE_SIZE, SQLITE_ERRORS, LocalBase
from compstore.cas._pack import KIND_ARRAY, KIND_DOCUMENT, PackedMember, pread_members
from compstore.cas._packwrite import Pending
from compstore.cas._region import normalize_region
from compstore.cas._store import RegionLike
from compstore.cas._zarrfmt import ArrayMeta, UnsupportedZarrError, parse_array_metadata
from compstore.cas._zarrio import decode_array_data
from compstore.errors import BlobStoreError, CorruptBlobError

__all__ = ["PackReader"]


class PackReader(LocalBase):
    """Finding and reading packed components (a part of `LocalBlobStore`)."""

    def _indexed(self, kind: str) -> set[str]:
        if self._index is None:
            return set()
        try:
            return set(self._index.digests(kind))
        except SQLITE_ERRORS as exc:
            raise BlobStoreError(f"cannot read the pack index of {self._root}: {exc}") from exc

    def _packed(
        self, digest: str, kind: str | None, *, cached: bool = False
    ) -> PackedMember | Pending | None:
        """The pending or packed component ``digest`` of ``kind`` (None: of either), if any.

        With ``cached``, a place found before is trusted (reads: a pack never
        changes, so its bytes stay right even if another store object has since
        deleted the component); existence checks ask the index every time.
        """
        with self._lock:
            pending = self._pending.get(digest)
            if pending is not None:
                return pending if kind in (None, pending.kind) else None
            if self._index is None:
                return None
            member = self._located.get(digest) if cached else None
            if member is None:
                try:
                    member = self._index.lookup(digest)
                except SQLITE_ERRORS as exc:
                    raise BlobStoreError(
                        f"cannot read the pack index of {self._root}: {exc}"
                    ) from exc
                except ValueError as exc:
                    raise CorruptBlobError(
                        f"component {digest} has a damaged row in {self._root}/packs.sqlite3 "
                        f"({exc}); the repository is damaged: run `compstore verify`"
                    ) from exc
                if member is not None:
                    bounded_put(self._located, digest, member, LOCATED_CACHE_SIZE)
                else:
                    self._located.pop(digest, None)
        return member if member is not None and kind in (None, member.kind) else None

    def _packed_files(self, digest: str, kind: str) -> tuple[bytes, bytes | None] | None:
        """A pending or packed component's bytes: (document or zarr.json, array data or None)."""
        found = self._packed(digest, kind, cached=True)
        if found is None:
            return None
        if isinstance(found, Pending):  # (a document has one member)
            return found.members[0][1], (found.members[1][1] if len(found.members) > 1 else None)
        try:
            try:
                return self._pread_member(found, kind)
            except FileNotFoundError:
                # gc rewrote the pack (a repack) since this place was looked up: the
                # index names the new one. Asked again once, uncached.
                again = self._packed(digest, kind)
                if again is None or isinstance(again, Pending) or again == found:
                    raise
                found = again
                return self._pread_member(found, kind)
        except FileNotFoundError:
            raise CorruptBlobError(
                f"component {digest} is indexed in pack {found.pack}, which is missing; "
                "the repository is damaged: run `compstore verify`"
            ) from None
        except ValueError as exc:
            raise CorruptBlobError(f"component {digest}: {exc}") from exc
        except OSError as exc:
            raise BlobStoreError(f"cannot read component {digest}: {exc}") from exc

    def _pread_member(self, found: PackedMember, kind: str) -> tuple[bytes, bytes | None]:
        path = self._pack_path(found.pack)
        if kind == KIND_DOCUMENT:
            return pread_members(path, [(found.data_offset, found.data_size)])[0], None
        assert found.meta_offset is not None and found.meta_size is not None
        meta, data = pread_members(
            path, [(found.meta_offset, found.meta_size), (found.data_offset, found.data_size)]
        )
        return meta, (data if found.key is not None else None)

    def _packed_meta(self, digest: str, raw: bytes) -> ArrayMeta:
        cached = self._meta.get(digest)
        if cached is not None:
            return cached
        try:
            meta = parse_array_metadata(raw)
        except (UnsupportedZarrError, *DECODE_ERRORS) as exc:
            raise corrupt_array(digest, f"has a bad zarr.json: {exc}") from exc
        bounded_put(self._meta, digest, meta, META_CACHE_SIZE)
        return meta

    def _read_packed(
        self, digest: str, raw_meta: bytes, data: bytes | None, region: RegionLike
    ) -> np.ndarray:
        meta = self._packed_meta(digest, raw_meta)
        reg = normalize_region(region, meta.shape)
        try:
            whole = decode_array_data(meta, data)
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"cannot be decoded: {exc}") from exc
        # Packed arrays are small (< PACK_MAX_BYTES): every read, cut-outs too,
        # decodes the whole array and checks it against its digest (~40 us a MiB).
        actual = self.digest_algorithm.digest_array(whole)
        if actual != digest:
            raise corrupt_array(digest, f"is corrupt: its content hashes to {actual}")
        box = whole
        if whole.ndim:
            box = np.array(whole[tuple(slice(a, b) for a, b in zip(reg.lo, reg.hi))])
        return read_only_view(box, reg)

    def packed_array_files(self, digest: str) -> dict[str, bytes] | None:
        """The files of a packed array's zarr folder, checked; None if it is not packed.

        ``{"zarr.json": ..., "<chunk key>": ...}``: what `component_path` writes
        out, for a caller that cannot write into the repository (it is read-only)
        and writes the folder elsewhere. The array is decoded and checked against
        its digest first, so damage surfaces here rather than as wrong pixels.

        Raises
        ------
        CorruptBlobError
            If the pack's bytes fail their digest (or the pack is missing).
        """
        found = self._packed(digest, KIND_ARRAY) if self._index is not None else None
        if found is None:
            return None
        meta, data = self._packed_files(digest, KIND_ARRAY) or (b"", None)
        self.get_array(digest)
        files = {"zarr.json": meta}
        if found.key is not None and data is not None:
            files[found.key] = data
        return files

    def _check_pack_member(self, digest: str, found: PackedMember) -> None:
        """`check_files` of a packed component: its pack is there and long enough."""
        path = self._pack_path(found.pack)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = -1
        except OSError as exc:
            raise BlobStoreError(f"cannot check component {digest}: {exc}") from exc
        if size < found.end:
            what = "is missing" if size < 0 else f"ends at byte {size}, before its member"
            raise CorruptBlobError(
                f"component {digest} is indexed in pack {found.pack}, which {what}; the "
                "repository is damaged: run `compstore verify` to list what it breaks"
            )

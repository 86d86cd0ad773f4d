"""Small components of a local blob store waiting for, and written into, a pack.

A put of a component smaller than `PACK_MAX_BYTES` keeps it in memory
(`Pending`), visible to this store object; `LocalBlobStore.sync` (or enough
waiting bytes, `PENDING_MAX_BYTES`) writes them all as one zip file, puts it
in place (durably with fsync on), then records its members in the pack index
(`compstore.cas._pack`, `compstore.cas._pack_pg`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Final

import numpy as np

from compstore.cas._atomic import fsync_dir, fsync_file, write_new
from compstore.cas._digest import digest_bytes
from compstore.cas._localbase import SQLITE_ERRORS, LocalBase
from compstore.cas._pack import KIND_ARRAY, KIND_DOCUMENT, PackedMember, build_pack
from compstore.cas._staging import pack_lock
from compstore.cas._zarrio import dimension_names_for
from compstore.cas._zarrwrite import encode_array_files
from compstore.errors import BlobStoreError

__all__ = ["PENDING_MAX_BYTES", "PackWriter", "Pending", "member_of"]

PENDING_MAX_BYTES: Final = 64 << 20
"""Small components held for the next pack beyond which a pack is written at once."""


class PackWriter(LocalBase):
    """Holding small components and writing them as packs (a part of `LocalBlobStore`)."""

    def _pending_array(self, array: np.ndarray, digest: str) -> Pending:
        """A small array encoded in memory, ready for the next pack."""
        encoded = encode_array_files(array, dimension_names_for(digest, array.ndim))
        members = [(f"arrays/{digest}/{name}", data) for name, data in encoded]
        key = encoded[1][0] if len(encoded) > 1 else None
        return Pending(KIND_ARRAY, members, key)

    def _add_pending(self, digest: str, pending: Pending) -> bool:
        """Keep a small component for the next pack (False: pending already); maybe write a pack.

        `PENDING_MAX_BYTES` bounds the memory a long batch of puts holds: a
        pack written before `sync` is as safe (its components are complete;
        rows come after the pack) and only makes packs smaller.
        """
        with self._lock:
            if digest in self._pending:
                return False
            if self._pending_bytes >= 4 * PENDING_MAX_BYTES:
                # Packs keep failing (a full disk, a locked index): refuse before
                # taking the component, so that an error always means "not stored".
                raise BlobStoreError(
                    f"{self._pending_bytes} bytes of small components wait for a pack that "
                    f"cannot be written into {self._root}; call sync() to see why, and fix that"
                )
            self._pending[digest] = pending
            self._pending_bytes += pending.nbytes
            if self._pending_bytes >= (self._retry_pack_at or PENDING_MAX_BYTES):
                try:
                    self._write_pack()
                except BlobStoreError:
                    # The component is kept; sync() retries and reports. Until then,
                    # try again only once twice as much waits, not on every put.
                    self._retry_pack_at = 2 * self._pending_bytes
        return True

    def _pending_of(self, kind: str) -> set[str]:
        return {d for d, p in self._pending.items() if p.kind == kind}

    def _write_pack(self) -> None:
        """Write the pending small components as one pack, then index them (lock held).

        The pack is renamed into place (and fsynced, with its folder, when
        fsync is on) before its rows are committed: an index row never names
        a pack that is not on disk. Each digest is packed once: components
        another writer has indexed since they were put are left out, checked
        again under the pack lock (`compstore.cas._staging`) right before the
        rows are committed; if some were indexed in between, the pack is
        written again without them and the first one removed, so no second
        copy stays on disk.
        """
        if not self._pending:
            return
        assert self._index is not None
        pending = dict(self._pending)
        tmp: list[str] = []
        try:
            todo = self._without_indexed(pending)
            if todo:
                raw, where, name = self._store_pack(todo, tmp)
                with pack_lock(self._pack_lock_path):
                    while True:
                        taken = self._index.existing(todo)
                        if not taken:
                            break
                        # Packed by another writer since: this pack must not hold them.
                        todo = {d: p for d, p in todo.items() if d not in taken}
                        self._drop_pack(name, taken)
                        if not todo:
                            break
                        raw, where, name = self._store_pack(todo, tmp)
                    if todo:
                        if not os.path.exists(self._pack_path(name)):
                            # Removed by a sweep (after an identical pack's writer died)
                            # before this writer took the lock: write it again.
                            self._store_pack(todo, tmp)
                        rows = {d: member_of(d, p, name, where) for d, p in todo.items()}
                        self._index.add(rows)
        except (OSError, *SQLITE_ERRORS) as exc:
            raise BlobStoreError(
                f"cannot write a pack into {self._root}: {exc}; the components are kept "
                "and written by the next sync"
            ) from exc
        finally:
            for path in tmp:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        for digest, p in pending.items():
            if self._pending.get(digest) is p:
                del self._pending[digest]
                self._pending_bytes -= p.nbytes
        self._retry_pack_at = None

    def _without_indexed(self, pending: dict[str, Pending]) -> dict[str, Pending]:
        """``pending`` less the components the index has now (packed by another writer)."""
        assert self._index is not None
        taken = self._index.existing(pending)
        return {d: p for d, p in pending.items() if d not in taken} if taken else pending

    def _store_pack(
        self, pending: dict[str, Pending], tmp: list[str]
    ) -> tuple[bytes, dict[str, tuple[int, int]], str]:
        """Build the pack of ``pending`` and put it in place (durably with fsync on).

        Returns its bytes, its members' places and its name. ``tmp`` collects
        the temporary file while it exists (removed by the caller on failure).
        """
        members = [m for p in pending.values() for m in p.members]
        raw, where = build_pack(members)
        name = digest_bytes(raw)
        final = self._pack_path(name)
        folder = os.path.dirname(final)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
        if self._fsync and folder not in self._durable_pack_dirs:
            # Made by us or by another writer that may not have fsynced it yet.
            fsync_dir(self._packs_dir)
            self._durable_pack_dirs.add(folder)
        if not os.path.exists(final):  # else: the same members, packed before
            path = self._temp_path(name) + ".zip"
            tmp.append(path)
            write_new(path, raw)
            if self._fsync:
                fsync_file(path)
            os.replace(path, final)
            tmp.remove(path)
        if self._fsync:
            # Also when the pack was there: its writer's fsync may not have run yet.
            fsync_file(final)
            fsync_dir(folder)
        return raw, where, name

    def _drop_pack(self, name: str, taken: dict[str, str]) -> None:
        """Remove this writer's pack ``name`` unless an index row names it (pack lock held).

        Only a pack of the very same bytes, written and indexed by another
        writer, can be named: then its members are among ``taken``
        (digest -> the pack that holds it).
        """
        if name in taken.values():
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pack_path(name))


@dataclass(frozen=True)
class Pending:
    """A small component waiting for the next pack: its zip members, in order.

    A document has one member; an array its ``zarr.json`` then its data file
    (named ``key``; none for an array with no elements).
    """

    kind: str
    members: list[tuple[str, bytes]]
    key: str | None

    @property
    def nbytes(self) -> int:
        return sum(len(data) for _, data in self.members)


def member_of(
    digest: str, pending: Pending, pack: str, where: dict[str, tuple[int, int]]
) -> PackedMember:
    """The index row of a pending component written into ``pack`` (offsets from ``where``)."""
    if pending.kind == KIND_DOCUMENT:
        offset, size = where[pending.members[0][0]]
        return PackedMember(KIND_DOCUMENT, pack, offset, size)
    meta_offset, meta_size = where[pending.members[0][0]]
    offset, size = where[pending.members[1][0]] if pending.key is not None else (0, 0)
    return PackedMember(KIND_ARRAY, pack, offset, size, meta_offset, meta_size, pending.key)

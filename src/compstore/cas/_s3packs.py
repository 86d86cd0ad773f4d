"""Packs on object storage: the small components of a sync in one object, found through an index.

With a pack index (`S3BlobStore(..., pack_index=...)`; a repository on object
storage passes its registry database's), a put of a component smaller than
`PACK_MAX_BYTES` (documents, manifests, catalog columns, small arrays) keeps
it in memory, visible to this store object, until `S3BlobStore.sync` (or
`PENDING_MAX_BYTES` waiting), which writes them all as one object::

    packs/<p[:2]>/<p>.zip      the same uncompressed zip as a folder's pack
                               (`compstore.cas._pack`), named by its digest

then records where each member is in the index (an SQLite file, or the table
``pack_member`` of a PostgreSQL database: digest -> pack and byte ranges).
The pack is PUT under its final content-addressed name before its rows are
committed, so a row never names a pack that is not there; a writer killed in
between leaves an unreferenced pack, never a wrong answer. Every writer of a
pack's name writes the same bytes, so it is a plain PUT (a big pack goes up in
parts, which a conditional PUT cannot).

Reads: a packed member is fetched with a ranged GET of its pack; `prefetch`
locates every component a manifest names with one index query and fetches
the members of one pack with one ``get_ranges`` (ranges under 1 MiB apart
merged into one request), so a catalog of ten columns costs two requests (its
manifest, then every column), not one per column. Packed arrays are small:
every read decodes one whole and checks it against its digest; documents are
checked against theirs. Members read are kept in the local cache under the
keys of the objects they stand for (``documents/ab/<digest>.json``...).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from typing import Final

from compstore.cas._checks import bounded_put
from compstore.cas._digest import digest_bytes, is_digest
from compstore.cas._localbase import SQLITE_ERRORS
from compstore.cas._pack import KIND_ARRAY, KIND_DOCUMENT, PACK_MAX_BYTES, PackedMember, build_pack
from compstore.cas._packwrite import PENDING_MAX_BYTES, Pending, member_of
from compstore.cas._s3base import DOCUMENTS, AheadJob, S3Base
from compstore.cas._store import ARRAYS_GROUP
from compstore.errors import BlobStoreError, CorruptBlobError

__all__ = ["PACKS", "S3Packs"]

PACKS: Final = "packs"
_LOCATED_SIZE: Final = 1 << 16  # places (or "not packed") remembered per store object


class S3Packs(S3Base):
    """Writing small components into packs and reading them back (a part of `S3BlobStore`)."""

    @property
    def packs(self) -> bool:
        """Whether small components are written into packs (a pack index was given)."""
        return self._index is not None

    def _packs_it(self, nbytes: int) -> bool:
        """Whether a component of ``nbytes`` (an array's raw bytes, or a document) is packed."""
        return self._index is not None and nbytes < PACK_MAX_BYTES

    @staticmethod
    def _pack_key(name: str) -> str:
        return f"{PACKS}/{name[:2]}/{name}.zip"

    # -- where components are ----------------------------------------------------
    @contextlib.contextmanager
    def _index_errors(self) -> Iterator[None]:
        try:
            yield
        except SQLITE_ERRORS as exc:
            raise BlobStoreError(
                f"the pack index of {self.url} failed: {exc}; if its file is damaged, restore "
                "it from a backup (the packs themselves are in the bucket)"
            ) from exc

    def _locate(self, digest: str, *, fresh: bool = False) -> PackedMember | Pending | None:
        """The pending or packed component ``digest``, or None (not packed).

        A place found before is trusted unless ``fresh`` (a pack never changes;
        existence checks ask the index every time).

        Raises
        ------
        CorruptBlobError
            If its index row is damaged.
        BlobStoreError
            If the index cannot be read.
        """
        pending = self._pending.get(digest)
        if pending is not None or self._index is None:
            return pending
        if not fresh and digest in self._located:
            return self._located[digest]
        try:
            with self._index_errors():
                member = self._index.lookup(digest)
        except ValueError as exc:
            raise CorruptBlobError(
                f"component {digest} has a damaged row in the pack index of {self.url} "
                f"({exc}); the repository is damaged: run `compstore verify`"
            ) from exc
        with self._lock:
            bounded_put(self._located, digest, member, _LOCATED_SIZE)
        return member

    def _locate_many(self, digests: list[str]) -> None:
        """Look up, with one query, where those of ``digests`` not known yet are."""
        wanted = [d for d in digests if d not in self._located and d not in self._pending]
        if self._index is None or not wanted:
            return
        with self._index_errors():
            found = self._index.lookup_many(wanted)
        with self._lock:
            for digest in wanted:
                bounded_put(self._located, digest, found.get(digest), _LOCATED_SIZE)

    # -- writing -----------------------------------------------------------------
    def _add_pending(self, digest: str, pending: Pending) -> bool:
        """Keep a small component for the next pack; False if it is pending already.

        (The caller has asked the index afresh whether it is packed.) Enough
        waiting bytes write a pack at once; if that fails the component is not
        kept (the error means "not stored"), the others stay pending.
        """
        with self._pack_lock:
            if digest in self._pending:
                return False
            self._pending[digest] = pending
            self._pending_bytes += pending.nbytes
            if self._pending_bytes >= PENDING_MAX_BYTES:
                try:
                    self._write_pack()
                except BlobStoreError:
                    if self._pending.pop(digest, None) is not None:
                        self._pending_bytes -= pending.nbytes
                    raise
        return True

    def _write_pack(self) -> None:
        """Write the pending components as one pack, then index them (``_pack_lock`` held).

        Components another writer has indexed since they were put are left
        out (the rows that exist win: at worst a racing writer's pack holds a
        second, unreferenced copy). Only the rows that won are remembered, read
        back after the insert: a racing writer may have indexed a component
        between the check and the insert, and this pack, then unreferenced, is
        one gc may delete.
        """
        if not self._pending:
            return
        assert self._index is not None
        pending = dict(self._pending)
        with self._index_errors():
            taken = self._index.existing(pending)
        todo = {d: p for d, p in pending.items() if d not in taken}
        if todo:
            raw, where = build_pack([m for p in todo.values() for m in p.members])
            name = digest_bytes(raw)
            self._put(self._pack_key(name), raw, f"pack {name}", create=False)
            rows = {d: member_of(d, p, name, where) for d, p in todo.items()}
            with self._index_errors():
                self._index.add(rows)
                won = self._index.existing(rows)
            with self._lock:
                for digest, member in rows.items():
                    if won.get(digest) == name:
                        bounded_put(self._located, digest, member, _LOCATED_SIZE)
                    else:  # indexed by another writer meanwhile: looked up when read
                        self._located.pop(digest, None)
        for digest, p in pending.items():
            if self._pending.get(digest) is p:
                del self._pending[digest]
                self._pending_bytes -= p.nbytes

    def _unpack(self, digest: str) -> bool:
        """Forget a pending or packed component (its pack stays); whether it was one."""
        with self._pack_lock:
            pending = self._pending.pop(digest, None)
            if pending is not None:
                self._pending_bytes -= pending.nbytes
        removed = False
        if self._index is not None:
            with self._index_errors():
                removed = self._index.remove(digest)
        with self._lock:
            self._located.pop(digest, None)
        return pending is not None or removed

    def sync(self) -> None:
        """Write the small components waiting for a pack (then index them).

        Every other PUT is durable once it returns.

        Raises
        ------
        BlobStoreError
            If the pack cannot be written or indexed; the components stay
            pending and the next sync tries again.
        """
        with self._pack_lock:
            self._write_pack()

    # -- reading -----------------------------------------------------------------
    def _get_object(self, key: str) -> memoryview:
        parsed = _component_of(key)
        if parsed is None or self._index is None:
            return super()._get_object(key)
        kind, digest, name = parsed
        found = self._locate(digest)
        if found is None or found.kind != kind:
            try:
                return super()._get_object(key)
            except FileNotFoundError:
                # Not packed when looked up: perhaps packed by another writer since.
                found = self._locate(digest, fresh=True)
                if found is None or found.kind != kind:
                    raise
        got = self._member_bytes(key, found, kind, digest, name)
        if got is None and isinstance(found, PackedMember):
            # Its pack is missing or short. A place remembered may be stale: gc
            # deleted the component, or moved it (put again into a new pack)
            # since. Only what the index says now is damage.
            again = self._locate(digest, fresh=True)
            if again is None or again.kind != kind:
                return super()._get_object(key)  # deleted, or now unpacked
            if again != found:
                found = again
                got = self._member_bytes(key, found, kind, digest, name)
            if got is None and isinstance(found, PackedMember):
                raise self._missing_pack(digest, found)
        assert got is not None
        return got

    def _member_bytes(
        self, key: str, found: PackedMember | Pending, kind: str, digest: str, name: str
    ) -> memoryview | None:
        """The object ``key`` of the packed or pending ``found``.

        None if its pack is missing or shorter than the index says.
        """
        if isinstance(found, Pending):
            for member, data in found.members:
                if member.rsplit("/", 1)[-1] == _member_name(kind, digest, name):
                    return memoryview(data)
            raise FileNotFoundError(key)
        span = _span(found, kind, name)
        if span is None:
            raise FileNotFoundError(key)  # (compstore.sums: a packed array has none)
        if span[0] == span[1]:
            return memoryview(b"")  # an empty document: no range to ask for
        try:
            got = self._obs.get_range(
                self._client, self._pack_key(found.pack), start=span[0], end=span[1]
            )
        except FileNotFoundError:
            return None
        return memoryview(got) if len(got) == span[1] - span[0] else None

    def _missing_pack(self, digest: str, found: PackedMember) -> CorruptBlobError:
        return CorruptBlobError(
            f"component {digest} is indexed in pack {found.pack} of {self.url}, which is "
            "missing or shorter than its index says; the repository is damaged: run "
            "`compstore verify`"
        )

    def prefetch(self, documents: Iterable[str] = (), arrays: Iterable[str] = ()) -> None:
        docs = [d for d in documents if is_digest(d)]
        arrs = [a for a in arrays if is_digest(a)]
        if self._index is None:
            return self._prefetch(docs, arrs, [])
        with contextlib.suppress(BlobStoreError):  # best effort: the reads report it
            self._locate_many(docs + arrs)
        # Packed members are fetched in the first round, with their pack's others.
        also: list[str] = []
        rest_docs, rest_arrays = [], []
        for d in docs:
            found = self._located.get(d)
            if found is not None and found.kind == KIND_DOCUMENT:
                also.append(self._document_key(d))
            else:
                rest_docs.append(d)
        for a in arrs:
            found = self._located.get(a)
            if found is not None and found.kind == KIND_ARRAY:
                also.append(self._array_key(a, "zarr.json"))
                if found.key is not None:
                    also.append(self._array_key(a, found.key))
            else:
                rest_arrays.append(a)
        return self._prefetch(rest_docs, rest_arrays, also)

    def _ahead_jobs(self, keys: list[str]) -> list[AheadJob]:
        plain: list[str] = []
        by_pack: dict[str, list[tuple[str, int, int]]] = {}
        for key in keys:
            parsed = _component_of(key)
            found = self._located.get(parsed[1]) if parsed is not None else None
            span = _span(found, parsed[0], parsed[2]) if found and parsed else None
            if found is None or parsed is None or span is None or found.kind != parsed[0]:
                plain.append(key)
            elif span[0] == span[1]:
                plain.append(key)  # empty: `_get_object` answers without a request
            else:
                by_pack.setdefault(found.pack, []).append((key, *span))
        jobs = super()._ahead_jobs(plain)
        jobs += [functools.partial(self._fetch_members, p, spans) for p, spans in by_pack.items()]
        return jobs

    def _fetch_members(
        self, pack: str, spans: list[tuple[str, int, int]]
    ) -> list[tuple[str, memoryview | None]]:
        """Members of one pack, by one ``get_ranges`` (adjacent ranges: one request)."""
        try:
            got = self._obs.get_ranges(
                self._client,
                self._pack_key(pack),
                starts=[s for _, s, _ in spans],
                ends=[e for _, _, e in spans],
            )
            return [(key, memoryview(data)) for (key, _, _), data in zip(spans, got)]
        except Exception:  # noqa: BLE001 - the reads that follow meet and report it
            return [(key, None) for key, _, _ in spans]

    def _pack_end(self, digest: str, found: PackedMember) -> None:
        """`check_files` of a packed component: its pack is there and long enough."""
        size = self._head(self._pack_key(found.pack), f"pack {found.pack}")
        if size is None or size < found.end:
            raise self._missing_pack(digest, found)

    def _packed_digests(self, kind: str) -> set[str]:
        """The digests of ``kind`` packed or pending."""
        found = {d for d, p in list(self._pending.items()) if p.kind == kind}
        if self._index is not None:
            with self._index_errors():
                found.update(self._index.digests(kind))
        return found


def _component_of(key: str) -> tuple[str, str, str] | None:
    """(kind, digest, file name) of an object key of the layout; None for other keys."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == DOCUMENTS and parts[2].endswith(".json"):
        digest = parts[2][: -len(".json")]
        return (KIND_DOCUMENT, digest, "") if is_digest(digest) else None
    if len(parts) == 4 and parts[0] == ARRAYS_GROUP and is_digest(parts[2]):
        return KIND_ARRAY, parts[2], parts[3]
    return None


def _member_name(kind: str, digest: str, name: str) -> str:
    """The last part of the pack member's name for an object (``<digest>.json``, ``zarr.json``...)."""
    return f"{digest}.json" if kind == KIND_DOCUMENT else name


def _span(found: PackedMember | Pending, kind: str, name: str) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` in its pack of the object ``name`` of a packed component."""
    if not isinstance(found, PackedMember) or found.kind != kind:
        return None
    if kind == KIND_DOCUMENT:
        return found.data_offset, found.data_offset + found.data_size
    if name == "zarr.json" and found.meta_offset is not None and found.meta_size is not None:
        return found.meta_offset, found.meta_offset + found.meta_size
    if found.key is not None and name == found.key:
        return found.data_offset, found.data_offset + found.data_size
    return None

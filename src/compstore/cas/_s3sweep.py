"""The sweep of garbage collection on object storage: delete the objects no live digest needs.

`compstore.gc.collect_garbage` marks the live digests, takes the gc lock
exclusive (no put in flight: every put holds it shared from its first
existence check to its registry commit) and calls `sweep_s3`, which, from
one listing of the store's prefix:

1. deletes the arrays (``zarr.json`` first, then their other objects) and
   documents no live digest names, with bulk DELETEs (1,000 keys each);
2. deletes the objects of array folders without ``zarr.json`` (a writer
   killed before it published the array: nothing can name it);
3. removes the index rows of dead packed components, then deletes the packs
   no index row names (all members dead, or a writer killed between its
   pack's PUT and its index commit).

Packs are never rewritten: a pack with one live member keeps its dead ones'
bytes. The local read-through cache of this store object forgets what it
deletes; other processes' caches may still serve a deleted component's
(correct) bytes to a read, never to an existence check (those ask the bucket).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Final

from compstore.cas._digest import is_digest
from compstore.cas._pack import KIND_ARRAY, KIND_DOCUMENT
from compstore.cas._s3base import DOCUMENTS
from compstore.cas._s3packs import PACKS
from compstore.cas._store import ARRAYS_GROUP
from compstore.cas._sweep import SweepResult

if TYPE_CHECKING:
    from compstore.cas._s3 import S3BlobStore

__all__ = ["sweep_s3"]

_BULK: Final = 1000  # keys per bulk DELETE (S3's limit)


def sweep_s3(
    store: S3BlobStore,
    live: Collection[str],
    *,
    dry_run: bool = False,
    held: Callable[[], None] | None = None,
) -> SweepResult:
    """Delete what ``live`` does not name from ``store`` (the gc lock held exclusive).

    ``held`` (the gc lock's check that it is still held) runs before each bulk
    DELETE and before the index rows go: it raises to stop the sweep.

    Returns
    -------
    SweepResult
        Counts of components and bytes deleted, packs removed, leftovers removed.

    Raises
    ------
    BlobStoreError
        If the bucket cannot be listed or changed, or the pack index fails
        (what was done so far is consistent: run gc again).
    """
    result = SweepResult()
    folders: dict[str, dict[str, int]] = defaultdict(dict)  # array digest -> name -> size
    documents: dict[str, int] = {}
    packs: dict[str, int] = {}
    for o in store._list("", "the store's objects"):
        parts = o["path"].split("/")
        size = int(o["size"])
        if len(parts) == 4 and parts[0] == ARRAYS_GROUP and is_digest(parts[2]):
            folders[parts[2]][parts[3]] = size
        elif len(parts) == 3 and parts[0] == DOCUMENTS and parts[2].endswith(".json"):
            if is_digest(parts[2][:-5]):
                documents[parts[2][:-5]] = size
        elif len(parts) == 3 and parts[0] == PACKS and parts[2].endswith(".zip"):
            if is_digest(parts[2][:-4]):
                packs[parts[2][:-4]] = size

    dead_arrays = [d for d, files in folders.items() if "zarr.json" in files and d not in live]
    leftovers = [d for d, files in folders.items() if "zarr.json" not in files]
    dead_documents = [d for d in documents if d not in live]
    result.arrays = len(dead_arrays)
    result.documents = len(dead_documents)
    result.leftovers = len(leftovers)
    result.live_kept = sum(1 for d in folders if d in live) + sum(1 for d in documents if d in live)
    for digest in dead_arrays + leftovers:
        result.bytes_freed += sum(folders[digest].values())
    result.bytes_freed += sum(documents[d] for d in dead_documents)

    # Packed components: rows of dead digests go; then packs no row names.
    index = store._index
    dead_packed: list[str] = []
    rows_of: dict[str, int] = defaultdict(int)  # pack -> live rows left
    if index is not None:
        with store._index_errors():
            packed = [d for kind in (KIND_ARRAY, KIND_DOCUMENT) for d in index.digests(kind)]
            places = index.lookup_many(packed)
        for digest in packed:
            place = places.get(digest)
            if digest not in live:
                dead_packed.append(digest)
            elif place is not None:
                rows_of[place.pack] += 1
            else:  # a damaged row of a live component: its pack is kept (verify reports it)
                rows_of.update({p: rows_of[p] + 1 for p in packs})
    dead_packs = [p for p in packs if rows_of.get(p, 0) == 0]
    result.pack_members = len(dead_packed)
    result.packs_removed = len(dead_packs)
    result.bytes_freed += sum(packs[p] for p in dead_packs)
    if dry_run:
        return result

    # zarr.json first: an array stops existing before its data goes.
    what = "unreferenced components"
    check = held if held is not None else (lambda: None)
    _delete(store, [store._array_key(d, "zarr.json") for d in dead_arrays], what, check)
    _delete(store, [store._array_key(d, n) for d in dead_arrays + leftovers
                    for n in folders[d] if not (d in dead_arrays and n == "zarr.json")], what, check)  # fmt: skip
    _delete(store, [store._document_key(d) for d in dead_documents], what, check)
    check()
    for digest in dead_packed:
        store._unpack(digest)
    # Rows first, packs after: a row never names a missing pack.
    _delete(store, [store._pack_key(p) for p in dead_packs], "unreferenced packs", check)
    for digest in dead_arrays + leftovers + dead_documents + dead_packed:
        store._drop_cached(digest)
        if store._cache is not None:
            store._cache.drop(store._document_key(digest))
    return result


def _delete(store: S3BlobStore, keys: list[str], what: str, check: Callable[[], None]) -> None:
    for start in range(0, len(keys), _BULK):
        check()
        store._delete(keys[start : start + _BULK], what)


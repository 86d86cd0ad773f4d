"""Garbage collection: delete the components, manifests and pack members no dataset needs.

`Butler.remove` and `Butler.remove_run` forget datasets; their bytes stay until
`Butler.gc` (`collect_garbage`) runs:

1. **mark** (no lock): read every manifest digest the registry names and walk
   each manifest tree, collecting the digests of everything they need;
2. take the gc lock exclusive (`compstore.cas._gclock.sweep_guard`): the puts in
   flight finish, new ones wait; the generation is bumped;
3. **mark again** the manifests of datasets committed since step 1 (the puts
   that were in flight), so every component a committed row needs is live;
4. **sweep** (`compstore.cas._sweep.sweep_store`): delete the rest, repack
   mostly-dead packs, remove writers' leftovers; compact the pack index.

`put_guard` is the writer's side: a Butler put holds the lock shared from its
first existence check to its registry commit. The ordering rules are in
``docs/spec/format.md``, "Garbage collection".

The gc lock (`compstore.cas._gclock.GcLock`) is an ``flock`` in the blob store's
folder, or in ``<registry>.gc`` beside the SQLite registry of a repository on
object storage (`FolderGcLock`); for a repository on object storage whose
registry is PostgreSQL (hosts sharing it), session advisory locks in that
database (`compstore.cas._gclock_pg.PgGcLock`). An advisory lock is lost with
its connection, which the writer cannot notice by itself; so the put calls
`PutGuard.confirm` last in its registry transaction, which reads the
generation row ``FOR SHARE``. Why that suffices:

- a sweep commits its generation bump before it deletes anything, so if the
  generation is the one the put read under the lock, no sweep has deleted
  anything since the put's first existence check;
- a sweep's bump is an ``UPDATE`` of that row, which waits for the put's
  transaction to end; the sweep marks again after its bump, so it sees the
  put's rows (committed) or the put has rolled back;
- if the generation changed, a sweep ran while the lock was lost: the put
  fails (`BlobStoreError`, "put again") and its transaction rolls back, so no
  row names a component the sweep may have deleted.

A sweep checks that it still holds its lock before it deletes anything and
before each bulk DELETE on object storage (``SELECT 1`` on its session).

Memory: one Python set of the live digests and one of the registered
manifests, plus what the sweep holds (bounded: see `compstore.cas._sweep`):
`benchmarks/bench_gc.py` measured a 21 MiB peak, 445 bytes per live
component, for 100,000 components (50,000 live). Manifests are
read straight from the blob store, not through the object cache.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from compstore._progress import progress_bar
from compstore.cache import ObjectCache
from compstore.cas import BlobStore, LocalBlobStore, S3BlobStore
from compstore.cas._gclock import FolderGcLock, GcLock
from compstore.cas._s3sweep import sweep_s3
from compstore.cas._sweep import REPACK_BELOW, SweepResult, sweep_store
from compstore.datastore import Manifest, parse_manifest, walk
from compstore.errors import BlobStoreError, CompstoreError, CorruptBlobError
from compstore.registry import Registry

__all__ = [
    "REPACK_BELOW",
    "GcReport",
    "PutGuard",
    "collect_garbage",
    "put_guard",
    "remember_generation",
]

# The generation each identity cache last saw: a put whose generation differs
# makes the cache forget the digests it remembered (a sweep may have deleted them).
# Per cache, the generation of each repository it serves (a chain of repositories
# shares one cache: each repository's generation is its own).
_seen: weakref.WeakKeyDictionary[ObjectCache, dict[str, bytes]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class GcReport:
    """What `Butler.gc` deleted (or, with ``dry_run``, would delete).

    Attributes
    ----------
    manifests
        Registered manifests walked (one per distinct dataset content).
    live
        Components (arrays, documents, manifests) kept because a dataset needs them.
    arrays, documents, pack_members
        Components deleted: array folders, document files (manifests among
        them), and packed components (arrays and documents) whose index row
        was removed.
    bytes_freed
        Bytes of files deleted, less the bytes of packs written by repacks.
    packs_rewritten
        Packs whose live members were copied into a new pack (see `REPACK_BELOW`).
    packs_removed
        Pack files deleted (no live member left, or no index row named them).
    leftovers
        Dead writers' staging folders and ``.partial`` files removed.
    seconds
        Wall time of the whole collection.
    dry_run
        True if nothing was changed.
    """

    manifests: int
    live: int
    arrays: int
    documents: int
    pack_members: int
    bytes_freed: int
    packs_rewritten: int
    packs_removed: int
    leftovers: int
    seconds: float
    dry_run: bool

    @property
    def components(self) -> int:
        """Components deleted, of every kind."""
        return self.arrays + self.documents + self.pack_members

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able values (``compstore gc --json``)."""
        return {**asdict(self), "components": self.components}

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"gc {verb} {self.components} components ({self.arrays} array folders, "
            f"{self.documents} documents, {self.pack_members} pack members), "
            f"{'would free' if self.dry_run else 'freed'} {self.bytes_freed} bytes, "
            f"{'would rewrite' if self.dry_run else 'rewrote'} {self.packs_rewritten} packs, "
            f"removed {self.packs_removed} packs and {self.leftovers} leftovers; kept "
            f"{self.live} live components of {self.manifests} manifests ({self.seconds:.1f} s)"
        )


def remember_generation(blobs: BlobStore, cache: ObjectCache) -> None:
    """Record the gc generation for ``cache`` before it caches anything (a Butler opening).

    Read under the shared lock, so a sweep in progress finishes first: what
    the cache loads afterwards was stored after that sweep. Only a
    `LocalBlobStore` or an `S3BlobStore` with a gc lock is ever swept: for
    another store, nothing to record.
    """
    lock = _gc_lock(blobs)
    if lock is None:
        return
    seen = _seen.setdefault(cache, {})
    if lock.key not in seen:
        try:
            with lock.writer() as generation:
                seen.setdefault(lock.key, generation)
        except OSError:
            # A repository this process may not write (read-only files): no put
            # will run here, and what the generation file says is enough to read.
            seen.setdefault(lock.key, lock.read_generation())
        except BlobStoreError:
            pass  # a lock out of reach: the first put forgets what was cached before it


class PutGuard:
    """What `put_guard` yields: `confirm` runs last in the put's registry transaction."""

    __slots__ = ("_generation", "_lock")

    def __init__(self, lock: GcLock | None, generation: bytes) -> None:
        self._lock = lock
        self._generation = generation

    def confirm(self, registry: Registry) -> None:
        """Check that the gc lock held throughout (inside the open registry transaction).

        A lock that lives in a database session (a PostgreSQL registry's) is
        lost with its connection; this fails the put if a sweep ran since
        (`compstore.cas._gclock_pg`). An ``flock`` cannot be lost: nothing to do.

        Raises
        ------
        BlobStoreError
            If the lock was lost and a sweep ran since the put took it: put again.
        """
        if self._lock is not None:
            self._lock.confirm(self._generation, registry.execute_in_transaction)


_NO_GUARD = PutGuard(None, b"")


@contextlib.contextmanager
def put_guard(blobs: BlobStore, cache: ObjectCache) -> Iterator[PutGuard]:
    """Hold the gc lock shared for a put (existence checks through registry commit).

    (A blob store that is not a folder has no gc: nothing to hold.)

    If a sweep ran since ``cache`` last looked, the digests it remembers are
    forgotten first, so that the put checks (and writes again) what it needs.
    Only a `LocalBlobStore` or an `S3BlobStore` with a gc lock is ever swept:
    another store takes no lock. The put calls the guard's `PutGuard.confirm`
    as the last statement of its registry transaction.

    Raises
    ------
    BlobStoreError
        If the lock cannot be taken.
    """
    lock = _gc_lock(blobs)
    if lock is None:
        yield _NO_GUARD
        return
    with contextlib.ExitStack() as stack:
        try:
            generation = stack.enter_context(lock.writer())
        except OSError as exc:
            raise BlobStoreError(f"cannot take the gc lock of {blobs.location}: {exc}") from exc
        seen = _seen.setdefault(cache, {})
        if seen.get(lock.key) != generation:
            cache.forget_digests()
            seen[lock.key] = generation
        yield PutGuard(lock, generation)


def collect_garbage(
    registry: Registry, blobs: BlobStore, *, dry_run: bool = False, progress: bool = False
) -> GcReport:
    """Delete what no registered dataset needs (see the module docstring).

    Parameters
    ----------
    registry
        The repository's registry.
    blobs
        Its blob store: a `LocalBlobStore` (gc sweeps its files), or an
        `S3BlobStore` with a gc lock (a repository on object storage, with a
        SQLite or a PostgreSQL registry: `compstore.cas._s3sweep`).
    dry_run
        Count what would be deleted; change nothing (takes no exclusive lock).
    progress
        Draw progress bars on stderr.

    Returns
    -------
    GcReport
        What was (or would be) deleted.

    Raises
    ------
    CorruptBlobError
        If a registered dataset's manifest is missing or damaged: gc cannot
        tell what it needs, so it stops before deleting anything (run
        `compstore verify`).
    BlobStoreError
        If the blob store cannot be listed or changed, or is neither a
        `LocalBlobStore` nor an `S3BlobStore` with a gc lock; if the gc lock
        cannot be taken, or was lost (its database connection) before the sweep
        ended (what was deleted so far was garbage: run gc again).
    """
    lock = _gc_lock(blobs)
    if lock is None:
        raise BlobStoreError(
            f"gc works on a blob store in a local folder, or on object storage with a gc "
            f"lock; {blobs.location} is a {type(blobs).__name__}"
            + (" without a gc lock (the folder beside its SQLite registry is not writable)"
               if isinstance(blobs, S3BlobStore) else "")
            + " (unreferenced objects are left in place: docs/object-storage.md)"
        )  # fmt: skip
    start = time.perf_counter()
    live: set[str] = set()
    manifests = registry.manifests()
    _mark(blobs, manifests, live, progress)
    try:
        sweeping = lock.sweep(bump=True) if not dry_run else contextlib.nullcontext(_held)
        with sweeping as held:
            # Datasets committed by the puts that were in flight during the mark.
            later = registry.manifests()
            _mark(blobs, later - manifests, live, False)
            manifests |= later
            swept: SweepResult
            held()  # a lock lost with its connection: stop before deleting anything
            if isinstance(blobs, LocalBlobStore):
                swept = sweep_store(blobs, live, dry_run=dry_run, progress=progress)
                if not dry_run and blobs.packs and swept.pack_members:
                    _compact_index(blobs)
            else:
                assert isinstance(blobs, S3BlobStore)
                swept = sweep_s3(blobs, live, dry_run=dry_run, held=held)
        if not dry_run:
            registry.compact()  # rows removed since the last gc leave free pages and WAL
    except Exception as exc:
        if not isinstance(exc, _store_errors()):
            raise
        raise BlobStoreError(
            f"gc of {blobs.location} stopped: {exc}; what it did so far is consistent, "
            "run gc again"
        ) from exc
    return GcReport(
        manifests=len(manifests),
        live=len(live),
        arrays=swept.arrays,
        documents=swept.documents,
        pack_members=swept.pack_members,
        bytes_freed=swept.bytes_freed,
        packs_rewritten=swept.packs_rewritten,
        packs_removed=swept.packs_removed,
        leftovers=swept.leftovers,
        seconds=time.perf_counter() - start,
        dry_run=dry_run,
    )


def _store_errors() -> tuple[type[Exception], ...]:
    """What a sweep may raise about the store or its pack index (reported as BlobStoreError).

    psycopg's errors only if psycopg is loaded already (a pack index in PostgreSQL
    imported it): ``import compstore`` does not pay for importing it.
    """
    psycopg = sys.modules.get("psycopg")
    return (OSError, sqlite3.Error) + ((psycopg.Error,) if psycopg is not None else ())


def _gc_lock(blobs: BlobStore) -> GcLock | None:
    """The store's gc lock; None if the store is never swept."""
    if isinstance(blobs, LocalBlobStore):
        return FolderGcLock(str(blobs.root))
    if isinstance(blobs, S3BlobStore):
        return blobs.gc_lock
    return None


def _held() -> None:
    """A dry run holds no lock: nothing to check."""


def _mark(blobs: BlobStore, manifests: Iterable[str], live: set[str], progress: bool) -> None:
    """Add to ``live`` every digest the manifests (and the manifests nested in them) need."""
    todo = sorted(set(manifests) - live)
    for top in progress_bar(todo, enabled=progress, desc="gc: mark", unit="manifest"):
        if top in live:
            continue
        # A nested manifest marked live already had its tree marked with it: not read again.
        done: set[str] = set()
        load = functools.partial(_load, blobs, done)
        try:
            for kind, digest in walk(load, top):
                if kind == "manifest" and digest in live:
                    done.add(digest)
                live.add(digest)
        except CompstoreError as exc:
            raise CorruptBlobError(
                f"gc stopped before deleting anything: a manifest needed by the datasets of "
                f"manifest {top} cannot be read ({exc}), so what it needs is unknown; run "
                "`compstore verify` and repair or remove those datasets first"
            ) from exc


def _load(blobs: BlobStore, done: set[str], digest: str) -> Manifest:
    """Manifest ``digest``, read past the object cache; one in ``done`` reads empty."""
    if digest in done:
        return _EMPTY
    return parse_manifest(digest, blobs.get_document(digest))


_EMPTY = Manifest("", {}, {})


def _compact_index(blobs: LocalBlobStore) -> None:
    """Give the space of the pack index's deleted rows back (VACUUM; the WAL truncated).

    A pack index in PostgreSQL is left to the server's autovacuum.
    """
    if blobs.pack_index_conninfo() is not None:
        return
    conn = sqlite3.connect(str(blobs.root / "packs.sqlite3"), isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()

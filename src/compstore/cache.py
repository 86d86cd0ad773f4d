"""Identity-preserving object cache keyed by content digest.

The cache gives compstore its central promise: *the same digest yields the same
Python object while anyone holds it*, so an Exposure and a SourceCatalog read
from one repository share one ``Wcs`` and one ``Calib`` object. Two maps work
together, both keyed by digest:

- a **weak map** (digest -> weak reference) finds any object still alive
  anywhere in the process, whatever its size;
- a byte-bounded **LRU** holds strong references to recently used objects, so
  that re-reading a component shortly after its last user dropped it costs no
  I/O. Its bound counts each underlying buffer once: an Exposure and the pixel
  arrays it holds are all in the LRU, and their bytes are charged once, not
  once per object (see :func:`charges`).

An object larger than the whole LRU bound is held only weakly. An object that
cannot be weakly referenced (``int``, ``str``, ``tuple``, ``dict``, ``None``,
classes with ``__slots__`` but no ``__weakref__``) is held only in the LRU: it
keeps its identity while it stays there, and once evicted (or if it is larger
than the bound) the next request loads it again.

A reverse map records which digest an object came from, by identity, so that
putting an object that was read from the store again costs no hashing and no
bytes (:meth:`ObjectCache.remember_digest`, :meth:`ObjectCache.known_digest`).

What an entry costs and the byte-bounded LRU are in `compstore._cache_lru`.

Every repository opened in a process gets one cache, shared by every Butler of
that repository (:func:`shared_cache`).

Thread safety: one lock guards the maps; a hit is a dictionary lookup under it.
Loaders run outside the lock, so loads of different digests run in parallel,
and concurrent requests for one digest wait for a single load (see
:meth:`ObjectCache.get_or_load`).
"""

from __future__ import annotations

import operator
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ._cache_lru import DEFAULT_OBJECT_SIZE, ByteLRU, Charges, charges, default_size_of

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_OBJECT_SIZE",
    "ObjectCache",
    "charges",
    "default_size_of",
    "shared_cache",
]

T = TypeVar("T")

#: Default bound of the strong (LRU) part of a cache, in bytes: 256 MiB.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

def _is_frozen(obj: object) -> bool:
    """Whether a numpy array (and every array it views) is read-only.

    A remembered digest is only trustworthy while nobody can change the bytes
    behind it: a read-only view of a writeable base can still change, so the
    whole ``base`` chain must be read-only. Non-array objects are trusted to be
    immutable (compstore's leaf values are).
    """
    while isinstance(obj, np.ndarray):
        if obj.flags.writeable:
            return False
        obj = obj.base
    if isinstance(obj, memoryview):
        return obj.readonly
    return True


class _Ref(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that knows its digest, charges and referent's id.

    The id is kept because the reverse map is keyed by it and, once the
    referent is dead, ``id()`` can no longer be asked.
    """

    __slots__ = ("charges", "digest", "nbytes", "obj_id")

    digest: str
    charges: Charges
    nbytes: int
    obj_id: int

    def __new__(
        cls, obj: object, callback: Callable[[Any], object], digest: str, charges: Charges
    ) -> _Ref:
        self = super().__new__(cls, obj, callback)
        self.digest = digest
        self.charges = charges
        self.nbytes = sum(n for _, n in charges)
        self.obj_id = id(obj)
        return self

    def __init__(
        self, obj: object, callback: Callable[[Any], object], digest: str, charges: Charges
    ) -> None:
        # weakref.ref.__init__ would reject the extra arguments (as for KeyedRef).
        super().__init__(obj, callback)  # type: ignore[call-arg]


class _Load:
    """One load in flight: the thread running it, and its outcome for waiters."""

    __slots__ = ("_running", "error", "owner", "value")

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        # Held while the load runs; waiters block on it. A bare lock, not an Event:
        # every miss makes one, and an Event is a Condition and two locks.
        self._running = threading.Lock()
        self._running.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        """Wake every waiter (after ``value`` or ``error`` is set)."""
        self._running.release()

    def wait(self) -> Any:
        with self._running:  # each waiter takes and passes it on in turn
            pass
        if self.error is not None:
            raise self.error
        return self.value


def _check_max_bytes(max_bytes: int) -> int:
    try:
        value = operator.index(max_bytes)
    except TypeError:
        raise TypeError(
            f"max_bytes must be an integer number of bytes, not {type(max_bytes).__name__}"
        ) from None
    if value < 0:
        raise ValueError(f"max_bytes must be >= 0, got {value}")
    return value


class ObjectCache:
    """Identity-preserving cache of loaded objects, keyed by digest.

    Parameters
    ----------
    max_bytes : int, optional
        Bound of the strong (LRU) part, in bytes, as measured by the
        ``size_of`` given to :meth:`get_or_load`. Objects alive elsewhere are
        found through weak references whatever this bound; ``0`` disables the
        strong part. Defaults to :data:`DEFAULT_MAX_BYTES` (256 MiB).

    Raises
    ------
    TypeError
        If ``max_bytes`` is not an integer.
    ValueError
        If ``max_bytes`` is negative.

    Notes
    -----
    Loaders should return immutable objects (read-only arrays): every caller
    asking for a digest gets the same object, so a change made by one is seen
    by all.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._lock = threading.Lock()
        self._lru = ByteLRU(_check_max_bytes(max_bytes))
        # digest -> weak reference to the object loaded for it.
        self._weak: dict[str, _Ref] = {}
        # id(object) -> weak reference carrying the object's digest.
        self._by_id: dict[int, _Ref] = {}
        self._loading: dict[str, _Load] = {}
        # Weakref callbacks only append here (list.append is atomic and takes
        # no lock: a callback can fire in any thread, even one holding
        # self._lock, so it must never lock). Dead entries are purged under
        # the lock on the next slow-path call; until then lookups tell them
        # apart by calling the reference.
        self._dead: list[_Ref] = []
        self._hits = 0
        self._misses = 0
        self._loads = 0
        self._load_errors = 0
        self._waits = 0

    # -- the hot path -----------------------------------------------------------
    def get_or_load(
        self,
        digest: str,
        loader: Callable[[], T],
        size_of: Callable[[T], int | np.ndarray | Sequence[np.ndarray]] | None = None,
    ) -> T:
        """Return the object for ``digest``, calling ``loader`` only if none is cached.

        While anything holds an object loaded for ``digest`` (or it is still in
        the LRU), the very same object is returned. Otherwise ``loader()`` is
        called, outside the cache lock, and its result is cached and
        remembered (:meth:`known_digest`). If several threads ask for the same
        digest at once, the loader runs once and every thread gets its result
        (or its exception).

        Parameters
        ----------
        digest : str
            Content digest naming the object.
        loader : callable
            Called with no arguments to produce the object on a miss. It must
            not ask this cache for ``digest`` itself.
        size_of : callable, optional
            What the loaded object keeps alive: a number of bytes, or the
            numpy arrays it holds (each buffer is then charged once however
            many cached objects share it; see :func:`charges`). Defaults to
            the array itself for a numpy array, else :func:`default_size_of`.
            Only called on a miss.

        Returns
        -------
        object
            The cached or freshly loaded object.

        Raises
        ------
        Exception
            Whatever ``loader`` or ``size_of`` raised, in this thread and in
            every thread waiting for the same load; nothing is cached, so the
            next call tries again.
        ValueError
            If ``size_of`` returns a negative size.
        RuntimeError
            If ``loader`` asks, in the same thread, for the digest it is
            loading (which could otherwise only deadlock).
        """
        with self._lock:
            lru = self._lru  # read under the lock: resize() and clear() replace it
            if digest in lru:
                self._hits += 1
                return lru[digest][0]  # type: ignore[return-value]
            ref = self._weak.get(digest)
            value = ref() if ref is not None else None
            if ref is not None and value is not None:
                self._hits += 1
                # A use makes it recent again: keep it past its last holder.
                if ref.nbytes <= lru.maxsize:
                    lru[digest] = (value, ref.charges)
                    evicted = self._take_evicted()  # noqa: F841 (dropped on return, unlocked)
                load = None
            else:
                self._misses += 1
                load = self._loading.get(digest)
                if load is None:
                    load = self._loading[digest] = _Load()
                    owner = True
                elif load.owner == threading.get_ident():
                    raise RuntimeError(
                        f"the loader for digest {digest} asked the cache for {digest} again; "
                        "a loader must not depend on its own digest"
                    )
                else:
                    self._waits += 1
                    owner = False
        if load is None:
            return value  # type: ignore[return-value]
        if not owner:
            return load.wait()  # type: ignore[no-any-return]
        return self._load(digest, load, loader, size_of)

    def _load(
        self,
        digest: str,
        load: _Load,
        loader: Callable[[], T],
        size_of: Callable[[T], int | np.ndarray | Sequence[np.ndarray]] | None,
    ) -> T:
        # Whatever happens, the in-flight entry goes and the waiters wake up:
        # a leftover entry would make every later call for the digest hang.
        try:
            value = loader()
            if size_of is not None:
                charged = charges(digest, size_of(value))
            elif isinstance(value, np.ndarray):  # charged per buffer, not per view
                charged = charges(digest, value)
            else:
                charged = charges(digest, default_size_of(value))
        except BaseException as exc:
            with self._lock:
                self._loads += 1
                self._load_errors += 1
                del self._loading[digest]
            load.error = exc
            load.finish()
            raise
        try:
            with self._lock:
                del self._loading[digest]
                self._loads += 1
                self._purge_dead()
                self._store(digest, value, charged)
                evicted = self._take_evicted()
            del evicted  # outside the lock: may free memory or run finalizers
            load.value = value
        finally:
            load.finish()
        return value

    # -- internals (call with the lock held) ------------------------------------
    def _store(self, digest: str, value: object, charged: Charges) -> None:
        try:
            ref = _Ref(value, self._dead.append, digest, charged)
        except TypeError:
            pass  # not weakly referenceable: the LRU alone keeps it
        else:
            self._weak[digest] = ref
            if _is_frozen(value):
                self._by_id[ref.obj_id] = ref
        if sum(n for _, n in charged) <= self._lru.maxsize:
            self._lru[digest] = (value, charged)

    def _take_evicted(self) -> list[tuple[object, Charges]] | None:
        evicted = self._lru.evicted
        if not evicted:
            return None
        self._lru.evicted = []
        return evicted

    def _purge_dead(self) -> None:
        dead = self._dead
        while dead:
            ref = dead.pop()
            # Only drop the entry if it is still this reference: a newer load
            # of the digest, or a new object that reused the id, must stay.
            if self._weak.get(ref.digest) is ref:
                del self._weak[ref.digest]
            if self._by_id.get(ref.obj_id) is ref:
                del self._by_id[ref.obj_id]

    # -- looking without loading ------------------------------------------------
    def peek(self, digest: str) -> Any | None:
        """Return the cached object for ``digest``, or None, without loading.

        Neither the statistics nor the LRU order change. A cached object that
        *is* ``None`` cannot be told from a miss here; use ``in``.

        Parameters
        ----------
        digest : str
            Content digest.

        Returns
        -------
        object or None
            The object held strongly or still alive for ``digest``.
        """
        with self._lock:
            entry = self._lru.peek(digest)
            if entry is not None:
                return entry[0]
            ref = self._weak.get(digest)
            return ref() if ref is not None else None

    def __contains__(self, digest: object) -> bool:
        with self._lock:
            if digest in self._lru:
                return True
            ref = self._weak.get(digest)  # type: ignore[call-overload]
            return ref is not None and ref() is not None

    # -- the reverse map --------------------------------------------------------
    def remember_digest(self, obj: object, digest: str) -> bool:
        """Record that ``obj`` has content digest ``digest``, for its lifetime.

        The record is keyed by identity and removed when ``obj`` dies, so a
        later object that happens to get the same ``id`` is never mistaken for
        it. :meth:`get_or_load` remembers what it loads by itself.

        Parameters
        ----------
        obj : object
            The object whose content was hashed (or read) as ``digest``.
        digest : str
            Its content digest.

        Returns
        -------
        bool
            Whether the digest was recorded. Objects that cannot be weakly
            referenced are not (their identity cannot be tracked safely), nor
            are writeable numpy arrays (their bytes may change at any time).
        """
        if not _is_frozen(obj):
            return False
        try:
            ref = _Ref(obj, self._dead.append, digest, ())
        except TypeError:
            return False
        with self._lock:
            self._purge_dead()
            self._by_id[ref.obj_id] = ref
        return True

    def known_digest(self, obj: object) -> str | None:
        """Return the digest ``obj`` was loaded or remembered with, if any.

        Parameters
        ----------
        obj : object
            Any object.

        Returns
        -------
        str or None
            The digest, or None if ``obj`` was never remembered, cannot be
            weakly referenced, or is a numpy array that became writeable since
            (someone may have changed it; the record is then dropped for good,
            as making it read-only again proves nothing).
        """
        with self._lock:
            ref = self._by_id.get(id(obj))
            # ref() is not obj: the remembered object died and obj reused its
            # id before the dead entry was purged.
            if ref is None or ref() is not obj:
                return None
            if not _is_frozen(obj):
                del self._by_id[ref.obj_id]
                return None
            return ref.digest

    def forget_digests(self) -> None:
        """Forget every object -> digest record of the reverse map.

        Garbage collection calls this (through the Butler's next put) after a
        sweep: a remembered digest proved its component was stored when the
        object was read or written, and the sweep may have deleted it since.
        The next put of such an object hashes it again and writes what is
        missing. Cached objects stay cached (digest -> object is unaffected).
        """
        with self._lock:
            self._by_id = {}

    # -- management -------------------------------------------------------------
    @property
    def max_bytes(self) -> int:
        """Bound of the strong (LRU) part, in bytes."""
        return int(self._lru.maxsize)

    def resize(self, max_bytes: int) -> None:
        """Change the bound of the strong part, evicting least recently used objects.

        Parameters
        ----------
        max_bytes : int
            New bound in bytes; recency order is kept.

        Raises
        ------
        TypeError
            If ``max_bytes`` is not an integer.
        ValueError
            If ``max_bytes`` is negative.
        """
        new = ByteLRU(_check_max_bytes(max_bytes))
        with self._lock:
            old = self._lru
            # Re-inserting oldest first lets the new bound evict the oldest.
            entries = old.items()
            for key, entry in entries:
                if sum(n for _, n in entry[1]) <= new.maxsize:
                    new[key] = entry
            self._lru = new
            dropped = (old.evicted, new.evicted, entries)
            new.evicted = []
        del dropped  # outside the lock

    def clear(self) -> None:
        """Forget every digest -> object entry, strong and weak.

        After ``clear()`` the next :meth:`get_or_load` of any digest calls its
        loader, even if an object loaded earlier is still alive elsewhere (that
        old object keeps working, but is no longer the one handed out). The
        reverse map is kept: a live, unchanged object still has its digest.
        Statistics are not reset. Loads in flight finish and are cached.
        """
        with self._lock:
            old = self._lru
            self._lru = ByteLRU(int(old.maxsize))
            self._weak = {}
        del old  # release the strong references outside the lock

    def stats(self) -> dict[str, int]:
        """Return counters and sizes.

        Returns
        -------
        dict of str to int
            ``hits`` (calls answered from the cache), ``misses`` (calls that
            were not), ``loads`` (loader calls, failed ones included),
            ``load_errors``, ``waits`` (misses that waited for another
            thread's load of the same digest), ``strong_objects`` and
            ``strong_bytes`` (the LRU), ``live_objects`` (objects reachable
            through the weak map, i.e. alive somewhere), ``remembered``
            (reverse-map entries) and ``max_bytes``.
        """
        with self._lock:
            self._purge_dead()
            return {
                "hits": self._hits,
                "misses": self._misses,
                "loads": self._loads,
                "load_errors": self._load_errors,
                "waits": self._waits,
                "strong_objects": len(self._lru),
                "strong_bytes": int(self._lru.currsize),
                "live_objects": sum(1 for ref in self._weak.values() if ref() is not None),
                "remembered": len(self._by_id),
                "max_bytes": int(self._lru.maxsize),
            }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_bytes={self._lru.maxsize}, "
            f"strong_bytes={self._lru.currsize}, entries={len(self._weak)})"
        )


# -- one cache per repository per process ---------------------------------------
_shared: weakref.WeakValueDictionary[str, ObjectCache] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_cache(key: str, max_bytes: int | None = None) -> ObjectCache:
    """Return the process-wide cache of one repository.

    Every Butler of a repository asks for its cache here, so all of them share
    object identities and one memory budget. The cache lives as long as some
    caller holds it: a process that opens many short-lived repositories (a
    test suite) does not keep 256 MiB for each.

    Parameters
    ----------
    key : str
        Names the repository; pass its resolved absolute path, so that two
        spellings of one folder share a cache.
    max_bytes : int, optional
        Wanted bound of the strong part. A new cache gets it (or
        :data:`DEFAULT_MAX_BYTES`); an existing cache grows to it if it is
        larger, and never shrinks, since another Butler asked for the current
        size.

    Returns
    -------
    ObjectCache
        The same instance for the same key while anyone holds it.

    Raises
    ------
    TypeError
        If ``max_bytes`` is not an integer.
    ValueError
        If ``max_bytes`` is negative.
    """
    if max_bytes is not None:
        max_bytes = _check_max_bytes(max_bytes)
    with _shared_lock:
        cache = _shared.get(key)
        if cache is None:
            cache = ObjectCache(DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
            _shared[key] = cache
        elif max_bytes is not None and max_bytes > cache.max_bytes:
            cache.resize(max_bytes)
        return cache

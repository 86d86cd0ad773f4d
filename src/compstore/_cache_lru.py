"""What a cache entry costs, and the LRU bounded by those costs (for `compstore.cache`).

An entry is charged per buffer owner (:func:`charges`), so views of one
buffer, and objects sharing arrays with other entries, count once in the
bound of the byte-bounded LRU (`ByteLRU`).
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_OBJECT_SIZE", "ByteLRU", "Charges", "charges", "default_size_of"]

#: Size charged for an object whose size is unknown (no ``nbytes``): 1 KiB.
#: Small leaf values (Wcs, Calib, VisitInfo) are of this order; what matters is
#: that thousands of them cannot push the pixel arrays out of the LRU.
DEFAULT_OBJECT_SIZE = 1024


def default_size_of(obj: object) -> int:
    """Estimate the bytes an object keeps alive, for the LRU bound.

    Parameters
    ----------
    obj : object
        Any value returned by a loader.

    Returns
    -------
    int
        ``obj.nbytes`` for numpy arrays and any object with an integer
        ``nbytes`` attribute (astropy tables and columns, compstore's pixel
        containers); otherwise :data:`DEFAULT_OBJECT_SIZE`.
    """
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    nbytes = getattr(obj, "nbytes", None)
    # bool is an int, but a flag called nbytes is no size.
    if isinstance(nbytes, (int, np.integer)) and not isinstance(nbytes, bool) and nbytes >= 0:
        return int(nbytes)
    return DEFAULT_OBJECT_SIZE


#: What one cache entry is charged for: (buffer key, bytes) pairs. The key of a
#: numpy buffer is the id of the object that owns its memory (alive while the
#: entry is); an object of opaque size is charged under its own digest.
Charges = tuple[tuple[object, int], ...]


def _owner(array: np.ndarray) -> tuple[object, int]:
    """The object owning an array's memory, and that memory's size in bytes."""
    base: object = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, np.ndarray):
        return base, int(base.nbytes)
    try:
        return base, memoryview(base).nbytes  # type: ignore[arg-type]
    except TypeError:  # a foreign buffer owner: the array's own extent
        return base, int(array.nbytes)


def charges(digest: str, size: int | np.ndarray | Sequence[np.ndarray]) -> Charges:
    """What an entry of ``digest`` costs the LRU, given its ``size_of`` answer.

    An integer is an opaque size, charged to the entry alone. An array, or a
    sequence of the arrays an object holds (an Exposure's image, mask and
    variance), is charged per buffer owner: views of one buffer, and objects
    sharing arrays with other entries, are counted once in the cache's bound.

    Raises
    ------
    ValueError
        If an integer size is negative.
    TypeError
        If ``size`` is neither an integer nor arrays.
    """
    if isinstance(size, np.ndarray):
        size = (size,)
    elif not isinstance(size, Sequence):
        nbytes = operator.index(size)
        if nbytes < 0:
            raise ValueError(f"size_of returned a negative size ({nbytes}) for digest {digest}")
        return ((digest, nbytes),)
    owners: dict[int, tuple[object, int]] = {}
    for array in size:
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"size_of for digest {digest} must return bytes or numpy arrays, "
                f"got a {type(array).__name__}"
            )
        owner, nbytes = _owner(array)
        owners[id(owner)] = (owner, nbytes)
    return tuple((key, nbytes) for key, (_, nbytes) in owners.items())


class ByteLRU:
    """An LRU of ``(object, charges)`` entries bounded by the bytes they hold.

    ``currsize`` counts each buffer owner once however many entries hold it
    (:func:`charges`): a buffer's bytes leave the count when the last entry
    holding it does. Dropping the last reference to an evicted object frees
    its memory (a munmap for a large array) and can run arbitrary code
    (``__del__``, other weakref callbacks); both belong outside the cache
    lock, so evictions are collected in :attr:`evicted` and released by the
    caller after unlocking.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.currsize = 0
        self.evicted: list[tuple[object, Charges]] = []
        self._entries: OrderedDict[str, tuple[object, Charges]] = OrderedDict()
        # buffer key -> [entries holding it, bytes]
        self._held: dict[object, list[int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __getitem__(self, key: str) -> tuple[object, Charges]:
        """The entry, made the most recent."""
        self._entries.move_to_end(key)
        return self._entries[key]

    def peek(self, key: str) -> tuple[object, Charges] | None:
        """The entry, recency unchanged."""
        return self._entries.get(key)

    def __setitem__(self, key: str, entry: tuple[object, Charges]) -> None:
        if key in self._entries:
            self._release(self._entries.pop(key))
        self._entries[key] = entry
        held = self._held
        for buffer, nbytes in entry[1]:
            count = held.get(buffer)
            if count is None:
                held[buffer] = [1, nbytes]
                self.currsize += nbytes
            else:
                count[0] += 1
        while self.currsize > self.maxsize and self._entries:
            self.popitem()

    def popitem(self) -> tuple[str, tuple[object, Charges]]:
        """Evict the least recently used entry (kept in :attr:`evicted`)."""
        key, entry = self._entries.popitem(last=False)
        self._release(entry)
        self.evicted.append(entry)
        return key, entry

    def _release(self, entry: tuple[object, Charges]) -> None:
        held = self._held
        for buffer, _ in entry[1]:
            count = held[buffer]
            count[0] -= 1
            if count[0] == 0:
                del held[buffer]
                self.currsize -= count[1]

    def items(self) -> list[tuple[str, tuple[object, Charges]]]:
        """Entries, least recent first."""
        return list(self._entries.items())

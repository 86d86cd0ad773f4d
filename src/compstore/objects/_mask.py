"""Integer pixel masks whose bits are named planes (BAD, SAT, DETECTED, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

__all__ = ["DEFAULT_MASK_PLANES", "Mask"]

#: Planes every new Mask knows, name -> bit index. Order matters: bit = position.
DEFAULT_MASK_PLANES: Mapping[str, int] = MappingProxyType(
    {
        name: bit
        for bit, name in enumerate(("BAD", "SAT", "INTRP", "CR", "EDGE", "DETECTED", "NO_DATA"))
    }
)

# int32 holds 32 bits; bit 31 is the sign bit, usable but only through np.int32 casting.
_MAX_PLANES = 32


def _as_mask_array(array: ArrayLike) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise ObjectError(f"a Mask array must be 2-D, got shape {arr.shape}")
    if arr.dtype == np.int32:
        return arr
    # Accept bool or other integer arrays whose values fit int32; refuse floats, which would
    # hide a caller passing an image where a mask belongs.
    if arr.dtype.kind not in "biu":
        raise ObjectError(f"a Mask array must hold integers, got dtype {arr.dtype}")
    if arr.size and arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        info = np.iinfo(np.int32)
        # uint32 masks (common in FITS files) reinterpret cleanly as int32 bit patterns.
        if arr.dtype == np.uint32:
            return arr.view(np.int32)
        if lo < info.min or hi > info.max:
            raise ObjectError(f"Mask values {lo}..{hi} do not fit in int32")
    return arr.astype(np.int32)


class Mask:
    """A 2-D int32 array whose bits are named planes.

    Parameters
    ----------
    array : array_like
        2-D integer (or bool) values; stored as int32 without a copy when already int32.
    planes : mapping of str to int, optional
        Plane name -> bit index; defaults to :data:`DEFAULT_MASK_PLANES`.

    Raises
    ------
    ObjectError
        If the array is not 2-D integer data fitting int32, or the planes are invalid
        (a bit outside 0..31, or two names sharing a bit).

    Notes
    -----
    The pixel array is mutable (``set_plane``/``clear_plane`` work in place, as masks
    are edited by detection stages); the name -> bit mapping only grows through
    :meth:`add_plane`. Use :meth:`with_plane` for a changed copy.
    """

    __slots__ = ("_array", "_planes", "_base", "_replaced", "__weakref__")

    def __init__(self, array: ArrayLike, planes: Mapping[str, int] | None = None) -> None:
        self._base: Mask | None = None
        self._replaced: tuple[str, ...] = ()
        self._array = _as_mask_array(array)
        planes = dict(DEFAULT_MASK_PLANES if planes is None else planes)
        bits = list(planes.values())
        for name, bit in planes.items():
            if not isinstance(name, str) or not name:
                raise ObjectError(f"mask plane names must be non-empty strings, got {name!r}")
            if not isinstance(bit, (int, np.integer)) or not 0 <= bit < _MAX_PLANES:
                raise ObjectError(f"mask plane {name!r} has bit {bit!r}, not in 0..31")
        if len(set(bits)) != len(bits):
            raise ObjectError(f"mask planes share a bit: {planes}")
        self._planes = {name: int(bit) for name, bit in planes.items()}

    @classmethod
    def zeros(cls, shape: tuple[int, int], planes: Mapping[str, int] | None = None) -> Mask:
        """A mask of ``shape`` with no bit set."""
        return cls(np.zeros(shape, dtype=np.int32), planes)

    # -- arrays -----------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The int32 pixel array (shared, not copied)."""
        return self._array

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self._array.shape

    @property
    def planes(self) -> Mapping[str, int]:
        """Read-only mapping plane name -> bit index."""
        return MappingProxyType(self._planes)

    def _bit(self, name: str) -> int:
        try:
            return self._planes[name]
        except KeyError:
            known = ", ".join(sorted(self._planes))
            raise ObjectError(f"unknown mask plane {name!r}; known planes: {known}") from None

    def bitmask(self, name: str) -> int:
        """The integer with only plane ``name``'s bit set (as an int32 value).

        Raises
        ------
        ObjectError
            If the plane is unknown; the message lists the known planes.
        """
        value = 1 << self._bit(name)
        # Bit 31 is int32's sign bit: return the negative int32 with that bit pattern.
        return value - (1 << 32) if value >= 1 << 31 else value

    def plane(self, name: str) -> np.ndarray:
        """A new bool array, True where plane ``name`` is set.

        Raises
        ------
        ObjectError
            If the plane is unknown.
        """
        plane: np.ndarray = (self._array & np.int32(self.bitmask(name))) != 0
        return plane

    def set_plane(self, name: str, where: ArrayLike | None = None) -> None:
        """Set plane ``name`` in place where ``where`` is True (everywhere if None).

        Raises
        ------
        ObjectError
            If the plane is unknown, ``where`` has the wrong shape, or the array is read-only.
        """
        bit = np.int32(self.bitmask(name))
        self._check_writeable()
        self._forget_derivation()
        if where is None:
            self._array |= bit
        else:
            self._array[self._as_where(where)] |= bit

    def clear_plane(self, name: str, where: ArrayLike | None = None) -> None:
        """Clear plane ``name`` in place where ``where`` is True (everywhere if None).

        Raises
        ------
        ObjectError
            If the plane is unknown, ``where`` has the wrong shape, or the array is read-only.
        """
        keep = ~np.int32(self.bitmask(name))
        self._check_writeable()
        self._forget_derivation()
        if where is None:
            self._array &= keep
        else:
            self._array[self._as_where(where)] &= keep

    def add_plane(self, name: str) -> int:
        """Register plane ``name`` at the lowest free bit and return that bit.

        Adding a plane that exists returns its bit (idempotent).

        Raises
        ------
        ObjectError
            If the name is not a non-empty string, all 32 bits are taken, or the
            mask is read-only (one read from a store: its planes are part of its
            stored value) and the plane is new.
        """
        if not isinstance(name, str) or not name:
            raise ObjectError(f"mask plane names must be non-empty strings, got {name!r}")
        if name in self._planes:
            return self._planes[name]
        self._check_writeable()
        used = set(self._planes.values())
        for bit in range(_MAX_PLANES):
            if bit not in used:
                self._planes[name] = bit
                return bit
        raise ObjectError(f"cannot add mask plane {name!r}: all {_MAX_PLANES} bits are used")

    def with_plane(self, name: str, values: ArrayLike) -> Mask:
        """A new Mask (copied array) whose plane ``name`` equals the bool ``values``.

        The plane is added when unknown; other planes are unchanged.

        Raises
        ------
        ObjectError
            If ``values`` does not have this mask's shape.
        """
        values = self._as_where(values)
        new = self.copy()
        new.add_plane(name)
        bit = np.int32(new.bitmask(name))
        new._array &= ~bit
        np.bitwise_or(new._array, bit, out=new._array, where=values)
        # Record the derivation (self with plane ``name`` replaced), so that a store
        # can keep the base mask once and only the new plane.
        new._base = self
        new._replaced = (name,)
        return new

    @property
    def derivation(self) -> tuple[Mask, tuple[str, ...]] | None:
        """``(base, planes)`` when this mask is ``base`` with ``planes`` replaced, else None.

        Set by :meth:`with_plane`; dropped by any in-place change. A store checks
        it before relying on it.
        """
        return None if self._base is None else (self._base, self._replaced)

    def _forget_derivation(self) -> None:
        self._base = None
        self._replaced = ()

    def copy(self) -> Mask:
        """A deep copy: new array, same planes."""
        return Mask(self._array.copy(), self._planes)

    def subset(self, slices: tuple[slice, slice]) -> Mask:
        """A Mask over a view of part of this array; the plane mapping is copied."""
        return Mask(self._array[slices], self._planes)

    # -- helpers ----------------------------------------------------------------
    def _as_where(self, where: ArrayLike) -> np.ndarray:
        where = np.asarray(where, dtype=bool)
        if where.shape != self._array.shape:
            raise ObjectError(
                f"mask plane values have shape {where.shape}, the mask has {self._array.shape}"
            )
        return where

    def _check_writeable(self) -> None:
        if not self._array.flags.writeable:
            raise ObjectError("this Mask's array is read-only; edit a copy() or use with_plane()")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return self._planes == other._planes and np.array_equal(self._array, other._array)

    # Mutable pixels: hashing by value would break when a plane is set.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Mask(shape={self.shape}, planes={self._planes})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self._array, dtype=dtype)

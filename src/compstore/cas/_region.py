"""Regions: a tuple of slices over an array, as the box of chunks to read."""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

from compstore.cas._errors import InvalidRegionError

__all__ = ["Region", "normalize_region"]


class Region:
    """A region resolved against a shape.

    Attributes
    ----------
    lo, hi
        The bounding box ``[lo, hi)`` of the selected elements, per axis
        (``lo == hi`` on an axis selecting nothing).
    local
        Slices that select the region out of an array holding just that box
        (they apply the steps).
    """

    __slots__ = ("hi", "lo", "local")

    def __init__(self, lo: tuple[int, ...], hi: tuple[int, ...], local: tuple[slice, ...]):
        self.lo = lo
        self.hi = hi
        self.local = local

    @property
    def box_shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.lo, self.hi))

    @property
    def local_index(self) -> tuple[slice | EllipsisType, ...]:
        """``local`` plus a trailing ``...``: indexes a box into a view (0-d stays an array)."""
        return (*self.local, Ellipsis)


def normalize_region(region: Sequence[slice] | slice | None, shape: tuple[int, ...]) -> Region:
    """Resolve ``region`` (slices, fewer than ``ndim`` allowed) against ``shape``.

    Raises
    ------
    InvalidRegionError
        If ``region`` is not a slice or a tuple/list of slices, or has more
        entries than the array has axes.
    """
    if region is None:
        items: tuple[slice, ...] = ()
    elif isinstance(region, slice):
        items = (region,)
    elif isinstance(region, (tuple, list)) and all(isinstance(s, slice) for s in region):
        items = tuple(region)
    else:
        raise InvalidRegionError(f"a region is a tuple of slices, not {region!r}")
    if len(items) > len(shape):
        raise InvalidRegionError(
            f"region {items!r} has {len(items)} slices for an array of {len(shape)} axes"
        )
    items = items + (slice(None),) * (len(shape) - len(items))
    lo: list[int] = []
    hi: list[int] = []
    local: list[slice] = []
    for s, n in zip(items, shape):
        try:
            r = range(*s.indices(n))
        except (TypeError, ValueError) as exc:
            raise InvalidRegionError(f"bad slice {s!r} in region: {exc}") from exc
        if len(r) == 0:
            lo.append(0)
            hi.append(0)
            local.append(slice(0, 0))
            continue
        first, last = r[0], r[-1]
        a, b = min(first, last), max(first, last) + 1
        lo.append(a)
        hi.append(b)
        if r.step > 0:
            local.append(slice(first - a, last - a + 1, r.step))
        else:
            stop = last - a - 1
            local.append(slice(first - a, stop if stop >= 0 else None, r.step))
    return Region(tuple(lo), tuple(hi), tuple(local))

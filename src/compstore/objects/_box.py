"""Integer pixel boxes: the one way compstore names a rectangle of pixels."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from compstore.errors import ObjectError

__all__ = ["Box2I"]


def _as_int_pair(value: Any, what: str) -> tuple[int, int]:
    try:
        a, b = value
        # operator.index refuses floats such as 1.5, so a box never silently truncates.
        return operator.index(a), operator.index(b)
    except (TypeError, ValueError) as exc:
        raise ObjectError(f"Box2I {what} must be a pair of integers, got {value!r}") from exc


# No slots=True: on Python 3.11 a frozen slotted dataclass raises TypeError, not
# AttributeError, when a new attribute is set (CPython gh-90562). A plain instance
# also keeps __weakref__, which the identity cache needs.
@dataclass(frozen=True, init=False)
class Box2I:
    """An integer pixel box given by its minimum corner and its dimensions.

    Pixel ``(x, y)`` is inside when ``x0 <= x < x0 + width`` and
    ``y0 <= y < y0 + height``. A box with zero width or height is empty.

    Parameters
    ----------
    min : tuple of int
        ``(x0, y0)``, the minimum corner (inclusive).
    dimensions : tuple of int
        ``(width, height)``; both must be >= 0.

    Raises
    ------
    ObjectError
        If a corner or dimension is not an integer pair, or a dimension is negative.
    """

    x0: int
    y0: int
    width: int
    height: int

    def __init__(self, min: tuple[int, int] = (0, 0), dimensions: tuple[int, int] = (0, 0)):
        x0, y0 = _as_int_pair(min, "min")
        width, height = _as_int_pair(dimensions, "dimensions")
        if width < 0 or height < 0:
            raise ObjectError(f"Box2I dimensions must be >= 0, got {(width, height)}")
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "y0", y0)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)

    @classmethod
    def from_corners(cls, min: tuple[int, int], end: tuple[int, int]) -> Box2I:
        """Build a box from its minimum corner and exclusive maximum corner.

        Raises
        ------
        ObjectError
            If ``end`` is below ``min`` along an axis.
        """
        x0, y0 = _as_int_pair(min, "min")
        x1, y1 = _as_int_pair(end, "end")
        return cls((x0, y0), (x1 - x0, y1 - y0))

    @property
    def min(self) -> tuple[int, int]:
        """``(x0, y0)``, the minimum corner."""
        return (self.x0, self.y0)

    @property
    def dimensions(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the numpy shape of an array covering the box."""
        return (self.height, self.width)

    @property
    def end_x(self) -> int:
        """First column past the box (exclusive)."""
        return self.x0 + self.width

    @property
    def end_y(self) -> int:
        """First row past the box (exclusive)."""
        return self.y0 + self.height

    @property
    def area(self) -> int:
        """Number of pixels in the box."""
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        """True when the box holds no pixel."""
        return self.width == 0 or self.height == 0

    def contains(self, other: Box2I | tuple[int, int]) -> bool:
        """Whether a box or an ``(x, y)`` point lies inside this box.

        An empty box is contained in every box (as the empty set is).
        """
        if isinstance(other, Box2I):
            if other.is_empty:
                return True
            return (
                self.x0 <= other.x0
                and self.y0 <= other.y0
                and other.end_x <= self.end_x
                and other.end_y <= self.end_y
            )
        x, y = other
        return self.x0 <= x < self.end_x and self.y0 <= y < self.end_y

    def __contains__(self, other: Box2I | tuple[int, int]) -> bool:
        return self.contains(other)

    def intersection(self, other: Box2I) -> Box2I:
        """The overlap of two boxes; an empty box (at this box's corner) if none."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.end_x, other.end_x), min(self.end_y, other.end_y)
        if x1 <= x0 or y1 <= y0:
            # One canonical empty box, so that all empty intersections compare equal.
            return Box2I(self.min, (0, 0))
        return Box2I((x0, y0), (x1 - x0, y1 - y0))

    def overlaps(self, other: Box2I) -> bool:
        """Whether the two boxes share at least one pixel."""
        return not self.intersection(other).is_empty

    def shifted(self, dx: int, dy: int) -> Box2I:
        """The same box moved by ``(dx, dy)`` pixels."""
        return Box2I((self.x0 + dx, self.y0 + dy), self.dimensions)

    def slices(self, origin: tuple[int, int] = (0, 0)) -> tuple[slice, slice]:
        """``(slice_y, slice_x)`` selecting this box from an array whose pixel
        ``[0, 0]`` sits at ``origin`` (e.g. an Exposure's ``xy0``).

        Raises
        ------
        ObjectError
            If the box starts before ``origin`` (a negative index would wrap around).
        """
        ox, oy = _as_int_pair(origin, "origin")
        x0, y0 = self.x0 - ox, self.y0 - oy
        if x0 < 0 or y0 < 0:
            raise ObjectError(f"{self} starts before the array origin {(ox, oy)}")
        return (slice(y0, y0 + self.height), slice(x0, x0 + self.width))

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form: ``{"min": [x0, y0], "dimensions": [w, h]}``."""
        return {"min": [self.x0, self.y0], "dimensions": [self.width, self.height]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Box2I:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ObjectError
            If keys are missing or values are not integers.
        """
        try:
            return cls(tuple(data["min"]), tuple(data["dimensions"]))
        except (KeyError, TypeError) as exc:
            raise ObjectError(f"not a Box2I dict: {data!r}") from exc

    def __repr__(self) -> str:
        return f"Box2I(({self.x0}, {self.y0}), ({self.width}, {self.height}))"

"""Background: a coarse grid of sky levels, interpolated bilinearly to full resolution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

from ._box import Box2I
from ._frozen import Immutable, finite_grid

if TYPE_CHECKING:  # a runtime import would be circular: _image imports this module
    from ._image import Exposure

__all__ = ["Background"]


def _axis_weights(coords: np.ndarray, start: int, length: int, cells: int) -> tuple[Any, ...]:
    """Lower grid index, upper grid index and upper weight for pixel ``coords`` on one axis.

    Cell ``i`` covers pixels ``[start + i * length / cells, start + (i + 1) * length / cells)``
    and its value sits at the cell centre; beyond the outermost centres the edge value is
    held constant, never extrapolated (a sky level should not run away at the borders).
    """
    # Position in grid-index units: 0 at the first cell centre, cells - 1 at the last.
    u = (coords - start + 0.5) * (cells / length) - 0.5
    u = np.clip(u, 0.0, cells - 1.0)
    lo = np.minimum(np.floor(u).astype(np.intp), max(cells - 2, 0))
    hi = np.minimum(lo + 1, cells - 1)
    return lo, hi, u - lo


class Background(Immutable):
    """A sky background model over ``bbox``: a low-resolution grid of sky levels.

    Parameters
    ----------
    grid : array_like
        2-D finite values, shape ``(ny, nx)``; cell centres are spread evenly over
        ``bbox`` (``nx`` cells across its width, ``ny`` down its height).
    bbox : Box2I
        The parent-coordinate pixels the model covers.

    Raises
    ------
    ObjectError
        If the grid is not 2-D finite data, the bbox is empty, or the grid has more
        cells than the bbox has pixels along an axis.

    Notes
    -----
    Interpolation is bilinear between cell centres (numpy only), constant beyond the
    outermost centres. Immutable; equality and hash by value.
    """

    __slots__ = ("_grid", "_bbox", "_hash", "__weakref__")
    _grid: np.ndarray
    _bbox: Box2I
    _hash: int

    def __init__(self, grid: ArrayLike, bbox: Box2I) -> None:
        arr = finite_grid(grid, "Background grid")  # a private copy, made read-only below
        if not isinstance(bbox, Box2I) or bbox.is_empty:
            raise ObjectError(f"Background needs a non-empty Box2I, got {bbox!r}")
        if arr.shape[0] > bbox.height or arr.shape[1] > bbox.width:
            raise ObjectError(f"Background grid {arr.shape} has more cells than {bbox} has pixels")
        arr += 0.0  # folds -0.0 so that equal backgrounds give equal dicts
        arr.flags.writeable = False
        object.__setattr__(self, "_grid", arr)
        object.__setattr__(self, "_bbox", bbox)
        object.__setattr__(self, "_hash", hash((bbox, arr.shape, arr.tobytes())))

    @property
    def grid(self) -> np.ndarray:
        """The read-only float64 grid of sky levels."""
        return self._grid

    @property
    def bbox(self) -> Box2I:
        """The parent-coordinate pixels the model covers."""
        return self._bbox

    def evaluate(self, bbox: Box2I | None = None) -> np.ndarray:
        """The sky level of every pixel of ``bbox`` (default: the whole model bbox).

        Each pixel's value depends only on its own coordinates, so evaluating a sub-box
        gives exactly the corresponding slice of the full evaluation.

        Returns
        -------
        numpy.ndarray
            float32, shape ``(bbox.height, bbox.width)``.

        Raises
        ------
        ObjectError
            If ``bbox`` is not inside the model's bbox.
        """
        box = self._bbox if bbox is None else bbox
        if not isinstance(box, Box2I) or not self._bbox.contains(box):
            raise ObjectError(f"{box!r} is not inside the background's {self._bbox}")
        ny, nx = self._grid.shape
        xs = np.arange(box.x0, box.end_x, dtype=np.float64)
        ys = np.arange(box.y0, box.end_y, dtype=np.float64)
        x_lo, x_hi, fx = _axis_weights(xs, self._bbox.x0, self._bbox.width, nx)
        y_lo, y_hi, fy = _axis_weights(ys, self._bbox.y0, self._bbox.height, ny)
        # Separable bilinear interpolation, elementwise (no BLAS, whose summation order
        # could differ between box sizes and break sub-box consistency).
        rows = self._grid[:, x_lo] * (1.0 - fx) + self._grid[:, x_hi] * fx
        out = rows[y_lo, :] * (1.0 - fy)[:, None] + rows[y_hi, :] * fy[:, None]
        result: np.ndarray = out.astype(np.float32)
        return result

    def subtract_from(self, exposure: Exposure) -> Exposure:
        """A new Exposure: image minus this background, with ``background`` set to it.

        The result's ``image_base`` is the input's image (shared, not copied).

        Every other component of ``exposure`` is shared, not copied.

        Raises
        ------
        ObjectError
            If the exposure's bbox is not inside the background's bbox.
        """
        sky = self.evaluate(exposure.bbox)
        result = exposure.replace(image=exposure.image - sky, background=self)
        # Record the lineage so a store can keep the un-subtracted pixels once and
        # recompute these (bit for bit: the same float32 operation) on read.
        object.__setattr__(result, "_image_base", exposure.image)
        return result

    def add_to(self, exposure: Exposure) -> Exposure:
        """A new Exposure: image plus this background, ``background`` set to None
        (the sky is back in the pixels, so no subtracted model remains).

        Raises
        ------
        ObjectError
            If the exposure's bbox is not inside the background's bbox.
        """
        sky = self.evaluate(exposure.bbox)
        return exposure.replace(image=exposure.image + sky, background=None)

    def to_dict(self) -> dict[str, Any]:
        """``{"grid": [[float, ...], ...], "bbox": Box2I dict}`` (exact floats)."""
        return {"grid": self._grid.tolist(), "bbox": self._bbox.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Background:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ObjectError
            If keys are missing or values are invalid.
        """
        try:
            return cls(data["grid"], Box2I.from_dict(data["bbox"]))
        except (KeyError, TypeError) as exc:
            raise ObjectError(f"not a Background dict: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Background):
            return NotImplemented
        return (
            self._hash == other._hash
            and self._bbox == other._bbox
            and np.array_equal(self._grid, other._grid)
        )

    def __hash__(self) -> int:
        return self._hash

    def __copy__(self) -> Background:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Background:
        return self

    def __repr__(self) -> str:
        return f"Background(grid shape={self._grid.shape}, bbox={self._bbox!r})"

"""Astropy's shared WCS interface (APE 14) for :class:`~compstore.objects.Wcs`.

APE 14 splits a WCS into a low-level part (plain numbers: ``pixel_to_world_values``,
``world_to_pixel_values``, axis descriptions) and a high-level part built on it
(``pixel_to_world`` returning `~astropy.coordinates.SkyCoord`, ``world_to_pixel``
taking one). Code written against that interface (``astropy.wcs.utils.pixel_to_pixel``,
``astropy.wcs.wcsapi.SlicedLowLevelWCS``, WCSAxes, reproject) then works on a Wcs.

The axis descriptions are astropy's own for the wrapped WCS (its ``FITSWCSAPIMixin``),
so frames, units and physical types are exactly what astropy would say. Only the
numeric transforms are compstore's: world to pixel inverts SIP to 1e-11 pixel
(astropy's default tolerance is 1e-4 pixel), and pixel axes past the first two may be
left out (they are then 0: for an Exposure read from a cube, the plane that was read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.wcs import WCS, NoConvergence
from astropy.wcs.wcsapi import BaseLowLevelWCS, HighLevelWCSMixin
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

__all__ = ["WcsApiMixin"]

# Tolerance (pixels) of the iterative inversion of SIP distortion; astropy's default of
# 1e-4 pixel is far too loose for round trips (the same figures as Wcs.sky_to_pixel).
_INVERSE_TOLERANCE = 1e-11
_INVERSE_MAXITER = 100


def _unwrap(values: np.ndarray) -> Any:
    return float(values) if values.ndim == 0 else values


class WcsApiMixin(BaseLowLevelWCS, HighLevelWCSMixin):
    """APE 14 low- and high-level WCS methods over ``self._astropy()``.

    A Wcs is its own ``low_level_wcs``; every description is the wrapped astropy
    WCS's. Pixel coordinates are 0-based, parent pixels (as everywhere in a Wcs).
    """

    __slots__ = ()

    def _astropy(self) -> WCS:  # pragma: no cover - provided by Wcs
        raise NotImplementedError

    # -- descriptions (astropy's own) ---------------------------------------------
    @property
    def pixel_n_dim(self) -> int:
        """Number of pixel axes."""
        return int(self._astropy().pixel_n_dim)

    @property
    def world_n_dim(self) -> int:
        """Number of world axes."""
        return int(self._astropy().world_n_dim)

    @property
    def world_axis_physical_types(self) -> list[Any]:
        """UCD1+ physical type of each world axis (``"pos.eq.ra"``, ``"em.freq"``)."""
        return list(self._astropy().world_axis_physical_types)

    @property
    def world_axis_units(self) -> list[str]:
        """Unit of each world axis, as astropy writes it (``"deg"``)."""
        return list(self._astropy().world_axis_units)

    @property
    def world_axis_names(self) -> list[str]:
        """Name of each world axis (FITS ``CNAMEi``; often empty)."""
        return list(self._astropy().world_axis_names)

    @property
    def pixel_axis_names(self) -> list[str]:
        """Name of each pixel axis (empty: FITS has none)."""
        return list(self._astropy().pixel_axis_names)

    @property
    def axis_correlation_matrix(self) -> np.ndarray:
        """Which world axes depend on which pixel axes (``world_n_dim x pixel_n_dim`` bools)."""
        return np.asarray(self._astropy().axis_correlation_matrix)

    @property
    def world_axis_object_components(self) -> list[tuple[str, Any, str]]:
        """How the world values make high-level objects (see APE 14)."""
        return list(self._astropy().world_axis_object_components)

    @property
    def world_axis_object_classes(self) -> dict[str, Any]:
        """The high-level classes (`SkyCoord`, `SpectralCoord`, ...) and their frames."""
        return dict(self._astropy().world_axis_object_classes)

    @property
    def serialized_classes(self) -> bool:
        """False: the classes above are real classes, not strings."""
        return False

    @property
    def pixel_shape(self) -> tuple[int, ...] | None:
        """None: a Wcs maps parent pixels and holds no image size."""
        return None

    @property
    def array_shape(self) -> tuple[int, ...] | None:
        """None: a Wcs holds no image size (an Exposure has ``shape``)."""
        return None

    @property
    def pixel_bounds(self) -> None:
        """None: a Wcs has no bounds of validity."""
        return None

    @property
    def low_level_wcs(self) -> WcsApiMixin:
        """This Wcs itself (it is both the low- and the high-level object of APE 14)."""
        return self

    # -- transforms --------------------------------------------------------------------
    def _pixel_matrix(self, pixel_arrays: tuple[ArrayLike, ...]) -> tuple[tuple[int, ...], np.ndarray]:
        n = self._astropy().pixel_n_dim
        if not 1 <= len(pixel_arrays) <= n:
            raise ObjectError(f"this Wcs has {n} pixel axes; got {len(pixel_arrays)} pixel arrays")
        arrays = np.broadcast_arrays(*(np.asarray(p, dtype=float) for p in pixel_arrays))
        shape = arrays[0].shape
        # Pixel axes not given are 0: the plane of a cube that an Exposure holds.
        matrix = np.zeros((arrays[0].size, n))
        for i, a in enumerate(arrays):
            matrix[:, i] = a.ravel()
        return shape, matrix

    def pixel_to_world_values(self, *pixel_arrays: ArrayLike) -> Any:
        """World values (each in its axis's unit, degrees for the sky) at 0-based pixels.

        Parameters
        ----------
        *pixel_arrays : float or array_like
            One per pixel axis, broadcast together; pixel axes past those given are 0
            (for a plane of a cube: the plane that was read).

        Returns
        -------
        float, numpy.ndarray or tuple of them
            One per world axis (a single value when there is one world axis); floats
            for scalar input.

        Raises
        ------
        ObjectError
            If more arrays than pixel axes are given or astropy cannot transform them.
        """
        shape, pixels = self._pixel_matrix(pixel_arrays)
        try:
            world = self._astropy().all_pix2world(pixels, 0)
        except Exception as exc:  # wcslib raises its own error classes
            raise ObjectError(f"pixel_to_world failed: {exc}") from exc
        out = tuple(_unwrap(world[:, i].reshape(shape)) for i in range(world.shape[1]))
        return out[0] if len(out) == 1 else out

    def world_to_pixel_values(self, *world_arrays: ArrayLike) -> Any:
        """0-based pixel coordinates of world values (each in its axis's unit).

        Distortion (SIP) is inverted iteratively to 1e-11 pixel; positions where that
        diverges come back as NaN.

        Returns
        -------
        float, numpy.ndarray or tuple of them
            One per pixel axis (a single value when there is one).

        Raises
        ------
        ObjectError
            If the number of arrays is not the number of world axes, or astropy
            cannot transform them.
        """
        wcs = self._astropy()
        n = wcs.world_n_dim
        if len(world_arrays) != n:
            raise ObjectError(f"this Wcs has {n} world axes; got {len(world_arrays)} world arrays")
        arrays = np.broadcast_arrays(*(np.asarray(w, dtype=float) for w in world_arrays))
        shape = arrays[0].shape
        world = np.stack([a.ravel() for a in arrays], axis=1)
        try:
            pixels = wcs.all_world2pix(
                world, 0, tolerance=_INVERSE_TOLERANCE, maxiter=_INVERSE_MAXITER, quiet=False
            )
        except NoConvergence as exc:
            pixels = np.array(exc.best_solution, dtype=float)
            if exc.divergent is not None:
                pixels[exc.divergent] = np.nan
        except Exception as exc:  # wcslib raises its own error classes
            raise ObjectError(f"world_to_pixel failed: {exc}") from exc
        pixels = np.asarray(pixels, dtype=float).reshape(-1, wcs.pixel_n_dim)
        out = tuple(_unwrap(pixels[:, i].reshape(shape)) for i in range(pixels.shape[1]))
        return out[0] if len(out) == 1 else out

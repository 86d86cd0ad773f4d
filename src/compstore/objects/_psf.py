"""Point-spread functions: the abstract Psf and two spatially constant models."""

from __future__ import annotations

import abc
import math
import operator
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

from ._frozen import Immutable, finite_grid

__all__ = ["GaussianPsf", "ImagePsf", "Psf"]


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _moment_sigma(kernel: np.ndarray) -> float:
    """sqrt of the mean of the second central moments of a normalized kernel."""
    ny, nx = kernel.shape
    y, x = np.mgrid[0:ny, 0:nx]
    cx, cy = float((kernel * x).sum()), float((kernel * y).sum())
    ixx = float((kernel * (x - cx) ** 2).sum())
    iyy = float((kernel * (y - cy) ** 2).sum())
    return math.sqrt(max((ixx + iyy) / 2.0, 0.0))


class Psf(Immutable, abc.ABC):
    """A point-spread function: the normalized image of a point source.

    Subclasses are immutable value types, register a ``type`` name for
    :meth:`Psf.from_dict`, and implement :meth:`compute_image`, :attr:`sigma` and
    :meth:`to_dict`.
    """

    __slots__ = ("__weakref__",)

    #: name in ``to_dict()["type"]``; subclasses set it.
    type_name: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[Psf]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type_name:
            Psf._registry[cls.type_name] = cls

    @abc.abstractmethod
    def compute_image(self, position: tuple[float, float] | None = None) -> np.ndarray:
        """The PSF image at ``position`` (parent pixels), a read-only float64 array
        summing to 1 with the centre at the middle pixel."""

    @property
    @abc.abstractmethod
    def sigma(self) -> float:
        """Gaussian-equivalent width in pixels."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form, with a ``"type"`` key."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Psf:
        """Rebuild any Psf from :meth:`to_dict`, dispatching on ``data["type"]``.

        Raises
        ------
        ObjectError
            If the type is unknown or the values are invalid.
        """
        try:
            kind = data["type"]
        except (KeyError, TypeError):
            raise ObjectError(f"a Psf dict needs a 'type' key, got {data!r}") from None
        target = Psf._registry.get(kind)
        if target is None:
            known = ", ".join(sorted(Psf._registry))
            raise ObjectError(f"unknown Psf type {kind!r}; known: {known}")
        if cls is not Psf and not issubclass(target, cls):
            raise ObjectError(f"{cls.__name__}.from_dict got a {kind!r} Psf")
        return target._from_dict(data)

    @classmethod
    @abc.abstractmethod
    def _from_dict(cls, data: dict[str, Any]) -> Psf: ...

    def __copy__(self) -> Psf:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Psf:
        return self


class GaussianPsf(Psf):
    """A circular Gaussian PSF sampled at pixel centres on a ``size`` x ``size`` grid.

    Parameters
    ----------
    sigma : float
        Gaussian sigma in pixels, > 0.
    size : int
        Width and height of the kernel image; odd and >= 1 so there is a centre pixel.

    Raises
    ------
    ObjectError
        If ``sigma`` is not a finite positive number or ``size`` is not a positive odd int.
    """

    __slots__ = ("_sigma", "_size", "_image")
    _sigma: float
    _size: int
    _image: np.ndarray | None  # the kernel, computed on first use
    type_name = "gaussian"

    def __init__(self, sigma: float, size: int = 25) -> None:
        try:
            sigma = float(sigma)
            size = operator.index(size)
        except (TypeError, ValueError) as exc:
            raise ObjectError(f"GaussianPsf needs a float sigma and an int size: {exc}") from exc
        if not (math.isfinite(sigma) and sigma > 0):
            raise ObjectError(f"GaussianPsf sigma must be finite and > 0, got {sigma}")
        if size < 1 or size % 2 == 0:
            raise ObjectError(f"GaussianPsf size must be a positive odd integer, got {size}")
        object.__setattr__(self, "_sigma", sigma)
        object.__setattr__(self, "_size", size)
        # Built on first use: a Psf read from a store is often only carried along.
        object.__setattr__(self, "_image", None)

    @property
    def sigma(self) -> float:
        """The Gaussian sigma in pixels (the model parameter, not the truncated moment)."""
        return self._sigma

    @property
    def size(self) -> int:
        """Kernel width and height in pixels."""
        return self._size

    def compute_image(self, position: tuple[float, float] | None = None) -> np.ndarray:
        """The normalized kernel; the same everywhere, so ``position`` is ignored."""
        image = self._image
        if image is None:
            half = self._size // 2
            r = np.arange(-half, half + 1, dtype=float)
            profile = np.exp(-0.5 * (r / self._sigma) ** 2)
            kernel = np.outer(profile, profile)
            image = _readonly(kernel / kernel.sum())
            # Two threads may both compute it; the results are equal, so no lock.
            object.__setattr__(self, "_image", image)
        return image

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "gaussian", "sigma": float, "size": int}``."""
        return {"type": self.type_name, "sigma": self._sigma, "size": self._size}

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> GaussianPsf:
        try:
            return cls(data["sigma"], data["size"])
        except KeyError as exc:
            raise ObjectError(f"a gaussian Psf dict lacks {exc}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GaussianPsf):
            return NotImplemented
        return (self._sigma, self._size) == (other._sigma, other._size)

    def __hash__(self) -> int:
        return hash((self.type_name, self._sigma, self._size))

    def __repr__(self) -> str:
        return f"GaussianPsf(sigma={self._sigma!r}, size={self._size})"


class ImagePsf(Psf):
    """A PSF given by a kernel image, the same over the whole exposure.

    Parameters
    ----------
    kernel : array_like
        2-D finite real values with a positive sum; stored as a normalized (sum 1),
        read-only float64 copy.

    Raises
    ------
    ObjectError
        If the kernel is not 2-D, not finite, empty or does not have a positive sum.
    """

    __slots__ = ("_kernel", "_hash")
    _kernel: np.ndarray
    _hash: int
    type_name = "image"

    def __init__(self, kernel: ArrayLike) -> None:
        arr = finite_grid(kernel, "ImagePsf kernel")
        total = float(arr.sum())
        if not total > 0:
            raise ObjectError(f"ImagePsf kernel must have a positive sum, got {total}")
        self._set_kernel(arr / total)

    def _set_kernel(self, arr: np.ndarray) -> None:
        arr += 0.0  # folds -0.0 into 0.0: equal kernels must give equal dicts
        object.__setattr__(self, "_kernel", _readonly(arr))
        object.__setattr__(self, "_hash", hash((arr.shape, arr.tobytes())))

    @property
    def kernel(self) -> np.ndarray:
        """The normalized, read-only kernel."""
        return self._kernel

    @property
    def sigma(self) -> float:
        """sqrt((Ixx + Iyy) / 2) of the kernel's second central moments, in pixels."""
        return _moment_sigma(self._kernel)

    def compute_image(self, position: tuple[float, float] | None = None) -> np.ndarray:
        """The normalized kernel; the same everywhere, so ``position`` is ignored."""
        return self._kernel

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "image", "kernel": [[float, ...], ...]}`` (exact floats)."""
        return {"type": self.type_name, "kernel": self._kernel.tolist()}

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ImagePsf:
        try:
            arr = finite_grid(data["kernel"], "ImagePsf kernel")
        except KeyError as exc:
            raise ObjectError(f"an image Psf dict lacks {exc}") from None
        # The stored kernel is normalized already; dividing again by its sum (1 +- an ulp)
        # would change its bits and break the round trip, so only check it.
        if not math.isclose(float(arr.sum()), 1.0, rel_tol=1e-9):
            raise ObjectError(f"an image Psf dict's kernel sums to {arr.sum()}, not 1")
        psf = object.__new__(cls)
        psf._set_kernel(arr)
        return psf

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImagePsf):
            return NotImplemented
        return self._hash == other._hash and np.array_equal(self._kernel, other._kernel)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ImagePsf(shape={self._kernel.shape}, sigma={self.sigma:.4g})"

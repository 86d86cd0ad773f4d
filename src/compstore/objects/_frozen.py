"""Plumbing shared by compstore's value objects: the immutability guard and two input checks."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

import numpy as np
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

__all__ = ["Immutable", "check_optional", "finite_grid"]


class Immutable:
    """Base of values whose attributes are set once, in ``__init__``, with ``object.__setattr__``.

    Setting or deleting an attribute afterwards raises ``AttributeError``,
    which names the class and ``_how_to_change`` says how to get a changed value.
    """

    __slots__ = ()
    _how_to_change: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable{self._how_to_change}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable{self._how_to_change}")


def check_optional(value: Any, cls: type, name: str) -> Any:
    """Return ``value`` if it is None or a ``cls``; else raise `ObjectError` naming ``name``."""
    if value is not None and not isinstance(value, cls):
        raise ObjectError(f"{name} must be a {cls.__name__} or None, got {type(value).__name__}")
    return value


def finite_grid(values: ArrayLike, what: str) -> np.ndarray:
    """A private float64 copy of ``values``, checked to be a non-empty 2-D grid of finite numbers.

    Raises
    ------
    ObjectError
        Naming ``what`` ("Background grid", "ImagePsf kernel") and the problem.
    """
    try:
        arr = np.array(values, dtype=np.float64)  # always a copy: the caller keeps theirs
    except (TypeError, ValueError) as exc:
        raise ObjectError(f"{what} must be numeric: {exc}") from exc
    if arr.ndim != 2 or arr.size == 0:
        raise ObjectError(f"{what} must be a non-empty 2-D array, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ObjectError(f"{what} has NaN or infinite values")
    return arr

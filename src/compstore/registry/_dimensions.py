"""Dimension value types and the checks that turn user data IDs into stored ones."""

from __future__ import annotations

import numbers
import re
from typing import Literal

from compstore.errors import DataIdError

from ._types import DataIdValue

__all__ = [
    "BUILTIN_DIMENSIONS",
    "INT64_MAX",
    "INT64_MIN",
    "ValueType",
    "coerce_value",
    "infer_value_type",
]

ValueType = Literal["int", "str"]

#: The dimensions every repository knows from the start, with their value types.
BUILTIN_DIMENSIONS: dict[str, ValueType] = {
    "visit": "int",
    "detector": "int",
    "tract": "int",
    "patch": "int",
    "exposure": "int",
    "band": "str",
    "physical_filter": "str",
    "instrument": "str",
    "skymap": "str",
}

# SQL integers are 64-bit; a larger Python int would fail deep inside the driver.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_DIGITS = re.compile(r"-?[0-9]+")


def _is_int(value: object) -> bool:
    # bool is an Integral, but True as a detector number is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def infer_value_type(dimension: str, value: object) -> ValueType:
    """Choose the value type of a new dimension from its first value.

    Raises
    ------
    DataIdError
        If ``value`` is neither an integer nor a string.
    """
    if _is_int(value):
        return "int"
    if isinstance(value, str):
        return "str"
    raise DataIdError(
        f"cannot use {value!r} ({type(value).__name__}) as the value of new dimension "
        f"{dimension!r}: data ID values are integers or strings"
    )


def coerce_value(dimension: str, value_type: ValueType, value: object) -> DataIdValue:
    """Return ``value`` as the plain Python value stored for ``dimension``.

    Integers given as numpy integers or as digit strings are accepted for an
    integer dimension (they come from command lines and array columns);
    nothing else is converted.

    Raises
    ------
    DataIdError
        If the value has the wrong type or does not fit a 64-bit integer.
    """
    if value_type == "int":
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return value  # the common case, without the slow ABC check below
        if _is_int(value):
            number: int = int(value)  # type: ignore[call-overload]
        elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
            number = int(value)
        else:
            raise DataIdError(
                f"dimension {dimension!r} takes integers, got {value!r} ({type(value).__name__})"
            )
        if not INT64_MIN <= number <= INT64_MAX:
            raise DataIdError(f"value {number} of dimension {dimension!r} does not fit 64 bits")
        return number
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)  # numpy.str_ -> str, so values round-trip as plain str
    raise DataIdError(
        f"dimension {dimension!r} takes strings, got {value!r} ({type(value).__name__})"
    )

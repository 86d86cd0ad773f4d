"""Dimension value types and the checks that turn user data IDs into stored ones."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
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
    "check_data_id_keys",
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
            number = int(value)  # type: ignore[call-overload]
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


def check_data_id_keys(
    dataset_type: str,
    dimensions: Sequence[str],
    data_id: Mapping[str, object],
    *,
    partial: bool = False,
    optional: Sequence[str] = (),
) -> None:
    """Check that ``data_id`` has exactly the dimensions of a dataset type.

    Parameters
    ----------
    dataset_type : `str`
        The dataset type name, for messages.
    dimensions : sequence of `str`
        The dimensions the dataset type expects.
    data_id : mapping
        The data ID given by the user.
    partial : `bool`, optional
        If true, missing dimensions are allowed (extra ones are not).
    optional : sequence of `str`, optional
        Dimensions that may be missing even when not ``partial``.

    Raises
    ------
    DataIdError
        If a dimension is missing (unless ``partial``) or extra, naming them and
        the dimensions the dataset type expects.
    """
    given = set(data_id)
    expected = set(dimensions)
    missing = [d for d in dimensions if d not in given and d not in optional]
    extra = sorted(given - expected, key=str)
    if (missing and not partial) or extra:
        parts = []
        if missing and not partial:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"extra {', '.join(map(str, extra))}")
        raise DataIdError(
            f"data ID {dict(data_id)!r} does not fit dataset type {dataset_type!r}: "
            f"{'; '.join(parts)} (it expects {', '.join(dimensions) or 'no dimensions'})"
        )

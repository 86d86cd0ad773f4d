"""Leaf storage classes: the value types stored as one canonical JSON document each."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import objects
from ..errors import EncodingError
from ._base import DocumentStorageClass

__all__ = [
    "BackgroundStorageClass",
    "Box2IStorageClass",
    "CalibStorageClass",
    "MetadataStorageClass",
    "PsfStorageClass",
    "VisitInfoStorageClass",
    "WcsStorageClass",
]


class _DictValueStorageClass(DocumentStorageClass):
    """A value type with ``to_dict()`` / ``from_dict()`` (the object model's canonical form)."""

    def to_json(self, obj: Any) -> Any:
        self.check_type(obj)
        return obj.to_dict()

    def from_json(self, value: Any) -> Any:
        return self.python_type.from_dict(value)  # type: ignore[union-attr]


class WcsStorageClass(_DictValueStorageClass):
    name = "Wcs"
    python_type = objects.Wcs


class CalibStorageClass(_DictValueStorageClass):
    name = "Calib"
    python_type = objects.Calib


class PsfStorageClass(_DictValueStorageClass):
    name = "Psf"
    python_type = objects.Psf  # Psf.from_dict dispatches on the document's "type"


class BackgroundStorageClass(_DictValueStorageClass):
    name = "Background"
    python_type = objects.Background


class VisitInfoStorageClass(_DictValueStorageClass):
    name = "VisitInfo"
    python_type = objects.VisitInfo


class Box2IStorageClass(_DictValueStorageClass):
    name = "Box2I"
    python_type = objects.Box2I


_SCALARS = (str, int, float, bool)


_EXACT_INT = 2**53 - 1  # the largest integer every JSON reader holds exactly


def _typed(pair: list[Any]) -> Any:
    """The value of a Metadata pair, or of a [key, text, type] triple (format 3)."""
    if len(pair) == 3:
        convert = {"float": float, "int": int}.get(pair[2])
        if convert is None or not isinstance(pair[1], str):
            raise EncodingError(f"metadata entry {pair!r:.100} is neither a pair nor a typed triple")
        return convert(pair[1])
    return pair[1]


class MetadataStorageClass(DocumentStorageClass):
    """A header-like mapping of str -> str/int/float/bool/None.

    Read back as a read-only mapping. The order of keys is kept (FITS headers
    are ordered), so it is stored as a list of pairs, not a JSON object.
    """

    name = "Metadata"
    python_type = Mapping

    def to_json(self, obj: Any) -> Any:
        self.check_type(obj)
        pairs = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise EncodingError(f"metadata key {key!r} is not a string; use str keys")
            if value is not None and not isinstance(value, _SCALARS):
                # numpy scalars are fine once made plain Python values
                item = getattr(value, "item", None)
                value = item() if callable(item) else value
                if not isinstance(value, _SCALARS):
                    raise EncodingError(
                        f"metadata value for {key!r} has type {type(value).__name__}; "
                        "metadata holds str, int, float, bool or None only"
                    )
            if isinstance(value, float) and not math.isfinite(value):
                raise EncodingError(
                    f"metadata value for {key!r} is {value}; store non-finite values as strings"
                )
            pairs.append([key, value])
        return pairs

    def to_json_exact(self, obj: Any) -> Any:
        # A float RFC 8785 would write as an integer (30.0 -> 30, -0.0 -> 0) is
        # written as [key, repr, "float"], so that it reads back as that float; an
        # integer a JSON number cannot hold exactly (beyond 2**53 - 1, as FITS
        # headers may have) as [key, digits, "int"].
        return [
            [key, repr(value), "float"]
            if type(value) is float and (value.is_integer() or value == 0)
            else [key, str(value), "int"]
            if type(value) is int and abs(value) > _EXACT_INT
            else [key, value]
            for key, value in self.to_json(obj)
        ]

    def from_json(self, value: Any) -> Any:
        return MappingProxyType({p[0]: _typed(p) for p in value})

"""How one table column becomes plain numeric arrays and comes back.

The blob store holds zarr v3 core data types only (bool, int, uint, float,
complex). Columns of other kinds are stored as such arrays plus a few words
in the manifest's column description (its ``"encoding"``), so every value a
real catalog holds round-trips exactly and each array stays readable by
stock zarr:

========================  ===========  ==========================================
column                    encoding     arrays (component keys)
========================  ===========  ==========================================
numeric / bool            (none)       ``col:i``
fixed-width unicode ``U``  ``utf32``    ``col:i``: uint32 code points, shape (n, width)
fixed-width bytes ``S``    ``bytes``    ``col:i``: uint8, shape (n, width)
variable-width str        ``vlen-utf8``  ``col:i``: uint8 UTF-8 of all values,
                                       ``offsets:i``: int64, n + 1 offsets
astropy ``Time``          ``time``     ``col:i``: jd1, ``jd2:i``: jd2 (float64)
``Quantity`` (QTable)     ``quantity`` ``col:i``: the values; unit in the description
========================  ===========  ==========================================

A masked column adds ``mask:i`` (bool) whatever its encoding. A column with no
``"encoding"`` key is numeric, so manifests written before encodings existed
read unchanged (and numeric columns keep their digests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn
from astropy.time import Time
from astropy.utils.masked import Masked

from ..errors import CorruptBlobError, EncodingError

__all__ = ["decode_column", "encode_column"]

# Time attributes that fully describe how the values are shown; the values are jd1 + jd2.
_TIME_KEYS = ("format", "scale", "precision", "in_subfmt", "out_subfmt")


def column_key(index: int) -> str:
    return f"col:{index}"


def mask_key(index: int) -> str:
    return f"mask:{index}"


def _offsets_key(index: int) -> str:
    return f"offsets:{index}"


def _jd2_key(index: int) -> str:
    return f"jd2:{index}"


def encode_column(
    name: str, column: Any, index: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split one table column into arrays and the description words that undo it.

    Returns
    -------
    arrays : dict
        Component key -> numeric array.
    described : dict
        Extra keys for the column's manifest description (``encoding`` and what
        it needs); empty for a plain numeric column.

    Raises
    ------
    EncodingError
        For a column no encoding holds (a SkyCoord, an object column of mixed
        types), naming the column and how to convert it.
    """
    if isinstance(column, Time):
        return _encode_time(name, column, index)
    arrays: dict[str, np.ndarray]
    if isinstance(column, u.Quantity):
        if isinstance(column, Masked):
            arrays = {
                column_key(index): np.asarray(column.unmasked.value),
                mask_key(index): np.asarray(column.mask, dtype=bool),
            }
        else:
            arrays = {column_key(index): np.asarray(column.value)}
        return arrays, {"encoding": "quantity", "unit": _unit_text(column.unit)}
    if not isinstance(column, Column):
        raise EncodingError(
            f"table column {name!r} is a {type(column).__name__}; compstore stores plain, "
            "masked, string, Time and Quantity columns (convert others, e.g. a SkyCoord to "
            "ra and dec columns)"
        )
    arrays = {}
    if isinstance(column, MaskedColumn):
        arrays[mask_key(index)] = np.ma.getmaskarray(column)
        data = np.asarray(column.data.data)
    else:
        data = np.asarray(column)
    described: dict[str, Any] = {}
    kind = data.dtype.kind
    if kind == "U":
        width = data.dtype.itemsize // 4
        codes = np.ascontiguousarray(data.astype(f"<U{width}")).view("<u4")
        arrays[column_key(index)] = codes.reshape(*data.shape, width)
        described = {"encoding": "utf32", "width": width}
    elif kind == "S":
        width = data.dtype.itemsize
        raw = np.ascontiguousarray(data).view("u1")
        arrays[column_key(index)] = raw.reshape(*data.shape, width)
        described = {"encoding": "bytes", "width": width}
    elif kind == "O":
        values, offsets = _encode_vlen(name, data)
        arrays[column_key(index)] = values
        arrays[_offsets_key(index)] = offsets
        described = {"encoding": "vlen-utf8", "shape": list(data.shape)}
    else:
        arrays[column_key(index)] = data
    return arrays, described


def _encode_vlen(name: str, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = data.reshape(-1)
    encoded = []
    for value in flat:
        if not isinstance(value, str):
            raise EncodingError(
                f"table column {name!r} has object dtype holding a {type(value).__name__}; "
                "compstore stores object columns only when every value is a str"
            )
        encoded.append(value.encode("utf-8", "surrogatepass"))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    values = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return values, offsets


def _encode_time(
    name: str, column: Time, index: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if column.location is not None:
        raise EncodingError(
            f"Time column {name!r} has a location; compstore does not store Time locations "
            "(store the location's coordinates as columns and drop it from the Time)"
        )
    arrays = {
        column_key(index): np.asarray(column.jd1, dtype=np.float64),
        _jd2_key(index): np.asarray(column.jd2, dtype=np.float64),
    }
    if column.masked:
        arrays[mask_key(index)] = np.ma.getmaskarray(column.mask)
    described = {"encoding": "time", "time": {key: getattr(column, key) for key in _TIME_KEYS}}
    return arrays, described


def _unit_text(unit: Any) -> str:
    text: str = u.Unit(unit).to_string(format="generic")
    return text


def decode_column(
    info: Mapping[str, Any], index: int, read: Callable[[str], np.ndarray]
) -> Any:
    """Build the column described by ``info`` from arrays read with ``read(key)``.

    Raises
    ------
    CorruptBlobError
        If the description names an unknown encoding or its arrays do not fit it.
    """
    encoding = info.get("encoding")
    masked = bool(info.get("masked"))
    kwargs = {
        "name": info["name"],
        "unit": info.get("unit"),
        "description": info.get("description"),
        "format": info.get("format"),
        "meta": info.get("meta") or {},
        "copy": False,
    }
    if encoding in ("time", "quantity"):
        mixin = _decode_mixin(info, index, read, masked)
        mixin.info.description = kwargs["description"]
        mixin.info.meta = kwargs["meta"]
        return mixin
    data = read(column_key(index))
    if encoding == "utf32":
        data = _check_width(info, data).view(f"<U{info['width']}").reshape(data.shape[:-1])
    elif encoding == "bytes":
        data = _check_width(info, data).view(f"S{info['width']}").reshape(data.shape[:-1])
    elif encoding == "vlen-utf8":
        data = _decode_vlen(info, data, read(_offsets_key(index)))
    elif encoding is not None:  # pragma: no cover - a newer writer's encoding
        raise CorruptBlobError(
            f"column {info['name']!r} has encoding {encoding!r}, which this compstore does not "
            "know; upgrade compstore or run `compstore verify`"
        )
    if masked:
        return MaskedColumn(data, mask=read(mask_key(index)), **kwargs)
    return Column(data, **kwargs)


def _check_width(info: Mapping[str, Any], data: np.ndarray) -> np.ndarray:
    width = info.get("width")
    if not isinstance(width, int) or data.ndim < 1 or data.shape[-1] != width:
        raise CorruptBlobError(
            f"column {info['name']!r}: stored array of shape {data.shape} does not hold "
            f"strings of width {width!r}; run `compstore verify`"
        )
    return np.ascontiguousarray(data)


def _decode_vlen(info: Mapping[str, Any], values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    shape = tuple(info.get("shape") or ())
    count = int(np.prod(shape)) if shape else 0
    if (
        offsets.ndim != 1 or len(offsets) != count + 1 or offsets[0] != 0
        or offsets[-1] != len(values) or np.any(np.diff(offsets) < 0)
    ):
        raise CorruptBlobError(
            f"column {info['name']!r}: its string offsets do not fit its "
            f"{len(values)} bytes of text; run `compstore verify`"
        )
    raw = values.tobytes()
    out = np.empty(count, dtype=object)
    try:
        for i in range(count):
            out[i] = raw[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise CorruptBlobError(
            f"column {info['name']!r}: stored text is not UTF-8 ({exc}); run `compstore verify`"
        ) from None
    return out.reshape(shape)


def _decode_mixin(
    info: Mapping[str, Any], index: int, read: Callable[[str], np.ndarray], masked: bool
) -> Any:
    if info["encoding"] == "quantity":
        quantity = u.Quantity(read(column_key(index)), info["unit"], copy=False)
        return Masked(quantity, mask=read(mask_key(index))) if masked else quantity
    how = info["time"]
    time = Time(
        read(column_key(index)), read(_jd2_key(index)), format="jd", scale=how["scale"],
        precision=how["precision"], in_subfmt=how["in_subfmt"], out_subfmt=how["out_subfmt"],
    )
    time.format = how["format"]
    if masked:
        time[read(mask_key(index))] = np.ma.masked
    return time

"""Reading and writing zarr v3 array files directly, without zarr's per-array cost.

What is written here is byte-for-byte what a zarr v3 reader expects: a
``zarr.json`` with the same fields zarr-python writes, and one file per chunk
under the default chunk key encoding (``c.0.1``; ``c`` for a 0-d array),
encoded by the ``bytes`` codec and then blosc or zstd via numcodecs, the
library zarr-python itself calls. A chunk may be a shard (the
``sharding_indexed`` codec): inner chunks, each encoded as above, back to
back, followed by an index of ``(offset, nbytes)`` pairs and its crc32c, as
zarr-python writes by default. Stock ``zarr.open_array`` reads these
arrays, and :func:`parse_array_metadata` reads arrays zarr wrote with the
codecs below; anything else is reported as unsupported so the caller can fall
back to zarr itself.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numcodecs
import numpy as np
import orjson

from compstore.cas._encoding import parse_json
from compstore.cas._layout import ZARR_DATA_TYPES, ArrayLayout

__all__ = [
    "ArrayMeta",
    "ShardMeta",
    "UnsupportedZarrError",
    "array_metadata",
    "chunk_key",
    "decode_chunk",
    "decodes_in_place",
    "encode_chunk",
    "group_metadata",
    "iter_chunk_indices",
    "numcodec_of",
    "parse_array_metadata",
]

_NUMPY_OF_ZARR: Final = {name: code for code, name in ZARR_DATA_TYPES.items()}

GROUP_METADATA: Final = json.dumps(
    {"attributes": {}, "zarr_format": 3, "node_type": "group"}, indent=2
).encode()


class UnsupportedZarrError(Exception):
    """zarr.json is valid zarr but outside what the direct reader handles."""


def group_metadata() -> bytes:
    """Return the ``zarr.json`` of an empty zarr v3 group."""
    return GROUP_METADATA


def _fill_value_json(data_type: str) -> Any:
    if data_type == "bool":
        return False
    if data_type.startswith("complex"):
        return [0.0, 0.0]
    if data_type.startswith("float"):
        return 0.0
    return 0


def array_metadata(
    shape: tuple[int, ...],
    layout: ArrayLayout,
    dimension_names: list[str],
) -> bytes:
    """Return the ``zarr.json`` of an array, fields in the order zarr-python writes them."""
    bytes_codec: dict[str, Any] = {"name": "bytes"}
    if layout.endian is not None:
        bytes_codec["configuration"] = {"endian": layout.endian}
    codecs: list[dict[str, Any]] = [bytes_codec]
    if layout.compressor:
        codecs.append(layout.compressor)
    grid = layout.chunk_shape
    if layout.shard_shape is not None:
        grid = layout.shard_shape
        codecs = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": list(layout.chunk_shape),
                    "codecs": codecs,
                    "index_codecs": [
                        {"name": "bytes", "configuration": {"endian": "little"}},
                        {"name": "crc32c"},
                    ],
                    "index_location": "end",
                },
            }
        ]
    meta: dict[str, Any] = {
        "shape": list(shape),
        "data_type": layout.data_type,
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": list(grid)},
        },
        # "." keeps every chunk file directly in the array's folder: "/" would need a
        # folder per chunk row, and mkdir was a sixth of a put.
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": CHUNK_SEPARATOR}},
        "fill_value": _fill_value_json(layout.data_type),
        "codecs": codecs,
        "attributes": {},
    }
    if shape:
        # zarr omits dimension_names for 0-d arrays; so do we.
        meta["dimension_names"] = dimension_names
    meta.update({"zarr_format": 3, "node_type": "array", "storage_transformers": []})
    # Compact. orjson writes the same bytes as json.dumps(separators=(",", ":")) here
    # (ASCII names, ints, 0.0) 4-5x faster: 3 us against 14 us, and a catalog put
    # writes one zarr.json per column. Readers parse, never compare text.
    return orjson.dumps(meta)


@dataclass(frozen=True)
class ShardMeta:
    """How each chunk file of a sharded array is laid out inside.

    Attributes
    ----------
    chunk_shape
        Shape of an inner chunk; divides the shard (the array's chunk) shape.
    compressors
        numcodecs codecs of every inner chunk, applied in order on write.
    index_at_end
        Whether the index follows the inner chunks (zarr's default) or precedes them.
    index_crc32c
        Whether the index is followed by its crc32c (zarr's default).
    """

    chunk_shape: tuple[int, ...]
    compressors: tuple[Any, ...]
    index_at_end: bool
    index_crc32c: bool

    def grid(self, shard_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Inner chunks per shard, along each axis."""
        return tuple(s // c for s, c in zip(shard_shape, self.chunk_shape))

    def index_nbytes(self, shard_shape: tuple[int, ...]) -> int:
        """Size of the stored index: 16 bytes per inner chunk, plus 4 for the crc32c."""
        n = math.prod(self.grid(shard_shape))
        return 16 * n + (4 if self.index_crc32c else 0)


@dataclass(frozen=True)
class ArrayMeta:
    """What the direct reader needs from an array's ``zarr.json``.

    For a sharded array ``chunk_shape`` is the shard's and ``compressors`` is
    empty; ``shard`` says how each shard is laid out.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_shape: tuple[int, ...]
    separator: str
    fill_value: Any
    compressors: tuple[Any, ...]  # numcodecs codecs, applied in order on write
    shard: ShardMeta | None = None


def numcodec_of(codec: dict[str, Any]) -> Any:
    """Return the numcodecs codec for one zarr v3 compressor entry of zarr.json.

    Raises
    ------
    UnsupportedZarrError
        For codecs other than blosc, zstd and gzip.
    """
    name = codec.get("name")
    config = codec.get("configuration", {})
    if name == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[
            config.get("shuffle", "bitshuffle")
        ]
        return numcodecs.Blosc(
            cname=config.get("cname", "zstd"),
            clevel=config.get("clevel", 5),
            shuffle=shuffle,
            blocksize=config.get("blocksize", 0),
            typesize=config.get("typesize"),
        )
    if name == "zstd":
        return numcodecs.Zstd(level=config.get("level", 0), checksum=config.get("checksum", False))
    if name == "gzip":
        return numcodecs.GZip(level=config.get("level", 5))
    raise UnsupportedZarrError(f"codec {name!r}")


def parse_array_metadata(raw: bytes) -> ArrayMeta:
    """Parse an array ``zarr.json``.

    Raises
    ------
    UnsupportedZarrError
        If the array uses a data type, grid, key encoding or codec the direct
        reader does not handle (sharding, transpose, variable-length...).
    ValueError
        If ``raw`` is not JSON or lacks required fields (``KeyError`` too).
    """
    meta = parse_json(raw)
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
        raise UnsupportedZarrError("not a zarr v3 array")
    if meta.get("storage_transformers"):
        raise UnsupportedZarrError("storage transformers")
    code = _NUMPY_OF_ZARR.get(meta["data_type"]) if isinstance(meta["data_type"], str) else None
    if code is None:
        raise UnsupportedZarrError(f"data type {meta['data_type']!r}")
    grid = meta["chunk_grid"]
    if grid.get("name") != "regular":
        raise UnsupportedZarrError(f"chunk grid {grid.get('name')!r}")
    keys = meta["chunk_key_encoding"]
    if keys.get("name") != "default":
        raise UnsupportedZarrError(f"chunk key encoding {keys.get('name')!r}")
    codecs = list(meta["codecs"])
    shape = _dims(meta["shape"], "shape", 0)
    chunk_shape = _dims(grid["configuration"]["chunk_shape"], "chunk_shape", 1)
    if len(chunk_shape) != len(shape):
        raise ValueError(f"chunk_shape {list(chunk_shape)} does not match shape {list(shape)}")
    shard = None
    if codecs and codecs[0].get("name") == "sharding_indexed":
        if len(codecs) != 1:
            raise UnsupportedZarrError("codecs after sharding_indexed")
        shard, codecs = _parse_sharding(codecs[0].get("configuration", {}), chunk_shape)
    if not codecs or codecs[0].get("name") != "bytes":
        raise UnsupportedZarrError("first codec is not 'bytes'")
    endian = codecs[0].get("configuration", {}).get("endian", "little")
    if endian not in ("little", "big"):
        raise ValueError(f"bytes codec endian {endian!r}")  # read as "big", it would be wrong
    dtype = np.dtype(code)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    fill = meta["fill_value"]
    if isinstance(fill, list):
        fill = complex(fill[0], fill[1])
    return ArrayMeta(
        shape=shape,
        dtype=dtype,
        chunk_shape=chunk_shape,
        separator=keys.get("configuration", {}).get("separator", "/"),
        fill_value=np.array(fill, dtype=dtype) if not isinstance(fill, str) else None,
        compressors=() if shard else tuple(numcodec_of(c) for c in codecs[1:]),
        shard=shard,
    )


def _dims(value: Any, what: str, least: int) -> tuple[int, ...]:
    """Parse a list of sizes from zarr.json, each an int >= ``least``.

    Raises
    ------
    ValueError
        Otherwise (a damaged zarr.json: a chunk length of 0 would divide by zero).
    """
    if not isinstance(value, list) or not all(
        type(n) is int and n >= least for n in value  # noqa: E721 (bool is not a size)
    ):
        raise ValueError(f"{what} {value!r} is not a list of integers >= {least}")
    return tuple(value)


_LITTLE_BYTES: Final = {"name": "bytes", "configuration": {"endian": "little"}}


def _parse_sharding(
    config: dict[str, Any], shard_shape: tuple[int, ...]
) -> tuple[ShardMeta, list[dict[str, Any]]]:
    """Parse a ``sharding_indexed`` configuration; return it and the inner codec chain."""
    inner_shape = _dims(config["chunk_shape"], "inner chunk_shape", 1)
    if len(inner_shape) != len(shard_shape) or any(
        c < 1 or s % c for s, c in zip(shard_shape, inner_shape)
    ):
        raise ValueError(f"inner chunk shape {inner_shape} does not divide the shard {shard_shape}")
    inner = list(config.get("codecs", []))
    if any(c.get("name") == "sharding_indexed" for c in inner):
        raise UnsupportedZarrError("nested sharding")
    default_index = [_LITTLE_BYTES, {"name": "crc32c"}]
    index_codecs = [dict(c) for c in config.get("index_codecs", default_index)]
    for c in index_codecs:
        if c.get("name") == "bytes":
            c.setdefault("configuration", {"endian": "little"})
    if index_codecs not in ([_LITTLE_BYTES], [_LITTLE_BYTES, {"name": "crc32c"}]):
        raise UnsupportedZarrError(f"shard index codecs {index_codecs}")
    location = config.get("index_location", "end")
    if location not in ("start", "end"):
        raise UnsupportedZarrError(f"shard index location {location!r}")
    shard = ShardMeta(
        chunk_shape=inner_shape,
        compressors=tuple(numcodec_of(c) for c in inner[1:]),
        index_at_end=location == "end",
        index_crc32c=len(index_codecs) == 2,
    )
    return shard, inner


#: Separator of the chunk keys compstore writes (zarr v3 "default" encoding allows "/" or ".").
CHUNK_SEPARATOR = "."


def chunk_key(index: tuple[int, ...], separator: str = CHUNK_SEPARATOR) -> str:
    """Return the default-encoding key of a chunk: ``c/0/1``, or ``c`` for a 0-d array."""
    return separator.join(("c", *map(str, index)))


def iter_chunk_indices(
    lo: tuple[int, ...], hi: tuple[int, ...], chunk_shape: tuple[int, ...]
) -> Iterator[tuple[int, ...]]:
    """Yield the indices of every chunk overlapping the box ``[lo, hi)``."""
    ranges = [
        range(a // c, (b - 1) // c + 1) if b > a else range(0)
        for a, b, c in zip(lo, hi, chunk_shape)
    ]
    return itertools.product(*ranges)


def encode_chunk(chunk: np.ndarray, compressors: tuple[Any, ...]) -> bytes:
    """Encode one full-size chunk (already in its stored byte order)."""
    data: Any = np.ascontiguousarray(chunk)
    for codec in compressors:
        data = codec.encode(data)
    return bytes(data) if not isinstance(data, bytes) else data


def decodes_in_place(compressors: tuple[Any, ...]) -> bool:
    """Whether `decode_chunk` decodes chunks of this codec chain straight into ``out``."""
    return len(compressors) == 1 and isinstance(compressors[0], numcodecs.Blosc)


_BLOSC_SIZES: Final = struct.Struct("<4xI4xI")  # a blosc header's nbytes and cbytes


def _blosc_nbytes(raw: bytes | memoryview) -> int | None:
    """The uncompressed size a whole blosc chunk's header gives (None: not a whole chunk).

    Bytes 4-7 of the 16-byte blosc header; bytes 12-15 give the chunk's own
    size, which a chunk cut short no longer has (numcodecs would read past
    its end). Little-endian (blosc's README_HEADER.rst).
    """
    if len(raw) < 16:
        return None
    nbytes, cbytes = _BLOSC_SIZES.unpack_from(raw)
    return int(nbytes) if cbytes == len(raw) else None


def decode_chunk(
    raw: bytes | memoryview,
    compressors: tuple[Any, ...],
    shape: tuple[int, ...],
    dtype: np.dtype,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode one chunk (or inner chunk of a shard) to an array of ``shape``.

    ``out``, when given, must be a C-contiguous array of that shape and
    ``dtype``; a chunk of blosc alone decodes straight into it (no extra
    copy). A blosc chunk's header is checked first, whether or not ``out``
    is given: its length and its decoded size must be what they should.

    Raises
    ------
    ValueError
        If the decoded size does not match the chunk shape (a corrupt chunk).
    """
    n = math.prod(shape) * dtype.itemsize
    if decodes_in_place(compressors):
        # Checked before numcodecs reads it: a chunk cut short would be read past
        # its end, and one of another size would leave part of ``out`` as it was.
        held = _blosc_nbytes(raw)
        if held is None:
            raise ValueError("not a whole blosc chunk (cut short?)")
        if held != n:
            raise ValueError(f"chunk decodes to {held} bytes, expected {n}")
        if out is not None:
            compressors[0].decode(raw, out=out.reshape(-1).view(np.uint8))
            return out
    data: Any = raw
    for codec in reversed(compressors):
        data = codec.decode(data)
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if len(buf) != n:
        raise ValueError(f"chunk decodes to {len(buf)} bytes, expected {n}")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if out is not None:
        out[...] = arr
        return out
    return arr

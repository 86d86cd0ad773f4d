"""How an array component is laid out: chunk shape and codecs, by measurement.

The figures behind these choices are in ``docs/format.md`` ("Array layout")
and re-measured by ``benchmarks/bench_cas_layout.py``:

* floating point (sky images, variance) barely compresses: blosc lz4 with
  byte shuffle (1.34x) decodes 3x faster than with bitshuffle (1.55x), and
  decoding, not the disk, bounds a whole-image read; so byte shuffle;
* integer and boolean planes (masks) compress about 190x with blosc's
  ``blosclz`` without shuffle, which encodes 3x and decodes 4x faster than
  zstd level 1 (which compresses them ~800x; both are far below the float
  planes beside them), so a mask costs a put and a get little; 1-D integers
  (catalog ids, flags) are small and keep zstd level 1, which shrinks them
  more;
* 2-D and higher: 512x512 in the last two axes makes small cutouts read a
  handful of chunks; 1-D columns take large chunks since they are read whole.

Every array is then written as **one file** (:func:`one_file_layout`):
creating a file costs about as much as writing a megabyte on this kind
of disk (``bench_cas_layout.py`` section 8), so a 2048x2048 plane cut into 16
chunk files spent more on the files than on the bytes. An array stored raw is
one chunk (its file is the array's bytes in C order, so a whole read is one
``readinto`` and a cut-out maps the file and copies the window); a compressed
array of more than one chunk is one zarr shard holding those chunks and their
index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from compstore.errors import EncodingError

__all__ = [
    "CHUNK_1D_BYTES",
    "CHUNK_2D_EDGE",
    "ZARR_DATA_TYPES",
    "ArrayLayout",
    "choose_layout",
    "one_file_layout",
]

# numpy kind+itemsize -> zarr v3 core data type name.
ZARR_DATA_TYPES: Final[dict[str, str]] = {
    "b1": "bool",
    "i1": "int8",
    "i2": "int16",
    "i4": "int32",
    "i8": "int64",
    "u1": "uint8",
    "u2": "uint16",
    "u4": "uint32",
    "u8": "uint64",
    "f2": "float16",
    "f4": "float32",
    "f8": "float64",
    "c8": "complex64",
    "c16": "complex128",
}

CHUNK_2D_EDGE: Final = 512
"""Chunk length along each of the last two axes of an N-D (N >= 2) array."""

CHUNK_2D_EDGE_INT: Final = 256
"""Inner chunk edge of integer and boolean planes (masks), which are compressed and
so stored as one shard. 256x256 decodes a quarter of what 512x512 does for a
small cut-out; inside one shard the extra chunks of a whole read cost no files
(bench_cas_layout.py section 7)."""

CHUNK_1D_BYTES: Final = 4 << 20
"""Target uncompressed chunk size of a 1-D array (a catalog column)."""

BLOSC_CONFIG: Final[dict[str, Any]] = {
    "cname": "lz4",
    "clevel": 5,
    "shuffle": "shuffle",
    "blocksize": 0,
}
ZSTD_CONFIG: Final[dict[str, Any]] = {"level": 1, "checksum": False}
BLOSC_PLANE_CONFIG: Final[dict[str, Any]] = {
    "cname": "blosclz",
    "clevel": 5,
    "shuffle": "noshuffle",
    # One blosc block per 256x256 int32 chunk (smaller dtypes: the whole chunk):
    # decodes 25% faster than blosc's automatic block size.
    "blocksize": 256 * 1024,
}
"""Codec of integer and boolean arrays of two or more dimensions (masks)."""


@dataclass(frozen=True)
class ArrayLayout:
    """Chunk shape and codec chain of one array component.

    Attributes
    ----------
    data_type
        zarr v3 data type name (``"float32"``...).
    endian
        ``"little"``, ``"big"`` or ``None`` for one-byte types.
    chunk_shape
        Regular chunk grid; every entry >= 1.
    compressor
        ``{"name": ..., "configuration": {...}}`` as in zarr.json.
    shard_shape
        When set, the array is sharded: this is the shape of a shard (the
        chunk grid of ``zarr.json``) and ``chunk_shape`` that of the inner
        chunks it holds, each encoded with ``compressor``.
    """

    data_type: str
    endian: str | None
    chunk_shape: tuple[int, ...]
    compressor: dict[str, Any] | None  # None: the bytes codec alone (stored raw)
    shard_shape: tuple[int, ...] | None = None


def zarr_data_type(dtype: np.dtype) -> str:
    """Return the zarr v3 data type name of a numpy dtype the store can hold.

    Raises
    ------
    EncodingError
        For object, structured, string, datetime or any other dtype that is
        not a zarr v3 core data type.
    """
    name = ZARR_DATA_TYPES.get(f"{dtype.kind}{dtype.itemsize}")
    if name is None or dtype.fields is not None:
        raise EncodingError(
            f"the blob store holds bool, int, uint, float and complex arrays "
            f"(zarr v3 core data types), not {dtype}; store it as a document or "
            "convert it first"
        )
    return name


def choose_chunks(
    shape: tuple[int, ...], itemsize: int, edge: int = CHUNK_2D_EDGE
) -> tuple[int, ...]:
    """Return the chunk shape for an array of this shape and item size."""
    if not shape:
        return ()
    if len(shape) == 1:
        return (max(1, min(shape[0], CHUNK_1D_BYTES // itemsize)),)
    tail = [max(1, min(n, edge)) for n in shape[-2:]]
    # Leading axes share a budget of one edge x edge tile, so a stack of small
    # planes is one chunk and a cube of big planes is one plane per chunk.
    budget = max(1, (edge * edge) // (tail[0] * tail[1]))
    lead: list[int] = []
    for n in reversed(shape[:-2]):
        c = max(1, min(n, budget))
        lead.append(c)
        budget = max(1, budget // c)
    return (*reversed(lead), *tail)


def choose_layout(dtype: np.dtype, shape: tuple[int, ...]) -> ArrayLayout:
    """Pick chunk shape and codecs for a new array component.

    Raises
    ------
    EncodingError
        If the dtype is not one the store holds (see :func:`zarr_data_type`).
    """
    data_type = zarr_data_type(dtype)
    # dtype.str spells the order explicitly even for native dtypes.
    endian = None if dtype.itemsize == 1 else ("big" if dtype.str[0] == ">" else "little")
    if dtype.kind in "fc" or len(shape) >= 2:
        blosc = BLOSC_CONFIG if dtype.kind in "fc" else BLOSC_PLANE_CONFIG
        compressor = {"name": "blosc", "configuration": {"typesize": dtype.itemsize, **blosc}}
    else:
        compressor = {"name": "zstd", "configuration": dict(ZSTD_CONFIG)}
    edge = CHUNK_2D_EDGE if dtype.kind in "fc" else CHUNK_2D_EDGE_INT
    return ArrayLayout(data_type, endian, choose_chunks(shape, dtype.itemsize, edge), compressor)


def one_file_layout(layout: ArrayLayout, shape: tuple[int, ...]) -> ArrayLayout:
    """Return ``layout`` adjusted so that an array of ``shape`` is one file.

    Raw (no compressor): one chunk of the whole shape. Compressed with more
    than one chunk: one shard covering the array (its shape rounded up to
    whole inner chunks), the chunks of ``layout`` inside it. Otherwise
    unchanged. Empty axes keep a chunk length of 1, as zarr requires.
    """
    if layout.compressor is None:
        return replace(layout, chunk_shape=tuple(max(1, n) for n in shape), shard_shape=None)
    grid = [max(1, -(-n // c)) for n, c in zip(shape, layout.chunk_shape)]
    if math.prod(grid) <= 1:
        return layout
    return replace(layout, shard_shape=tuple(g * c for g, c in zip(grid, layout.chunk_shape)))

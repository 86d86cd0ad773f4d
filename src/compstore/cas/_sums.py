"""Checksums of the parts of an array's data file, so that a cut-out checks what it read.

A whole read is checked against the array's digest (hashed as it is read).
A cut-out reads a few pages of a raw file, or a few inner chunks of a shard,
and cannot hash the whole array; so each array folder of 1 MiB or more
(`SUMS_MIN_BYTES`) whose data file has several parts holds ``compstore.sums``
beside ``zarr.json`` (``docs/format.md``, "Checksums"): one xxh3-64 per part,
where a part is

- a tile of a raw data file: ``128 x 128`` elements in the last two axes
  (one element along the others), or ``64 KiB`` of a 1-D array; the hash is
  of the tile's elements in C order (edge tiles are smaller, not padded); or
- an encoded inner chunk of a shard, in the order of the shard's index.

Tiles, not row bands: a 100x100 cut-out meets about four 64 KiB tiles,
whatever the plane's width, but (100 + band) whole rows: 1.8 MiB of a
4096-wide float plane, which made an exposure cut-out 1.37x slower, not
1.1x (ad hoc, this machine; benchmarks/README.md, "Checksums"). xxh3 hashes
cached data at ~28 GB/s here, crc32c (google_crc32c, as zarr's ``crc32c``
codec) at ~5 GB/s. zarr ignores the file (it is neither ``zarr.json`` nor a
chunk key).

File: the line ``compstore.sums/1 tiles <t0> <t1>...\\n`` or
``compstore.sums/1 shard\\n``, then the checksums, little-endian uint64.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import xxhash

__all__ = [
    "SUMS_MIN_BYTES",
    "SUMS_NAME",
    "Sums",
    "parse_sums",
    "sums_file",
    "tile_shape",
    "tile_sums",
]

SUMS_NAME: Final = "compstore.sums"
SUMS_MIN_BYTES: Final = 1 << 20
"""Arrays smaller than this (as packed ones: ``PACK_MAX_BYTES``) have no sums file;
a cut-out of one reads it whole and checks its digest (~40 us a MiB)."""
_TILE_EDGE: Final = 128
_TILE_1D_BYTES: Final = 64 << 10
_MAGIC: Final = b"compstore.sums/1"


def tile_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The tiles a raw array of ``shape`` is checked by (see the module docstring)."""
    if len(shape) == 1:
        return (max(1, _TILE_1D_BYTES // itemsize),)
    return (*(1 for _ in shape[:-2]), _TILE_EDGE, _TILE_EDGE)


def _tiles(lo: tuple[int, ...], hi: tuple[int, ...],
           tile: tuple[int, ...]) -> Iterator[tuple[int, ...]]:  # fmt: skip
    """Indices of the tiles meeting the box ``[lo, hi)``."""
    return itertools.product(*(range(a // t, (b - 1) // t + 1) for a, b, t in zip(lo, hi, tile)))


def _tile_hash(array: np.ndarray, idx: tuple[int, ...], tile: tuple[int, ...]) -> int:
    # A C-order copy: also holds no view of a mapped file once it returns.
    part = np.array(array[tuple(slice(i * t, (i + 1) * t) for i, t in zip(idx, tile))], order="C")
    return xxhash.xxh3_64_intdigest(part.reshape(-1).view(np.uint8).data)


def tile_sums(array: np.ndarray, tile: tuple[int, ...]) -> list[int]:
    """The checksum of each tile of ``array``, in C order of the tile grid."""
    return [_tile_hash(array, idx, tile) for idx in _tiles((0,) * array.ndim, array.shape, tile)]


@dataclass(frozen=True)
class Sums:
    """The checksums of one array's parts.

    Attributes
    ----------
    tile
        The tile shape of a raw data file; None for the inner chunks of a shard.
    values
        One xxh3-64 per part (uint64).
    """

    tile: tuple[int, ...] | None
    values: np.ndarray

    def check(self, part: int, data: bytes | memoryview) -> None:
        """Raise ``ValueError`` unless the encoded inner chunk ``data`` is part ``part``.

        Raises
        ------
        ValueError
            If ``part`` is out of range or its checksum differs.
        """
        if not 0 <= part < len(self.values):
            raise ValueError(f"{SUMS_NAME} has no checksum for part {part}")
        if xxhash.xxh3_64_intdigest(data) != int(self.values[part]):
            raise ValueError(f"inner chunk {part} fails its checksum in {SUMS_NAME}")

    def failed_tile(self, array: np.ndarray, lo: tuple[int, ...],
                    hi: tuple[int, ...]) -> str | None:  # fmt: skip
        """Check the tiles of the raw ``array`` (its whole stored chunk) meeting ``[lo, hi)``.

        Returns what is wrong (None: nothing), rather than raising: ``array``
        may map a file, which cannot be unmapped while a traceback holds it.
        """
        tile = self.tile
        assert tile is not None
        grid = [-(-n // t) for n, t in zip(array.shape, tile)]
        if len(tile) != array.ndim or int(np.prod(grid)) != len(self.values):
            return f"{SUMS_NAME} does not describe an array of shape {array.shape}"
        for idx in _tiles(lo, hi, tile):
            part = int(np.ravel_multi_index(idx, grid))
            if _tile_hash(array, idx, tile) != int(self.values[part]):
                return f"tile {list(idx)} fails its checksum in {SUMS_NAME}"
        return None


def sums_file(tile: tuple[int, ...] | None, sums: list[int]) -> bytes:
    """The bytes of a ``compstore.sums`` file (``tile`` None: a shard's inner chunks)."""
    kind = b" tiles " + b" ".join(b"%d" % t for t in tile) if tile else b" shard"
    return _MAGIC + kind + b"\n" + np.asarray(sums, dtype="<u8").tobytes()


def parse_sums(raw: bytes) -> Sums:
    """Parse a ``compstore.sums`` file (its reader checks the number of checksums).

    Raises
    ------
    ValueError
        If it is damaged: another header, or a body that is not whole checksums.
    """
    head, sep, body = raw.partition(b"\n")
    words = head.split(b" ")
    if not sep or words[0] != _MAGIC or len(body) % 8:
        raise ValueError(f"{SUMS_NAME} is damaged (header {head[:40]!r}, {len(body)} bytes)")
    tile: tuple[int, ...] | None
    if words[1:] == [b"shard"]:
        tile = None
    elif len(words) > 2 and words[1] == b"tiles" and all(w.isdigit() and int(w) for w in words[2:]):
        tile = tuple(int(w) for w in words[2:])
    else:
        raise ValueError(f"{SUMS_NAME} is damaged (header {head[:40]!r})")
    return Sums(tile, np.frombuffer(body, dtype="<u8"))

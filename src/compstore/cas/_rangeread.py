"""Cut-outs of an array in compstore's one-file layout, read by byte ranges of its data file.

For object stores (`compstore.cas._s3`), where a file cannot be memory-mapped:
the reader asks for the byte ranges it needs and the store fetches them
(ranged GETs, nearby ranges merged into one request). What is read is checked
as `compstore.cas._zarrio.read_array_dir` checks a cut-out: against the
checksums of the parts read (`compstore.cas._sums`).

- A raw data file (C-order bytes): the rows of the checksum tiles that meet
  the box, then those tiles are checked and the box copied out.
- One shard: its index (the file's last bytes, crc32c-checked), then the
  inner chunks that meet the box, each checked and decoded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from compstore.cas._sums import Sums
from compstore.cas._zarrfmt import ArrayMeta, iter_chunk_indices
from compstore.cas._zarrio import (
    _decode_into,
    _encoded_pieces,
    _piece,
    _shard_index,
)

__all__ = ["FetchRanges", "FetchSuffix", "read_box"]

FetchRanges = Callable[[list[int], list[int]], list[bytes | memoryview]]
"""``fetch(starts, ends)``: the bytes ``[start, end)`` of the data file, for each pair."""
FetchSuffix = Callable[[int], tuple[bytes | memoryview, int]]
"""``fetch(n)``: the data file's last ``n`` bytes, and the file's size."""


def read_box(meta: ArrayMeta, lo: tuple[int, ...], hi: tuple[int, ...], sums: Sums,
             fetch: FetchRanges, fetch_suffix: FetchSuffix) -> np.ndarray:  # fmt: skip
    """Read and check the box ``[lo, hi)`` of an array stored as one data file.

    Raises
    ------
    ValueError
        If a part read fails its checksum, the shard index is damaged, the
        sums do not describe the array, or it is not in the one-file layout.
    """
    out = np.empty(tuple(b - a for a, b in zip(lo, hi)), dtype=meta.dtype)
    if out.size == 0:
        return out
    if meta.shard is None and not meta.compressors and meta.chunk_shape == meta.shape:
        _read_raw(meta, lo, hi, sums, fetch, out)
    elif meta.shard is not None and meta.chunk_shape == _one_shard(meta):
        _read_one_shard(meta, lo, hi, sums, fetch, fetch_suffix, out)
    else:
        raise ValueError("the array is not in compstore's one-file layout")
    return out


def _one_shard(meta: ArrayMeta) -> tuple[int, ...]:
    """The shard shape an array of one shard has (its chunk grid must be one)."""
    if any(-(-n // c) != 1 for n, c in zip(meta.shape, meta.chunk_shape)):
        return ()
    return meta.chunk_shape


def _read_raw(meta: ArrayMeta, lo: tuple[int, ...], hi: tuple[int, ...], sums: Sums,
              fetch: FetchRanges, out: np.ndarray) -> None:  # fmt: skip
    """The box of a raw data file: fetch the rows of the tiles meeting it, check, copy."""
    tile = sums.tile
    if tile is None or len(tile) != len(meta.shape):
        raise ValueError("compstore.sums does not list tiles of this raw array")
    shape = meta.shape
    # The tiles meeting the box, as a box of elements (clipped to the array).
    t_lo = tuple(a // t * t for a, t in zip(lo, tile))
    t_hi = tuple(min(n, -(-b // t) * t) for b, t, n in zip(hi, tile, shape))
    # Pages of an untouched np.empty are never faulted in: only fetched rows cost memory.
    whole = np.empty(shape, dtype=meta.dtype)
    flat = whole.reshape(-1).view(np.uint8)
    itemsize = meta.dtype.itemsize
    strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
    starts: list[int] = []
    ends: list[int] = []
    for lead in itertools.product(*(range(a, b) for a, b in zip(t_lo[:-1], t_hi[:-1]))):
        row = sum(i * s for i, s in zip(lead, strides))
        starts.append((row + t_lo[-1]) * itemsize)
        ends.append((row + t_hi[-1]) * itemsize)
    for start, end, data in zip(starts, ends, fetch(starts, ends)):
        if len(data) != end - start:
            raise ValueError(f"raw data file ends before byte {end}")
        flat[start:end] = np.frombuffer(data, dtype=np.uint8)
    failure = sums.failed_tile(whole, lo, hi)
    if failure is not None:
        raise ValueError(failure)
    out[...] = whole[tuple(slice(a, b) for a, b in zip(lo, hi))]


def _read_one_shard(meta: ArrayMeta, lo: tuple[int, ...], hi: tuple[int, ...], sums: Sums,
                    fetch: FetchRanges, fetch_suffix: FetchSuffix,
                    out: np.ndarray) -> None:  # fmt: skip
    """The box of a one-shard array: its index, then the inner chunks meeting the box."""
    shard = meta.shard
    assert shard is not None
    grid = shard.grid(meta.chunk_shape)
    if sums.tile is not None or len(sums.values) != math.prod(grid):
        raise ValueError("compstore.sums does not describe the one shard of this array")
    tail, size = fetch_suffix(shard.index_nbytes(meta.chunk_shape))

    def read_index(offset: int, nbytes: int) -> bytes | memoryview:
        start = offset - (size - len(tail))
        return tail[start : start + nbytes]

    index = _shard_index(read_index, size, shard, meta.chunk_shape)
    inner = shard.chunk_shape
    wanted = [
        (j, _piece(tuple(i * c for i, c in zip(j, inner)), inner, lo, hi, meta.shape, out))
        for j in iter_chunk_indices(lo, hi, inner)
    ]
    # A first pass only notes the byte ranges (_encoded_pieces checks them against the
    # index and fills absent chunks); then one fetch of them all, merged into few requests.
    ranges: list[tuple[int, int]] = []

    def note(offset: int, nbytes: int) -> bytes:
        ranges.append((offset, nbytes))
        return b""

    _encoded_pieces(wanted, index, size, note, meta)
    fetched = fetch([o for o, _ in ranges], [o + n for o, n in ranges])
    found = dict(zip(ranges, fetched))
    pieces = _encoded_pieces(wanted, index, size, lambda o, n: found[(o, n)], meta)
    by_piece = {id(p): j for j, p in wanted}
    for p in pieces:
        assert p.raw is not None
        sums.check(int(np.ravel_multi_index(by_piece[id(p)], grid)), p.raw)
        _decode_into(p, shard.compressors, meta)

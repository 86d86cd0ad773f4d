"""Write one zarr v3 array: its directory (`LocalBlobStore`), or its files' bytes (packs, S3).

The array's data is one file: a raw chunk, or one shard of compressed inner
chunks encoded in parallel for big arrays (``docs/format.md``, "Array
layout"), with its ``compstore.sums`` when it is big enough. Reading is
`compstore.cas._zarrio`.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
from typing import Any, Final

import google_crc32c
import numpy as np
import xxhash

from compstore._pool import parallel_map
from compstore.cas._digest import array_bytes
from compstore.cas._layout import ArrayLayout, choose_layout, one_file_layout
from compstore.cas._sums import SUMS_MIN_BYTES, SUMS_NAME, sums_file, tile_shape, tile_sums
from compstore.cas._zarrfmt import array_metadata, chunk_key, encode_chunk, numcodec_of
from compstore.cas._zarrio import PARALLEL_MIN_BYTES, _tile

__all__ = [
    "MIN_SAVING",
    "encode_array_files",
    "write_array_data",
    "write_array_dir",
    "write_array_meta",
]

def write_array_dir(path: str, array: np.ndarray, dimension_names: list[str]) -> list[str]:
    """Write ``array`` as a zarr v3 array into the new directory ``path``.

    The array's data is one file (:func:`compstore.cas._layout.one_file_layout`):
    its raw bytes, or one shard of compressed chunks; then its ``zarr.json``.

    Returns
    -------
    list[str]
        Every file and directory created under ``path`` (for a later fsync),
        directories after the files they hold.

    Raises
    ------
    As `write_array_data`.
    """
    layout, files = write_array_data(path, array)
    return [write_array_meta(path, array.shape, layout, dimension_names), *files]


def write_array_data(
    path: str, array: np.ndarray, hasher: Any = None
) -> tuple[ArrayLayout, list[str]]:
    """Create the directory ``path`` and write ``array``'s one data file into it.

    With ``hasher`` (:func:`compstore.cas._digest.array_hasher`'s), the
    array's bytes are fed to it too, whole, before they are written or
    encoded: one call each, so a pool thread gives up and takes back the GIL
    twice per array. Hashing and writing 256 KiB blocks in turn reads the
    memory once, and was faster alone (two planes: 13.3-13.6 against
    15.5-15.8 ms). Inside puts, where the caller runs Python beside the pool,
    it was slower: 26-32 ms per exposure + catalog put, against 24-30 ms for
    whole arrays, in six paired runs (ad hoc; benchmarks/README.md, fifth round).
    The caller writes ``zarr.json`` after (its dimension names carry the digest).

    Returns
    -------
    layout, files
        The layout chosen, and the files and directories created, directories
        last (for a later fsync): the data file, and its ``compstore.sums``
        (`compstore.cas._sums`) if it has more than one part to check.

    Raises
    ------
    EncodingError
        If the dtype is not one the store holds.
    OSError
        If a write fails (``path`` is left for the caller to remove).
    """
    layout = _one_file_layout_for(array)
    os.mkdir(path)
    if array.size == 0:  # no chunk at all: zarr reads the fill value (nothing to read)
        return layout, [path]
    file = os.path.join(path, chunk_key((0,) * array.ndim))
    with open(file, "xb") as f:
        sums = _write_data(f, array, layout, hasher)
    if sums is None:
        return layout, [file, path]
    sums_path = os.path.join(path, SUMS_NAME)
    with open(sums_path, "xb") as f:
        f.write(sums)
    return layout, [file, sums_path, path]


def encode_array_files(
    array: np.ndarray, dimension_names: list[str], with_sums: bool = False
) -> list[tuple[str, bytes]]:
    """The files of ``array`` as a zarr v3 array, in memory: ``[(name, bytes), ...]``.

    ``zarr.json`` first, then the one data file (none for an empty array):
    byte for byte what `write_array_dir` writes into its directory. With
    ``with_sums``, its ``compstore.sums`` follows where `write_array_data`
    would write one (packed arrays are too small to have one; objects on S3
    are not).

    Raises
    ------
    EncodingError
        If the dtype is not one the store holds.
    """
    layout = _one_file_layout_for(array)
    files = [("zarr.json", array_metadata(array.shape, layout, dimension_names))]
    if array.size:
        buffer = io.BytesIO()
        sums = _write_data(buffer, array, layout, None)
        files.append((chunk_key((0,) * array.ndim), buffer.getvalue()))
        if with_sums and sums is not None:
            files.append((SUMS_NAME, sums))
    return files


def _one_file_layout_for(array: np.ndarray) -> ArrayLayout:
    """The layout a new array is written with: its dtype's codec if it pays, in one file."""
    layout = choose_layout(array.dtype, array.shape)
    if layout.compressor is not None and not _compression_pays(array, layout):
        layout = dataclasses.replace(layout, compressor=None)
    return one_file_layout(layout, array.shape)


def _write_data(f: Any, array: np.ndarray, layout: ArrayLayout, hasher: Any) -> bytes | None:
    """Write the one data file of ``array`` (laid out by ``layout``) to the file object ``f``.

    Returns the ``compstore.sums`` file of its parts (`compstore.cas._sums`),
    or None if it is small or one part only (a cut-out then checks the whole array).
    """
    data = np.ascontiguousarray(array).reshape(array.shape)  # (0-d arrays come back 1-d)
    if layout.compressor is None:
        # Raw: the file is the array's bytes in C order, written from the array itself.
        raw = array_bytes(data)
        if hasher is not None:
            hasher.update(raw)
        f.write(raw)
        if len(raw) < SUMS_MIN_BYTES or not data.ndim:
            return None
        tile = tile_shape(data.shape, data.dtype.itemsize)
        return sums_file(tile, tile_sums(data, tile))
    if hasher is not None:
        hasher.update(array_bytes(data))
    if layout.shard_shape is None:  # one chunk, of the array's own shape
        f.write(encode_chunk(data, (numcodec_of(layout.compressor),)))
        return None
    sums = _write_shard(f, data, layout)
    return sums_file(None, sums) if data.nbytes >= SUMS_MIN_BYTES else None


def write_array_meta(path: str, shape: tuple[int, ...], layout: ArrayLayout,
                     dimension_names: list[str]) -> str:  # fmt: skip
    """Write the ``zarr.json`` of an array of ``shape`` written with ``layout``; return its path."""
    meta_path = os.path.join(path, "zarr.json")
    with open(meta_path, "xb") as f:
        f.write(array_metadata(shape, layout, dimension_names))
    return meta_path


def _padded_block(array: np.ndarray, idx: tuple[int, ...], out: np.ndarray) -> np.ndarray:
    """Copy the chunk ``idx`` of ``array`` into ``out`` (a chunk) and return ``out``.

    zarr v3 edge chunks are full size, padded with the fill value (0).
    """
    chunks = out.shape
    sel = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, chunks, array.shape))
    block = array[sel]
    if block.shape != chunks:
        out[...] = 0
    out[tuple(slice(0, s) for s in block.shape)] = block
    return out


def _write_shard(f: Any, array: np.ndarray, layout: ArrayLayout) -> list[int]:
    """Write ``array`` as one shard: inner chunks in C order, then index and crc32c.

    Returns the xxh3-64 of each encoded inner chunk, in order (`compstore.cas._sums`).
    """
    assert layout.shard_shape is not None and layout.compressor is not None
    inner = layout.chunk_shape
    codec = (numcodec_of(layout.compressor),)
    grid = tuple(s // c for s, c in zip(layout.shard_shape, inner))
    indices = list(itertools.product(*map(range, grid)))

    def encode(idx: tuple[int, ...]) -> bytes:
        # Each inner chunk is copied into one reused per-thread tile before encoding:
        # a fresh 256 KiB array per chunk (page faults) made copying dearer (ad-hoc timing).
        return encode_chunk(_padded_block(array, idx, _tile(inner, array.dtype)), codec)

    # blosc and zstd release the GIL: big arrays encode on the thread pool.
    encoded = parallel_map(encode, indices, array.nbytes >= PARALLEL_MIN_BYTES)
    index = np.empty((*grid, 2), dtype="<u8")
    offset = 0
    for idx, data in zip(indices, encoded):
        f.write(data)
        index[idx] = (offset, len(data))
        offset += len(data)
    raw_index = index.tobytes()
    f.write(raw_index + google_crc32c.value(raw_index).to_bytes(4, "little"))
    return [xxhash.xxh3_64_intdigest(data) for data in encoded]  # encoded masks are small



#: Store a floating-point array raw unless its codec saves at least this fraction
#: (i.e. compresses 3x). Reads are mostly page-cache warm, where raw is faster
#: (no decode) and a cut-out decodes nothing; sky images and their variance
#: compress ~1.3x, so they are stored raw, and only very smooth planes (models,
#: flat fields) keep a codec. Figures: bench_cas_layout.py section 7, docs/format.md.
MIN_SAVING: Final = 2 / 3


def _compression_pays(array: np.ndarray, layout: ArrayLayout) -> bool:
    """Whether compressing ``array`` saves enough to pay for decoding it on every read.

    Floats are judged by one sample block from the middle (see `MIN_SAVING`),
    at most 256 KiB: compressing a whole 512x512 chunk was a visible part of
    every float put, and sky noise is as compressible in a quarter of it. Integers and booleans
    (masks: hundreds of times) always compress.
    """
    if array.dtype.kind not in "fc" or array.nbytes < (1 << 20):
        return True
    budget = max(1, (256 << 10) // array.dtype.itemsize)
    edge = max(1, int(budget ** 0.5))
    sample_shape = [1] * array.ndim
    if array.ndim == 1:
        sample_shape[0] = min(layout.chunk_shape[0], budget)
    else:
        sample_shape[-2:] = [min(c, edge) for c in layout.chunk_shape[-2:]]
    centre = tuple(
        slice(max(0, n // 2 - c // 2), max(0, n // 2 - c // 2) + c)
        for n, c in zip(array.shape, sample_shape)
    )
    sample = np.ascontiguousarray(array[centre])
    encoded = numcodec_of(layout.compressor).encode(sample)  # type: ignore[arg-type]
    return len(encoded) <= (1 - MIN_SAVING) * sample.nbytes

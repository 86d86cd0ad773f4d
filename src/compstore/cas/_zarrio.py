"""Write and read one zarr v3 array directory, chunk files in parallel when it pays.

blosc and zstd release the GIL, so big arrays encode and decode their chunks
on a small thread pool (``docs/format.md``, "Array layout", has the figures).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import numpy as np

from compstore.cas._layout import ArrayLayout, choose_layout
from compstore.cas._region import Region
from compstore.cas._zarrfmt import (
    ArrayMeta,
    numcodec_of,
    array_metadata,
    chunk_key,
    decode_chunk,
    encode_chunk,
    iter_chunk_indices,
)

__all__ = [
    "PARALLEL_MIN_BYTES",
    "dimension_names_for",
    "parallel_map",
    "read_array_dir",
    "write_array_dir",
]

PARALLEL_MIN_BYTES: Final = 4 << 20
"""Arrays (or regions) smaller than this are coded on the calling thread."""

_T = TypeVar("_T")
_R = TypeVar("_R")
_executor: ThreadPoolExecutor | None = None


def parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], parallel: bool) -> list[_R]:
    """Map ``fn`` over ``items``, on the shared thread pool when ``parallel``."""
    global _executor
    items = list(items)
    if not parallel or len(items) < 2:
        return [fn(item) for item in items]
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="compstore-cas"
        )
    return list(_executor.map(fn, items))


def write_array_dir(path: str, array: np.ndarray, dimension_names: list[str]) -> list[str]:
    """Write ``array`` as a zarr v3 array into the new directory ``path``.

    Returns
    -------
    list[str]
        Every file and directory created under ``path`` (for a later fsync),
        directories after the files they hold.

    Raises
    ------
    EncodingError
        If the dtype is not one the store holds.
    OSError
        If a write fails (``path`` is left for the caller to remove).
    """
    layout = choose_layout(array.dtype, array.shape)
    shape = array.shape
    chunks = layout.chunk_shape
    if layout.compressor is not None and not _compression_pays(array, layout):
        layout = dataclasses.replace(layout, compressor=None)
    compressors = (numcodec_of(layout.compressor),) if layout.compressor else ()
    os.mkdir(path)
    created: list[str] = []
    meta_path = os.path.join(path, "zarr.json")
    with open(meta_path, "xb") as f:
        f.write(array_metadata(shape, layout, dimension_names, {}))
    created.append(meta_path)

    indices = list(iter_chunk_indices((0,) * len(shape), shape, chunks))
    # Make every chunk directory up front, so that threads only write files.
    dirs = sorted({os.path.dirname(chunk_key(idx)) for idx in indices} - {""})
    for d in dirs:
        os.makedirs(os.path.join(path, d), exist_ok=True)

    def write_one(idx: tuple[int, ...]) -> str:
        sel = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, chunks, shape))
        block = array[sel] if sel else array[...]  # [()] of a 0-d array is a scalar
        if block.shape != chunks:
            # zarr v3 edge chunks are stored full size, padded with the fill value (0).
            padded = np.zeros(chunks, dtype=array.dtype)
            padded[tuple(slice(0, s) for s in block.shape)] = block
            block = padded
        file = os.path.join(path, chunk_key(idx))
        with open(file, "xb") as f:
            # A raw chunk is written from the (contiguous) array itself: no bytes() copy.
            data = encode_chunk(block, compressors) if compressors else np.ascontiguousarray(block)
            # ndarray is a buffer; numpy's stubs declare __buffer__ only for Python >= 3.12.
            f.write(data)  # type: ignore[arg-type]
        return file

    created += parallel_map(write_one, indices, array.nbytes >= PARALLEL_MIN_BYTES)
    # Deepest directories first: each must be synced after what it names.
    created += [os.path.join(path, d) for d in sorted(dirs, key=len, reverse=True)]
    created.append(path)
    return created


#: Store a floating-point array raw unless its codec saves at least this fraction
#: (i.e. compresses 3x). Reads are mostly page-cache warm, where raw is faster
#: (no decode) and a cut-out decodes nothing; sky images and their variance
#: compress ~1.3x, so they are stored raw, and only very smooth planes (models,
#: flat fields) keep a codec. Figures: bench_cas_layout.py section 7, docs/format.md.
MIN_SAVING: Final = 2 / 3


def _compression_pays(array: np.ndarray, layout: ArrayLayout) -> bool:
    """Whether compressing ``array`` saves enough to pay for decoding it on every read.

    Floats are judged by one sample chunk from the middle (see `MIN_SAVING`);
    integers and booleans (masks: hundreds of times) always compress.
    """
    if array.dtype.kind not in "fc" or array.nbytes < (1 << 20):
        return True
    centre = tuple(
        slice(max(0, n // 2 - c // 2), max(0, n // 2 - c // 2) + c) for n, c in zip(array.shape, layout.chunk_shape)
    )
    sample = np.ascontiguousarray(array[centre])
    encoded = numcodec_of(layout.compressor).encode(sample)  # type: ignore[arg-type]
    return len(encoded) <= (1 - MIN_SAVING) * sample.nbytes


def read_array_dir(path: str, meta: ArrayMeta, region: Region) -> np.ndarray:
    """Read the box ``[region.lo, region.hi)`` of the array in ``path``.

    Only chunks overlapping the box are read; a missing chunk file reads as the
    fill value, as in zarr.

    Raises
    ------
    FileNotFoundError
        If ``path`` itself has gone.
    ValueError
        If a chunk does not decode to its chunk shape (corrupt; numcodecs may
        raise its own errors too).
    """
    lo, hi = region.lo, region.hi
    out = np.empty(region.box_shape, dtype=meta.dtype)
    if out.size == 0:
        return out
    shape, cs = meta.shape, meta.chunk_shape

    def read_one(idx: tuple[int, ...]) -> None:
        c0 = [i * c for i, c in zip(idx, cs)]
        o0 = [max(a, b) for a, b in zip(c0, lo)]
        o1 = [min(a + c, n, h) for a, c, n, h in zip(c0, cs, shape, hi)]
        sel = tuple(slice(a - start, b - start) for a, b, start in zip(o0, o1, lo))
        dst = out[sel] if sel else out[...]  # [()] of a 0-d array is a scalar
        try:
            with open(os.path.join(path, chunk_key(idx, meta.separator)), "rb") as f:
                if _small_raw_part(meta, dst):
                    _read_raw_rows(f, dst, meta, [a - c for a, c in zip(o0, c0)])
                    return
                raw = f.read()
        except FileNotFoundError:
            if not os.path.isdir(path):
                raise
            dst[...] = meta.fill_value
            return
        if dst.shape == cs and dst.flags.c_contiguous:
            decode_chunk(raw, meta, out=dst)
        else:
            chunk = decode_chunk(raw, meta)
            dst[...] = chunk[tuple(slice(a - c, b - c) for a, b, c in zip(o0, o1, c0))]

    indices = iter_chunk_indices(lo, hi, cs)
    parallel_map(read_one, indices, out.nbytes >= PARALLEL_MIN_BYTES)
    return out


def _small_raw_part(meta: ArrayMeta, dst: np.ndarray) -> bool:
    """Whether ``dst`` needs at most half the rows of a raw 2-D chunk: then only those are read."""
    return (
        not meta.compressors
        and dst.ndim == 2
        and dst.dtype == meta.dtype
        and dst.shape[0] <= meta.chunk_shape[0] // 2
    )


def _read_raw_rows(f: Any, dst: np.ndarray, meta: ArrayMeta, start: list[int]) -> None:
    """Read only the rows ``dst`` needs from a raw chunk (one pread), then its columns.

    A 100x100 cut-out of a 512x512 float32 chunk reads 200 KB instead of 1 MB.

    Raises
    ------
    ValueError
        If the chunk file is shorter than its shape says (corrupt).
    """
    itemsize = meta.dtype.itemsize
    width = meta.chunk_shape[1]
    rows = dst.shape[0]
    want = rows * width * itemsize
    data = os.pread(f.fileno(), want, start[0] * width * itemsize)
    if len(data) != want:
        raise ValueError(f"raw chunk is short: read {len(data)} of {want} bytes")
    block = np.frombuffer(data, dtype=meta.dtype).reshape(rows, width)
    dst[...] = block[:, start[1] : start[1] + dst.shape[1]]


def dimension_names_for(digest: str, ndim: int) -> list[str]:
    """Return dimension names unique to one array.

    xarray needs ``dimension_names`` on every array of a group it opens and
    requires equal names to have equal sizes, so names carry the digest.
    """
    return [f"{digest}_{i}" for i in range(ndim)]

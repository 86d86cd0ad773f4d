"""Checksums of the parts of an array's data file, so that a cut-out checks what it read.

A whole read is checked against the array's digest (hashed as it is read).
A cut-out reads a few pages of a raw file, or a few inner chunks of a shard,
and cannot hash the whole array; so each array folder of 1 MiB or more
(`SUMS_MIN_BYTES`) with more than one checkable part holds ``compstore.sums`` beside ``zarr.json``
(``docs/format.md``, "Checksums"): one xxh3-64 per part, where a part is

- a 64 KiB block of a raw data file (the last one shorter), or
- an encoded inner chunk of a shard, in the order of the shard's index.

xxh3 hashes a cached 64 KiB block at ~28 GB/s here, crc32c (google_crc32c,
as zarr's ``crc32c`` codec) at ~5 GB/s: a 100x100 cut-out of a 2048-wide
float plane checks about 1 MiB of blocks in ~40 us (ad hoc, this machine).
zarr ignores the file (it is neither ``zarr.json`` nor a chunk key).

File: the line ``compstore.sums/1 raw <block>\\n`` or ``compstore.sums/1 shard\\n``,
then the checksums, little-endian uint64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import xxhash

__all__ = ["SUMS_BLOCK", "SUMS_MIN_BYTES", "SUMS_NAME", "Sums", "parse_sums", "raw_block_sums", "sums_file"]

SUMS_NAME: Final = "compstore.sums"
SUMS_BLOCK: Final = 64 << 10
SUMS_MIN_BYTES: Final = 1 << 20
"""Arrays smaller than this (as packed ones: ``PACK_MAX_BYTES``) have no sums file;
a cut-out of one reads it whole and checks its digest (~40 us a MiB)."""
_MAGIC: Final = b"compstore.sums/1"


@dataclass(frozen=True)
class Sums:
    """The checksums of one array's parts.

    Attributes
    ----------
    block
        Bytes per block of a raw data file; None for the inner chunks of a shard.
    values
        One xxh3-64 per part (uint64).
    """

    block: int | None
    values: np.ndarray

    def check(self, part: int, data: bytes | memoryview) -> None:
        """Raise ``ValueError`` unless ``data`` is part ``part`` as written.

        Raises
        ------
        ValueError
            If ``part`` is out of range or its checksum differs.
        """
        if not 0 <= part < len(self.values):
            raise ValueError(f"{SUMS_NAME} has no checksum for part {part}")
        if xxhash.xxh3_64_intdigest(data) != int(self.values[part]):
            raise self._failed(part)

    def check_raw(self, data: memoryview, start: int, stop: int) -> None:
        """Check the blocks of the raw file ``data`` that hold bytes ``[start, stop)``.

        Each block's view is released before anything is raised: ``data`` may
        map a file, which cannot be unmapped while a view of it is alive (the
        traceback would keep one).

        Raises
        ------
        ValueError
            If the file is not as long as the checksums say, or a block differs.
        """
        assert self.block is not None
        if -(-len(data) // self.block) != len(self.values):
            raise ValueError(f"the data file's {len(data)} bytes do not match {SUMS_NAME}")
        for b in range(start // self.block, -(-stop // self.block)):
            with data[b * self.block : (b + 1) * self.block] as block:
                ok = xxhash.xxh3_64_intdigest(block) == int(self.values[b])
            if not ok:
                raise self._failed(b)

    def _failed(self, part: int) -> ValueError:
        what = f"block {part} of the data file" if self.block else f"inner chunk {part}"
        return ValueError(f"{what} fails its checksum in {SUMS_NAME}")


def raw_block_sums(data: memoryview, hasher: object = None) -> list[int]:
    """The checksum of each `SUMS_BLOCK` of ``data``; ``hasher`` (if any) is fed each block too.

    Feeding the digest's hasher block by block hashes each block twice while
    it is in the CPU cache, not the whole array twice from memory.
    """
    sums = []
    for start in range(0, len(data), SUMS_BLOCK):
        block = data[start : start + SUMS_BLOCK]
        if hasher is not None:
            hasher.update(block)  # type: ignore[attr-defined]
        sums.append(xxhash.xxh3_64_intdigest(block))
    return sums


def sums_file(block: int | None, sums: list[int]) -> bytes:
    """The bytes of a ``compstore.sums`` file (``block`` None: a shard's inner chunks)."""
    head = _MAGIC + (b" raw %d\n" % block if block else b" shard\n")
    return head + np.asarray(sums, dtype="<u8").tobytes()


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
    if words[1:] == [b"shard"]:
        block = None
    elif len(words) == 3 and words[1] == b"raw" and words[2].isdigit() and int(words[2]) > 0:
        block = int(words[2])
    else:
        raise ValueError(f"{SUMS_NAME} is damaged (header {head[:40]!r})")
    return Sums(block, np.frombuffer(body, dtype="<u8"))

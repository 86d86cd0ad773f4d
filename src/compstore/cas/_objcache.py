"""A local folder of objects read from an object store: bounded in bytes, least recently used out.

`S3BlobStore` keeps here what it reads whole (``zarr.json``, ``compstore.sums``,
documents, arrays' data files), under their keys, so that reading them again
costs no request. Objects are content-addressed and never change, so a cached
copy is never stale; it may be damaged (a disk, a bad write, a user's
edit). Arrays' data files are checked by the store as what it fetches is
(digest or per-part checksums: a cut-out reads ranges of the cached file);
every other object (``zarr.json``, ``compstore.sums``, documents) is *sealed*:
its file ends with an xxh3-64 of its bytes and a magic, checked by `get`. A
copy failing its seal is removed and reported as a miss, so the store fetches
it again; nothing read from a damaged ``zarr.json`` (a shape, a dtype) is ever
believed. (A copy written by an older compstore has no seal: a miss, once.)

Files are written through a temporary and renamed (`write_atomic`), so
processes may share a folder. A hit sets the file's mtime: eviction removes
the oldest mtimes first until the folder holds at most ``max_bytes``. The
total is counted by this object; the folder is scanned (O(files)) only when
this object first writes into it, so a reader served from the cache opens it
at no cost. Processes sharing a folder each bound what they count.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import time
from pathlib import Path
from typing import Final

import xxhash

from compstore.cas._atomic import write_atomic
from compstore.errors import BlobStoreError

__all__ = ["ObjectCache"]

# The names of cached objects: an array's files and a document (32 hex digits a digest).
_KEY = re.compile(
    r"arrays/[0-9a-f]{2}/[0-9a-f]{32,64}/(zarr\.json|compstore\.sums|c(/0)*|c(\.0)*)"
    r"|documents/[0-9a-f]{2}/[0-9a-f]{32,64}\.json"
)
_STALE_SECONDS = 3600
_DATA_FILE: Final = re.compile(r"arrays/.*/c(/0)*|arrays/.*/c(\.0)*")  # checked by the store
_SEAL: Final = struct.Struct("<Q8s")  # xxh3-64 of the bytes, magic
_SEAL_MAGIC: Final = b"csseal01"


def is_sealed(key: str) -> bool:
    """Whether the cached file of ``key`` carries a seal (all but arrays' data files)."""
    return _DATA_FILE.fullmatch(key) is None


def _seal(data: bytes | memoryview) -> bytes:
    return bytes(data) + _SEAL.pack(xxhash.xxh3_64_intdigest(data), _SEAL_MAGIC)


def _unseal(raw: bytes) -> bytes | None:
    """The sealed bytes of a cached file, or None if its seal fails."""
    if len(raw) < _SEAL.size:
        return None
    checksum, magic = _SEAL.unpack_from(raw, len(raw) - _SEAL.size)
    data = raw[: len(raw) - _SEAL.size]
    if magic != _SEAL_MAGIC or xxhash.xxh3_64_intdigest(data) != checksum:
        return None
    return data


class ObjectCache:
    """Objects kept as files under ``folder`` (created), at most ``max_bytes`` of them.

    Keys are the object store's keys (``arrays/ab/<digest>/zarr.json``): made
    of hex digests and fixed names, so they are safe relative paths.
    """

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int) -> None:
        self._root = Path(folder).expanduser()
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreError(
                f"cannot use {self._root} as a local cache folder: {exc.strerror or exc}; "
                "give another folder"
            ) from None
        self._max = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._total = 0
        self._scanned = False

    def _scan(self) -> None:
        """Count the folder's cached files (lock held), once, before the first write.

        Only files named as keys are the cache's: anything else in the folder is
        left alone (never counted, never evicted). Temporaries of writers that
        died are removed once they are an hour old.
        """
        if self._scanned:
            return
        self._scanned = True
        now = time.time()
        for folder_, _, names in os.walk(self._root):
            for name in names:
                path = os.path.join(folder_, name)
                key = os.path.relpath(path, self._root).replace(os.sep, "/")
                try:
                    if name.endswith(".partial"):
                        if _KEY.fullmatch(key[: key.rindex(".", 0, -len(".partial"))]) and (
                            now - os.stat(path).st_mtime > _STALE_SECONDS
                        ):
                            os.unlink(path)
                    elif _KEY.fullmatch(key) and key not in self._sizes:
                        self._sizes[key] = os.stat(path).st_size
                except (OSError, ValueError):  # gone meanwhile (another process evicted it)
                    continue
        self._total = sum(self._sizes.values())

    @property
    def folder(self) -> Path:
        """The cache's folder."""
        return self._root

    @property
    def nbytes(self) -> int:
        """Bytes this object counts in the folder (scanning it first if it has not yet)."""
        with self._lock:
            self._scan()
            return self._total

    def path(self, key: str) -> str | None:
        """The file holding ``key``, marked as just used; None if it is not cached."""
        path = os.path.join(self._root, key)
        try:
            os.utime(path)
        except FileNotFoundError:
            with self._lock:
                self._forget(key)
            return None
        except OSError:  # not ours to touch (another user's, a read-only mount): still there
            return path if os.path.isfile(path) else None
        return path

    def get(self, key: str) -> bytes | None:
        """The cached bytes of ``key``, or None (a copy failing its seal is removed: a miss)."""
        path = self.path(key)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:  # evicted by another process meanwhile, or unreadable: a miss
            return None
        if not is_sealed(key):
            return raw
        data = _unseal(raw)
        if data is None:
            self.drop(key)
        return data

    def put(self, key: str, data: bytes | memoryview) -> None:
        """Keep ``data`` as ``key`` (not if it is bigger than the whole cache); then evict.

        A full disk or an unwritable folder only means nothing is cached.
        """
        raw = _seal(data) if is_sealed(key) else bytes(data)
        if len(raw) > self._max:
            return
        path = os.path.join(self._root, key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, raw)
        except OSError:
            return
        with self._lock:
            self._scan()
            self._total += len(raw) - self._sizes.get(key, 0)
            self._sizes[key] = len(raw)
            if self._total > self._max:
                self._evict()

    def drop(self, key: str) -> None:
        """Remove ``key`` if it is cached (its copy failed a check)."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self._root, key))
        with self._lock:
            self._forget(key)

    def drop_folder(self, prefix: str) -> bool:
        """Remove every key under ``prefix/`` (an array's objects); whether any was cached."""
        folder = os.path.join(self._root, prefix)
        try:
            names = os.listdir(folder)
        except OSError:
            return False
        for name in names:
            self.drop(f"{prefix}/{name}")
        return bool(names)

    def _forget(self, key: str) -> None:
        self._total -= self._sizes.pop(key, 0)

    def _evict(self) -> None:
        """Remove least recently used files until the total is at most ``max_bytes``."""

        def mtime(key: str) -> float:
            try:
                return os.stat(os.path.join(self._root, key)).st_mtime
            except OSError:
                return 0.0

        for key in sorted(self._sizes, key=mtime):
            if self._total <= self._max:
                break
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._root, key))
            self._forget(key)

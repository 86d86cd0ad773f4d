"""A local folder of objects read from an object store: bounded in bytes, least recently used out.

`S3BlobStore` keeps here what it reads whole (``zarr.json``, ``compstore.sums``,
documents, arrays' data files), under their keys, so that reading them again
costs no request. Objects are content-addressed and never change, so a cached
copy is never stale; it may be damaged (a disk, a bad write), so the store
checks what it reads from here as it checks what it fetches (digest or
per-part checksums) and, on a mismatch, drops the copy and fetches again.

Files are written through a temporary and renamed (`write_atomic`), so
processes may share a folder. A hit sets the file's mtime: eviction removes
the oldest mtimes first until the folder holds at most ``max_bytes``. The
total is counted by this object (the folder is scanned once when opened);
processes sharing a folder each bound what they count.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

from compstore.cas._atomic import write_atomic
from compstore.errors import BlobStoreError

__all__ = ["ObjectCache"]

# The names of cached objects: an array's files and a document (32 hex digits a digest).
_KEY = re.compile(
    r"arrays/[0-9a-f]{2}/[0-9a-f]{32,64}/(zarr\.json|compstore\.sums|c(/0)*|c(\.0)*)"
    r"|documents/[0-9a-f]{2}/[0-9a-f]{32,64}\.json"
)
_STALE_SECONDS = 3600


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
        now = time.time()
        # Only files named as keys are the cache's: anything else in the folder is
        # left alone (never counted, never evicted). Temporaries of writers that
        # died are removed once they are an hour old.
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
                    elif _KEY.fullmatch(key):
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
        """Bytes this object counts in the folder."""
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
        """The cached bytes of ``key``, or None."""
        path = self.path(key)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:  # evicted by another process meanwhile, or unreadable: a miss
            return None

    def put(self, key: str, data: bytes | memoryview) -> None:
        """Keep ``data`` as ``key`` (not if it is bigger than the whole cache); then evict.

        A full disk or an unwritable folder only means nothing is cached.
        """
        if len(data) > self._max:
            return
        path = os.path.join(self._root, key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, bytes(data))
        except OSError:
            return
        with self._lock:
            self._total += len(data) - self._sizes.get(key, 0)
            self._sizes[key] = len(data)
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

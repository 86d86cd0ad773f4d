"""Folders that stock zarr opens by path, for arrays a read-only repository keeps in packs.

`Butler.component_path` returns an array's zarr folder inside the repository;
a small array kept in a pack (format 2) is first written out there. When the
repository cannot be written (a newer format opened read-only, files or mount
read-only), the folder is written instead under a per-user cache folder,
outside the repository: ``$COMPSTORE_CACHE_DIR``, else
``$XDG_CACHE_HOME/compstore``, else ``~/.cache/compstore``, at
``arrays/<d[:2]>/<d>`` (named by digest only, never by a user string). Its
files are the pack member's bytes, checked against the digest before they
are written, and published by one rename, so a reader never sees half a folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..cas import LocalBlobStore
from ..errors import BlobStoreError

__all__ = ["cache_root", "outside_folder"]


def cache_root() -> Path:
    """The per-user folder that holds array folders written outside read-only repositories."""
    explicit = os.environ.get("COMPSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "compstore"


def outside_folder(blobs: LocalBlobStore, digest: str) -> Path:
    """The zarr folder of array ``digest``, without writing into the repository.

    An array stored as a folder is that folder; a packed one is written out
    under `cache_root` (once; later calls find it).

    Raises
    ------
    CorruptBlobError
        If the packed array fails its digest.
    BlobStoreError
        If the cache folder cannot be written either (the message names it and
        how to choose another).
    """
    inside = blobs.root / f"arrays/{digest[:2]}/{digest}"
    files = blobs.packed_array_files(digest)
    if files is None:
        blobs.component_path(digest)  # raises BlobNotFoundError for an absent array
        return Path(inside)
    target = cache_root() / "arrays" / digest[:2] / digest
    if (target / "zarr.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            with contextlib.suppress(FileExistsError, OSError):
                os.rename(tmp, target)  # another process may have published it first
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise BlobStoreError(
            f"array {digest} is kept in a pack of a read-only repository, and its zarr folder "
            f"cannot be written to {target.parent} either ({exc}); set COMPSTORE_CACHE_DIR to "
            "a writable folder"
        ) from exc
    if not (target / "zarr.json").is_file():
        raise BlobStoreError(f"array {digest}: its folder did not appear in {target.parent}")
    return target

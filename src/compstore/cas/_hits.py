"""The check a format 3 writer makes on a digest hit: the stored bytes are the ones put.

A put whose digest is stored already writes nothing (deduplication). With
``compare_on_hit`` (every format 3 repository: `LocalBlobStore`, and
`S3BlobStore`, which reads the bucket's copy) the writer
(`BlobStore.check_hit`, on every put and on a copy between stores)
first reads the stored component back, checked against its digest as every
read is, and compares it with what it was asked to put. A difference means a
digest collision (xxh3-128 is not collision resistant: content can be made to
collide with a known component) or a component damaged or replaced under its
name; either way the put fails rather than silently sharing other bytes
(``docs/spec/format.md``, "Threat model").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compstore.errors import CorruptBlobError

if TYPE_CHECKING:
    from compstore.cas._store import BlobStore

__all__ = ["check_same_array", "check_same_document"]


def _differs(kind: str, digest: str) -> CorruptBlobError:
    return CorruptBlobError(
        f"{kind} {digest} is stored with other content than the one being put under that "
        "digest: a digest collision, or a component replaced under its name. Nothing was "
        "written; run `compstore verify --deep`, and share a repository with writers who "
        "are not trusted only if it was created with `--digest blake3`"
    )


def check_same_document(store: BlobStore, digest: str, data: bytes) -> None:
    """Raise unless document ``digest`` in ``store`` holds exactly ``data``.

    Raises
    ------
    CorruptBlobError
        If it holds other bytes, or they do not match their digest.
    """
    if store.get_document(digest) != data:
        raise _differs("document", digest)


def check_same_array(store: BlobStore, digest: str, array: np.ndarray) -> None:
    """Raise unless array ``digest`` in ``store`` has ``array``'s dtype, shape and bytes.

    Raises
    ------
    CorruptBlobError
        If it differs, or does not match its digest.
    """
    stored = store.get_array(digest)
    same = stored.dtype == array.dtype and stored.shape == array.shape
    if same and array.size:
        # Bytes, not values: NaN payloads and -0.0 count.
        a = np.ascontiguousarray(stored).reshape(-1).view(np.uint8)
        b = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        same = bool(np.array_equal(a, b))
    if not same:
        raise _differs("array", digest)

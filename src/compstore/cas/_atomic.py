"""Small file-system primitives for write-once, atomic, durable files.

The atomic write and the syncs are `compstore._atomic`'s (one helper for the
blob store, the repository config and the FITS writers); this module adds
`write_new`, the blob store's exclusive create whose fsyncs the caller batches.
"""

from __future__ import annotations

from compstore._atomic import fsync_dir, fsync_file, partial_name, write_atomic

__all__ = ["fsync_dir", "fsync_file", "partial_name", "write_atomic", "write_new"]


def write_new(path: str, data: bytes | memoryview) -> None:
    """Write ``data`` to a new file ``path`` (no fsync; the caller batches those)."""
    with open(path, "xb") as f:
        f.write(data)

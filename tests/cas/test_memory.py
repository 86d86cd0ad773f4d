"""MemoryBlobStore passes the blob-store conformance suite."""

from __future__ import annotations

import pathlib

from compstore.cas import BlobStore, MemoryBlobStore
from compstore.testing.blobstore import BlobStoreTests


class TestMemoryBlobStore(BlobStoreTests):
    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return MemoryBlobStore()

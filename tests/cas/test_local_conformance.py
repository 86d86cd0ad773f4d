"""LocalBlobStore passes the blob-store conformance suite, durable and not."""

from __future__ import annotations

import pathlib

from compstore.cas import BlobStore, LocalBlobStore
from compstore.testing.blobstore import BlobStoreTests


class TestLocalBlobStore(BlobStoreTests):
    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    def reopen_read_only(self, store: BlobStore, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs", read_only=True)


class TestLocalBlobStoreNoFsync(BlobStoreTests):
    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs", fsync=False)


class TestLocalBlobStorePacks(BlobStoreTests):
    """Format 2: small components in packs (every component of these tests is small)."""

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs", packs=True)

    def reopen_read_only(self, store: BlobStore, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs", packs=True, read_only=True)


class TestLocalBlobStorePacksNoFsync(BlobStoreTests):
    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)

"""S3BlobStore against a real S3-compatible server on loopback (moto's, tests/conftest.py)."""

from __future__ import annotations

import pathlib
import uuid

import numpy as np
import pytest

from compstore.cas import BlobStore, S3BlobStore
from compstore.testing.blobstore import BlobStoreTests


class TestS3BlobStore(BlobStoreTests):
    """The shipped conformance suite, unchanged; each store in a fresh prefix of one bucket."""

    @pytest.fixture(autouse=True)
    def _server(self, s3_server, s3_bucket):  # type: ignore[no-untyped-def]
        self.server = s3_server
        self.bucket = s3_bucket

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        # The state machine makes many stores per test: one prefix each, one bucket.
        prefix = f"stores/{uuid.uuid4().hex}"
        return S3BlobStore(self.bucket, prefix, **self.server.store_options())

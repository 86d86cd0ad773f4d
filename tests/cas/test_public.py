"""compstore.cas exports exactly its public names."""

from __future__ import annotations

import compstore.cas as cas


def test_all() -> None:
    assert sorted(cas.__all__) == [
        "ArrayInfo",
        "BLAKE3",
        "BlobStore",
        "DigestAlgorithm",
        "InvalidDigestError",
        "InvalidRegionError",
        "LocalBlobStore",
        "MemoryBlobStore",
        "S3BlobStore",
        "XXH3_128",
        "canonical_json",
        "check_array",
        "check_digest",
        "digest_algorithm",
        "digest_array",
        "digest_bytes",
        "digest_json",
        "is_digest",
        "jcs",
        "parse_json",
    ]
    for name in cas.__all__:
        # the blob-store errors live in compstore.errors, the one error tree
        assert getattr(cas, name).__module__.startswith(("compstore.cas", "compstore.errors"))


def test_error_tree() -> None:
    from compstore.errors import BlobStoreError, CompstoreError

    for cls, code in [
        (cas.InvalidDigestError, "digest-invalid"),
        (cas.InvalidRegionError, "region-invalid"),
    ]:
        assert issubclass(cls, BlobStoreError) and issubclass(cls, ValueError)
        assert issubclass(cls, CompstoreError)
        assert cls.code == code

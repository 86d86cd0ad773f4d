"""MemoryBlobStore passes the blob-store conformance suite."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from compstore.cas import BLAKE3, XXH3_128, BlobStore, DigestAlgorithm, MemoryBlobStore
from compstore.errors import CorruptBlobError
from compstore.testing.blobstore import BlobStoreTests
from compstore.testing.digests import colliding_per_kind


class TestMemoryBlobStore(BlobStoreTests):
    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        return MemoryBlobStore()



class _Defaults(MemoryBlobStore):
    """A MemoryBlobStore on `BlobStore`'s own put_new_array (it keeps its put_new_document)."""

    put_new_array = BlobStore.put_new_array


@pytest.mark.parametrize("algorithm", [XXH3_128, BLAKE3], ids=lambda a: a.name)
def test_every_put_names_components_by_the_store_algorithm(algorithm: DigestAlgorithm) -> None:
    data, array = b'{"a":1}', np.arange(6, dtype="<i4").reshape(2, 3)
    for store in (MemoryBlobStore(algorithm), _Defaults(algorithm)):
        expected = algorithm.digest_bytes(data)
        assert store.put_new_document(data) == (expected, True)
        assert store.put_new_document(data) == (expected, False)
        assert store.put_document(data) == expected and store.get_document(expected) == data
        expected = algorithm.digest_array(array)
        assert store.put_new_array(array) == (expected, True)
        assert store.put_new_array(array) == (expected, False)
        assert store.put_array(array) == expected and list(store.iter_arrays()) == [expected]


class _Comparing(_Defaults):
    """A store that compares on a hit and names everything of a kind alike (`BlobStore`'s puts)."""

    def __init__(self) -> None:
        super().__init__(colliding_per_kind())

    @property
    def compare_on_hit(self) -> bool:
        return True


def test_the_default_puts_compare_on_a_hit_when_the_store_says_so() -> None:
    store = _Comparing()
    document, _ = store.put_new_document(b'{"a":1}')
    assert store.put_new_document(b'{"a":1}') == (document, False)
    with pytest.raises(CorruptBlobError, match=f"document {document}"):
        store.put_new_document(b'{"a":2}')
    array, _ = store.put_new_array(np.zeros(3))
    assert store.put_new_array(np.zeros(3)) == (array, False)
    with pytest.raises(CorruptBlobError, match=f"array {array}"):
        store.put_new_array(np.ones(3))
    with pytest.raises(CorruptBlobError, match=f"array {array}"):
        store.put_new_array(np.zeros(3, dtype="<f4"))  # same values, other dtype
    store.check_hit(array, np.zeros(3))  # what a copy between stores calls
    assert not MemoryBlobStore().compare_on_hit

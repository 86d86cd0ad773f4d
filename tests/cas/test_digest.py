"""Digests: equal content gives equal digests, any difference a different one."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compstore.cas import (
    InvalidDigestError,
    canonical_json,
    check_digest,
    digest_array,
    digest_bytes,
    is_digest,
)
from compstore.cas._digest import ARRAY_TAG, BYTES_TAG, array_bytes, array_hasher, array_header
from compstore.errors import EncodingError

DTYPES = st.sampled_from(
    [np.dtype(d) for d in ["|b1", "|i1", "<i2", ">i2", "<i4", ">u4", "<i8", "<f2",
                           "<f4", ">f4", "<f8", ">f8", "<c8", ">c16", "|u1"]]
)  # fmt: skip
arrays = hnp.arrays(dtype=DTYPES, shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0))


def test_format_pinned() -> None:
    # These exact values are part of the on-disk format (docs/spec/format.md, "Digests").
    assert digest_bytes(b"") == xxhash.xxh3_128_hexdigest(b"compstore:bytes:1\x00")
    a = np.array([[1, 2, 3]], dtype="<i4")
    expected = xxhash.xxh3_128_hexdigest(
        b'compstore:array:1\x00{"dtype":"<i4","shape":[1,3]}\x00' + a.tobytes()
    )
    assert digest_array(a) == expected


def test_fast_header_is_canonical_json() -> None:
    for dtype in ["<f4", ">f8", "|b1", "<M8[ns]", "<c16"]:
        for shape in [(), (0,), (3, 4, 5)]:
            expected = canonical_json({"dtype": np.dtype(dtype).str, "shape": list(shape)})
            assert array_header(np.dtype(dtype), shape) == expected


@given(st.binary())
def test_digest_bytes_is_xxh3_128_hex(data: bytes) -> None:
    digest = digest_bytes(data)
    assert is_digest(digest)
    assert digest == xxhash.xxh3_128_hexdigest(BYTES_TAG + data)
    assert digest_bytes(bytearray(data)) == digest == digest_bytes(memoryview(data))


@given(arrays)
def test_equal_content_equal_digest(array: np.ndarray) -> None:
    digest = digest_array(array)
    assert is_digest(digest)
    assert digest_array(array.copy()) == digest
    assert digest_array(np.array(array, order="F")) == digest  # asfortranarray makes 0-d 1-d


@given(arrays, st.lists(st.integers(0, 1 << 16), max_size=5))
def test_hashing_in_pieces_gives_the_digest(array: np.ndarray, cuts: list[int]) -> None:
    # What a store that hashes while it writes does (LocalBlobStore.put_new_array).
    hasher = array_hasher(array.dtype, array.shape)
    data = array_bytes(np.ascontiguousarray(array).reshape(array.shape))
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in zip(bounds, bounds[1:]):
        hasher.update(data[start:end])
    assert hasher.hexdigest() == digest_array(array)


@given(hnp.arrays(dtype=DTYPES, shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2)))
def test_views_hash_as_their_contiguous_copy(array: np.ndarray) -> None:
    for view in (array[::2], array[:, ::-1], array.swapaxes(0, 1), array[1:, 1:]):
        assert digest_array(view) == digest_array(np.ascontiguousarray(view))


@given(arrays, arrays)
def test_different_arrays_different_digests(a: np.ndarray, b: np.ndarray) -> None:
    same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert (digest_array(a) == digest_array(b)) == same


@given(hnp.arrays(dtype=st.sampled_from(["<f4", "<i4", "<f8", "<u2", "<c8"]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)))  # fmt: skip
def test_byte_order_is_hashed(array: np.ndarray) -> None:
    swapped = array.astype(array.dtype.newbyteorder(">"))
    # Same values, other byte order: a different component.
    assert np.array_equal(swapped, array, equal_nan=array.dtype.kind in "fc")
    assert digest_array(swapped) != digest_array(array)


@settings(max_examples=50)
@given(hnp.arrays(dtype=st.sampled_from(["<f4", "<i2", "|u1"]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1)),
       st.data())  # fmt: skip
def test_one_changed_value_changes_the_digest(array: np.ndarray, data: st.DataObject) -> None:
    index = tuple(data.draw(st.integers(0, n - 1)) for n in array.shape)
    changed = array.copy()
    flat = changed.view(np.uint8).reshape(-1)
    pos = np.ravel_multi_index(index, array.shape) * array.itemsize
    flat[pos] ^= 0x01
    assert digest_array(changed) != digest_array(array)


def test_shape_dtype_and_kind_are_hashed() -> None:
    a = np.arange(12, dtype="<i4")
    digests = {
        digest_array(a),
        digest_array(a.reshape(3, 4)),
        digest_array(a.reshape(4, 3)),
        digest_array(a.reshape(1, 12)),
        digest_array(a.view("<u4")),
        digest_array(a.view("<f4")),
        digest_array(a.view("|u1")),
        digest_bytes(a.tobytes()),
        digest_bytes(ARRAY_TAG + a.tobytes()),
    }
    assert len(digests) == 9
    assert digest_array(np.zeros((0, 3))) != digest_array(np.zeros((3, 0)))
    assert digest_array(np.array(0.0)) != digest_array(np.zeros(1))


def test_structured_dtypes() -> None:
    a = np.zeros(3, dtype=[("x", "<f4"), ("y", "<i2")])
    b = np.zeros(3, dtype=[("x", "<f4"), ("z", "<i2")])
    assert is_digest(digest_array(a))
    assert digest_array(a) != digest_array(b)


@pytest.mark.parametrize(
    "bad",
    [np.array([1, None], dtype=object), np.zeros(2, dtype=[("a", "<f4"), ("b", object)])],
    ids=["object", "structured-with-object"],
)
def test_object_arrays_rejected(bad: np.ndarray) -> None:
    with pytest.raises(EncodingError):
        digest_array(bad)


def test_digest_bytes_rejects_text() -> None:
    with pytest.raises(EncodingError):
        digest_bytes("abc")  # type: ignore[arg-type]


def test_check_digest() -> None:
    good = digest_bytes(b"x")
    assert check_digest(good) == good
    for bad in ["", good.upper(), good[:-1], good + "0", "../" + good[3:], None, 3, good.encode()]:
        assert not is_digest(bad)
        with pytest.raises(InvalidDigestError, match="not a digest"):
            check_digest(bad)
        with pytest.raises(ValueError):
            check_digest(bad)

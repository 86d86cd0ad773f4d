"""``BlobStoreTests``: the conformance suite every blob-store backend passes.

Subclass it in a test module and implement :meth:`BlobStoreTests.make_store`::

    class TestMyStore(BlobStoreTests):
        def make_store(self, tmp_path):
            return MyBlobStore(tmp_path / "blobs")

The suite checks round trips over every supported dtype and many shapes,
region reads against numpy slicing, idempotent puts, has/delete/iter,
documents, read-only results, errors, and runs a Hypothesis state machine
that compares the store with a plain-dict model. Backend-specific behaviour
(files on disk, zarr interoperability, durability) is tested beside each
backend, not here.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Callable
from types import EllipsisType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from compstore.cas import (
    BlobStore,
    InvalidDigestError,
    InvalidRegionError,
    canonical_json,
    digest_array,
    digest_bytes,
    digest_json,
)
from compstore.errors import BlobNotFoundError, BlobStoreError, EncodingError

__all__ = ["DTYPES", "SHAPES", "BlobStoreTests", "BlobStoreStateMachine"]

DTYPES: list[str] = [
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
    "<f2", "<f4", "<f8", "<c8", "<c16",
    ">i2", ">i4", ">u8", ">f4", ">f8", ">c16",
]  # fmt: skip
"""Every dtype a blob store must hold, byte order included."""

SHAPES: list[tuple[int, ...]] = [
    (), (0,), (1,), (17,), (3, 4), (0, 5), (5, 0), (1, 1),
    (600, 530), (2, 3, 4), (3, 513, 7), (2, 2, 2, 2),
]  # fmt: skip
"""Shapes covering 0-d, empty axes, 1-D to 4-D, and edge chunks of 512x512 tiles."""

MISSING = "0123456789abcdef0123456789abcdef"
BAD_DIGESTS: list[Any] = [
    "",
    "../../../../etc/passwd",
    "0123456789ABCDEF0123456789ABCDEF",  # upper case
    "0123456789abcdef0123456789abcde",  # 31 characters
    "0123456789abcdef0123456789abcdef0",  # 33
    "0123456789abcdef0123456789abcdeg",
    "0123456789abcdef/123456789abcdef",
    " 123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef\n",
    b"0123456789abcdef0123456789abcdef",
    None,
    12,
]


def sample_array(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Return a deterministic array with varied values (not all zero) of ``dtype``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dt.kind == "b":
        values: np.ndarray = rng.random(n) < 0.3
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        values = rng.integers(info.min, info.max, size=n, dtype=dt.newbyteorder("="), endpoint=True)
    elif dt.kind == "f":
        values = rng.normal(100.0, 30.0, size=n)
    else:
        values = rng.normal(size=n) + 1j * rng.normal(size=n)
    return values.astype(dt).reshape(shape)


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape
    # Bit for bit (NaN-safe): compare the raw bytes in C order.
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


class BlobStoreTests:
    """Conformance tests; subclasses implement :meth:`make_store`."""

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        """Return a new, empty store; ``tmp_path`` is a fresh folder it may use."""
        raise NotImplementedError

    def reopen_read_only(self, store: BlobStore, tmp_path: pathlib.Path) -> BlobStore | None:
        """Return a read-only store over ``store``'s components (synced), or None.

        None (the default) skips the read-only tests: a backend that can be
        opened read-only overrides this.
        """
        return None

    @pytest.fixture
    def store(self, tmp_path: pathlib.Path) -> BlobStore:
        return self.make_store(tmp_path)

    # -- what the store says about itself ---------------------------------------
    def test_durable_read_only_location(self, store: BlobStore) -> None:
        assert isinstance(store.durable, bool)
        assert store.read_only is False  # make_store makes a store to write into
        assert isinstance(store.location, str) and store.location

    def test_a_read_only_store_refuses_every_write(
        self, store: BlobStore, tmp_path: pathlib.Path
    ) -> None:
        array = sample_array("<f4", (3, 4))
        a = store.put_array(array)
        d = store.put_document(b'{"a":1}')
        store.sync()
        reader = self.reopen_read_only(store, tmp_path)
        if reader is None:
            pytest.skip("this backend is not opened read-only")
        assert reader.read_only is True
        _assert_same(reader.get_array(a), array)
        assert reader.get_document(d) == b'{"a":1}'
        other = sample_array("<i2", (5,))
        writes: list[Callable[[], Any]] = [
            lambda: reader.put_array(other),
            lambda: reader.put_array(array),  # present already: refused all the same
            lambda: reader.put_new_array(other),
            lambda: reader.put_document(b"[]"),
            lambda: reader.delete(a),
            lambda: reader.delete(d),
        ]
        for write in writes:
            with pytest.raises(BlobStoreError, match="read-only"):
                write()
        reader.sync()
        reader.close()  # nothing to write: both do nothing
        assert sorted(store.iter_arrays()) == [a]
        assert sorted(store.iter_documents()) == [d]

    # -- arrays ---------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_round_trip_dtypes(self, store: BlobStore, dtype: str) -> None:
        for shape in [(), (5,), (3, 4)]:
            array = sample_array(dtype, shape)
            digest = store.put_array(array)
            assert digest == digest_array(array)
            got = store.get_array(digest)
            _assert_same(got, array)
            assert digest_array(got) == digest

    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_round_trip_shapes(self, store: BlobStore, shape: tuple[int, ...]) -> None:
        for dtype in ["<f4", "<i4", "|b1", ">f8"]:
            array = sample_array(dtype, shape, seed=len(shape))
            digest = store.put_array(array)
            _assert_same(store.get_array(digest), array)
            info = store.array_info(digest)
            assert info.shape == shape
            assert info.dtype == array.dtype
            assert info.stored_bytes == store.stored_bytes(digest)
            assert info.stored_bytes > 0 or array.size == 0

    def test_round_trip_long_column(self, store: BlobStore) -> None:
        # Longer than one 4 MiB chunk of a 1-D column: exercises 1-D edge chunks.
        array = np.arange(1_100_003, dtype="<f4")
        _assert_same(store.get_array(store.put_array(array)), array)

    def test_non_contiguous_input(self, store: BlobStore) -> None:
        base = sample_array("<f4", (40, 30))
        for view in (base[::2, 1::3], base.T, base[:, ::-1]):
            digest = store.put_array(view)
            assert digest == digest_array(np.ascontiguousarray(view))
            _assert_same(store.get_array(digest), np.ascontiguousarray(view))

    def test_put_with_digest_trusts_caller(self, store: BlobStore) -> None:
        array = sample_array("<i4", (4, 4))
        digest = digest_array(array)
        assert store.put_array(array, digest=digest) == digest
        _assert_same(store.get_array(digest), array)

    def test_reput_is_idempotent(self, store: BlobStore) -> None:
        array = sample_array("<f4", (700, 600))
        digest = store.put_array(array)
        store.sync()
        size = store.stored_bytes(digest)
        assert store.put_array(array.copy()) == digest
        assert store.put_array(store.get_array(digest), digest=digest) == digest
        store.sync()
        assert store.stored_bytes(digest) == size
        assert list(store.iter_arrays()) == [digest]

    @pytest.mark.parametrize(
        "dtype, shape",
        [("<f4", (600, 530)), ("<i4", (600, 530)), (">f8", (3, 513, 7)), ("|b1", (17,)),
         ("<f4", (1024, 1024)), ("<i4", (1024, 1024)), ("<f8", (0, 5)), ("<i8", ())],
        ids=str,
    )  # fmt: skip
    def test_put_new_array(self, store: BlobStore, dtype: str, shape: tuple[int, ...]) -> None:
        # Big float planes are stored raw (hashed while written), big int ones compressed.
        array = sample_array(dtype, shape, seed=3)
        digest, stored = store.put_new_array(array)
        assert (digest, stored) == (digest_array(array), True)
        assert store.put_new_array(array.copy()) == (digest, False)  # present: not stored twice
        assert store.put_array(array) == digest
        store.sync()
        _assert_same(store.get_array(digest), array)
        assert list(store.iter_arrays()) == [digest]
        assert store.array_info(digest).shape == shape

    def test_put_new_array_of_a_stored_array_keeps_one_copy(self, store: BlobStore) -> None:
        array = sample_array("<f4", (700, 600))
        digest = store.put_array(array)
        store.sync()
        size = store.stored_bytes(digest)
        assert store.put_new_array(np.array(array)) == (digest, False)
        store.sync()
        assert list(store.iter_arrays()) == [digest]
        assert store.stored_bytes(digest) == size

    def test_put_new_array_non_contiguous(self, store: BlobStore) -> None:
        base = sample_array("<f4", (1100, 600))
        view = base[::2, ::-1]
        digest, stored = store.put_new_array(view)
        assert stored and digest == digest_array(np.ascontiguousarray(view))
        _assert_same(store.get_array(digest), np.ascontiguousarray(view))

    @pytest.mark.parametrize("bad", [np.array(["ab", "c"]), np.zeros(2, dtype="M8[s]")], ids=str)
    def test_put_new_array_refuses_what_put_array_refuses(
        self, store: BlobStore, bad: np.ndarray
    ) -> None:
        with pytest.raises(EncodingError):
            store.put_new_array(bad)
        with pytest.raises(EncodingError):
            store.put_new_array([1, 2, 3])  # type: ignore[arg-type]
        store.sync()
        assert list(store.iter_arrays()) == []

    def test_result_is_read_only(self, store: BlobStore) -> None:
        array = sample_array("<f8", (20, 20))
        digest = store.put_array(array)
        for got in (store.get_array(digest), store.get_array(digest, (slice(2, 5),))):
            assert not got.flags.writeable
            with pytest.raises(ValueError):
                got[0, 0] = 1.0
            # Results may be shared (identity cache): they cannot be unlocked either.
            with pytest.raises(ValueError):
                got.flags.writeable = True
        _assert_same(store.get_array(digest), array)

    def test_caller_mutation_after_put(self, store: BlobStore) -> None:
        array = sample_array("<i8", (10, 10))
        expected = array.copy()
        digest = store.put_array(array)
        array[...] = 0
        _assert_same(store.get_array(digest), expected)

    @pytest.mark.parametrize(
        "region",
        [
            (slice(None),),
            (slice(0, 1), slice(0, 1)),
            (slice(100, 200), slice(50, 150)),
            (slice(500, 530), slice(510, 530)),  # crosses chunk edges
            (slice(-30, None), slice(-3, None)),
            (slice(None, None, 7), slice(3, 500, 11)),
            (slice(None, None, -1), slice(529, 2, -5)),
            (slice(10, 10), slice(None)),
            (slice(700, 900),),
            (slice(5, 2),),
            slice(3, 9),
        ],
        ids=str,
    )
    def test_region_equals_slicing(self, store: BlobStore, region: Any) -> None:
        array = sample_array("<f4", (600, 530))
        digest = store.put_array(array)
        got = store.get_array(digest, region)
        key = region if isinstance(region, slice) else tuple(region)
        _assert_same(got, np.ascontiguousarray(array[key]))
        assert not got.flags.writeable

    @pytest.mark.parametrize("shape", [(), (17,), (2, 3, 4), (3, 513, 7)], ids=str)
    def test_region_other_ranks(self, store: BlobStore, shape: tuple[int, ...]) -> None:
        array = sample_array("<u2", shape)
        digest = store.put_array(array)
        region = tuple(slice(n // 3, n - n // 4) for n in shape)
        index: tuple[slice | EllipsisType, ...] = (*region, Ellipsis)
        _assert_same(store.get_array(digest, region), array[index])
        _assert_same(store.get_array(digest, ()), array)

    @pytest.mark.parametrize(
        "region", [(0,), (slice(None),) * 3, (Ellipsis,), "x", (slice(None), 1.5)], ids=str
    )
    def test_bad_region(self, store: BlobStore, region: Any) -> None:
        digest = store.put_array(sample_array("<f4", (4, 4)))
        with pytest.raises(InvalidRegionError):
            store.get_array(digest, region)
        with pytest.raises(ValueError):
            store.get_array(digest, region)

    @pytest.mark.parametrize(
        "bad",
        [
            np.array([object()], dtype=object),
            np.zeros(3, dtype=[("a", "<f4"), ("b", object)]),
            np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]),
            np.array(["ab", "c"]),
            np.array([b"ab"]),
            np.zeros(2, dtype="M8[s]"),
        ],
        ids=lambda a: str(a.dtype),
    )
    def test_unsupported_dtypes(self, store: BlobStore, bad: np.ndarray) -> None:
        with pytest.raises(EncodingError):
            store.put_array(bad)
        assert list(store.iter_arrays()) == []

    def test_put_array_needs_an_ndarray(self, store: BlobStore) -> None:
        with pytest.raises(EncodingError):
            store.put_array([1, 2, 3])  # type: ignore[arg-type]

    # -- documents ------------------------------------------------------------
    def test_documents(self, store: BlobStore) -> None:
        value = {"b": [1, 2.5, None], "a": "é", "c": {"z": True}}
        data = canonical_json(value)
        digest = store.put_document(data)
        assert digest == digest_bytes(data) == digest_json(value)
        assert store.get_document(digest) == data
        assert store.has_document(digest)
        assert not store.has_array(digest)
        assert store.stored_bytes(digest) >= len(data)
        assert store.put_document(bytearray(data)) == digest
        assert list(store.iter_documents()) == [digest]
        empty = store.put_document(b"")
        assert store.get_document(empty) == b""
        assert sorted([digest, empty]) == list(store.iter_documents())

    def test_document_with_digest_trusts_caller(self, store: BlobStore) -> None:
        data = b'{"x":1}'
        digest = digest_bytes(data)
        assert store.put_document(memoryview(data), digest=digest) == digest
        assert store.get_document(digest) == data

    def test_put_new_document(self, store: BlobStore) -> None:
        data = canonical_json({"x": [1, 2]})
        digest = digest_bytes(data)
        assert store.put_new_document(data) == (digest, True)
        assert store.put_new_document(bytearray(data)) == (digest, False)
        assert store.put_new_document(data, digest=digest) == (digest, False)
        assert store.put_document(data) == digest
        assert store.get_document(digest) == data
        assert list(store.iter_documents()) == [digest]
        other = b'{"y":2}'
        assert store.put_document(other) == digest_bytes(other)
        assert store.put_new_document(memoryview(other)) == (digest_bytes(other), False)
        with pytest.raises(EncodingError):
            store.put_new_document("text")  # type: ignore[arg-type]

    def test_document_must_be_bytes(self, store: BlobStore) -> None:
        with pytest.raises(EncodingError):
            store.put_document("text")  # type: ignore[arg-type]

    def test_kinds_are_separate(self, store: BlobStore) -> None:
        array = np.frombuffer(b"0123456789abcdef", dtype="|u1")
        a = store.put_array(array)
        d = store.put_document(array.tobytes())
        assert a != d
        assert store.has_array(a) and not store.has_document(a)
        assert store.has_document(d) and not store.has_array(d)
        with pytest.raises(BlobNotFoundError):
            store.get_document(a)
        with pytest.raises(BlobNotFoundError):
            store.get_array(d)

    # -- has / delete / iter --------------------------------------------------
    def test_has_delete_iter(self, store: BlobStore) -> None:
        arrays = [store.put_array(sample_array("<i4", (3, 3), seed=i)) for i in range(5)]
        docs = [store.put_document(canonical_json({"i": i})) for i in range(3)]
        assert list(store.iter_arrays()) == sorted(set(arrays))
        assert list(store.iter_documents()) == sorted(docs)
        store.sync()
        store.delete(arrays[0])
        store.delete(docs[0])
        assert not store.has_array(arrays[0])
        assert not store.has_document(docs[0])
        assert list(store.iter_arrays()) == sorted(arrays[1:])
        assert list(store.iter_documents()) == sorted(docs[1:])
        with pytest.raises(BlobNotFoundError):
            store.delete(arrays[0])
        # Deleted components can be put again.
        assert store.put_array(sample_array("<i4", (3, 3), seed=0)) == arrays[0]
        store.sync()
        assert store.has_array(arrays[0])

    def test_delete_unsynced(self, store: BlobStore) -> None:
        a = store.put_array(sample_array("<f4", (3,)))
        d = store.put_document(b"{}")
        store.delete(a)
        store.delete(d)
        store.sync()
        assert list(store.iter_arrays()) == [] and list(store.iter_documents()) == []

    def test_component_path(self, store: BlobStore) -> None:
        digest = store.put_array(sample_array("<f4", (3,)))
        assert store.component_path(digest) == f"arrays/{digest[:2]}/{digest}"
        with pytest.raises(BlobNotFoundError):
            store.component_path(MISSING)

    def test_verify(self, store: BlobStore) -> None:
        a = store.put_array(sample_array("<f4", (700, 20)))
        d = store.put_document(b"[1]")
        store.sync()
        store.verify(a)
        store.verify(d)
        with pytest.raises(BlobNotFoundError):
            store.verify(MISSING)

    def test_verify_catches_a_wrong_vouched_digest(self, store: BlobStore) -> None:
        from compstore.errors import CorruptBlobError

        store.put_array(sample_array("<f4", (3,)), digest=MISSING)
        with pytest.raises(CorruptBlobError):
            store.verify(MISSING)

    def test_sync_and_close_are_repeatable(self, store: BlobStore) -> None:
        store.sync()
        digest = store.put_document(b"1")
        store.sync()
        store.sync()
        assert store.get_document(digest) == b"1"
        with store:
            pass

    # -- errors ---------------------------------------------------------------
    def test_missing_digest(self, store: BlobStore) -> None:
        calls: list[Callable[[Any], Any]] = [
            store.get_array,
            store.array_info,
            store.get_document,
            store.stored_bytes,
            store.delete,
            store.component_path,
            store.verify,
        ]
        for call in calls:
            with pytest.raises(BlobNotFoundError, match=MISSING):
                call(MISSING)
            with pytest.raises(KeyError):
                call(MISSING)
        assert not store.has_array(MISSING)
        assert not store.has_document(MISSING)

    @pytest.mark.parametrize("bad", BAD_DIGESTS, ids=repr)
    def test_malformed_digest(self, store: BlobStore, bad: Any) -> None:
        calls: list[Callable[[Any], Any]] = [
            store.get_array,
            store.array_info,
            store.has_array,
            store.get_document,
            store.has_document,
            store.stored_bytes,
            store.delete,
            store.component_path,
            store.verify,
        ]
        if bad is not None:  # None asks the store to compute the digest
            calls.append(lambda d: store.put_array(np.zeros(2), digest=d))
            calls.append(lambda d: store.put_document(b"x", digest=d))
        for call in calls:
            with pytest.raises(InvalidDigestError):
                call(bad)
            with pytest.raises(ValueError):
                call(bad)
        assert list(store.iter_arrays()) == [] and list(store.iter_documents()) == []

    # -- model-based ----------------------------------------------------------
    def test_state_machine(self) -> None:
        make_store = self.make_store

        class Machine(BlobStoreStateMachine):
            def new_store(self, tmp_path: pathlib.Path) -> BlobStore:
                return make_store(tmp_path)

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


_small_arrays = hnp.arrays(
    dtype=st.sampled_from([np.dtype(d) for d in ["|b1", "<i4", ">i2", "<f4", ">f8", "|u1"]]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)


class BlobStoreStateMachine(RuleBasedStateMachine):
    """Checks a blob store against a dict model; subclasses implement ``new_store``."""

    array_digests = Bundle("array_digests")
    document_digests = Bundle("document_digests")

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.store = self.new_store(pathlib.Path(self._tmp.name))
        self.arrays: dict[str, np.ndarray] = {}
        self.documents: dict[str, bytes] = {}

    def new_store(self, tmp_path: pathlib.Path) -> BlobStore:
        raise NotImplementedError

    def teardown(self) -> None:
        self.store.close()
        self._tmp.cleanup()

    @rule(target=array_digests, array=_small_arrays)
    def put_array(self, array: np.ndarray) -> str:
        digest = self.store.put_array(array)
        assert digest == digest_array(array)
        self.arrays.setdefault(digest, array.copy())
        return digest

    @rule(target=array_digests, array=_small_arrays)
    def put_new_array(self, array: np.ndarray) -> str:
        digest, stored = self.store.put_new_array(array)
        assert digest == digest_array(array)
        assert stored == (digest not in self.arrays)
        self.arrays.setdefault(digest, array.copy())
        return digest

    @rule(target=document_digests, data=st.binary(max_size=64))
    def put_document(self, data: bytes) -> str:
        digest = self.store.put_document(data)
        self.documents[digest] = data
        return digest

    @rule(digest=array_digests)
    def get_array(self, digest: str) -> None:
        if digest in self.arrays:
            _assert_same(self.store.get_array(digest), self.arrays[digest])
        else:
            with pytest.raises(BlobNotFoundError):
                self.store.get_array(digest)

    @rule(digest=array_digests, data=st.data())
    def get_region(self, digest: str, data: st.DataObject) -> None:
        if digest not in self.arrays:
            return
        expected = self.arrays[digest]
        region = tuple(
            slice(
                data.draw(st.none() | st.integers(-n - 1, n + 1)),
                data.draw(st.none() | st.integers(-n - 1, n + 1)),
                data.draw(st.none() | st.sampled_from([1, 2, -1, -3])),
            )
            for n in expected.shape
        )
        # [..., Ellipsis] keeps a 0-d result an array (a bare [()] gives a scalar).
        _assert_same(self.store.get_array(digest, region), expected[(*region, Ellipsis)])

    @rule(digest=document_digests)
    def get_document(self, digest: str) -> None:
        if digest in self.documents:
            assert self.store.get_document(digest) == self.documents[digest]
        else:
            with pytest.raises(BlobNotFoundError):
                self.store.get_document(digest)

    @rule(digest=consumes(array_digests))
    def delete_array(self, digest: str) -> None:
        if digest in self.arrays:
            self.store.delete(digest)
            del self.arrays[digest]
        else:
            with pytest.raises(BlobNotFoundError):
                self.store.delete(digest)

    @rule(digest=consumes(document_digests))
    def delete_document(self, digest: str) -> None:
        if digest in self.documents:
            self.store.delete(digest)
            del self.documents[digest]
        else:
            with pytest.raises(BlobNotFoundError):
                self.store.delete(digest)

    @rule()
    def sync(self) -> None:
        self.store.sync()

    @invariant()
    def listings_match(self) -> None:
        assert list(self.store.iter_arrays()) == sorted(self.arrays)
        assert list(self.store.iter_documents()) == sorted(self.documents)

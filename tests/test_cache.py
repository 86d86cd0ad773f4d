"""Tests of the identity-preserving object cache (compstore.cache)."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compstore.cache import (
    DEFAULT_MAX_BYTES,
    DEFAULT_OBJECT_SIZE,
    ObjectCache,
    default_size_of,
    shared_cache,
)

# Generous upper bound for event waits: only reached if the code under test is
# broken (a deadlock or a serialized load), never part of what is asserted.
WAIT = 30.0


class Blob:
    """A weak-referenceable stand-in for a component, with a declared size."""

    def __init__(self, nbytes: Any, tag: object = None) -> None:
        self.nbytes = nbytes
        self.tag = tag


class Counter:
    """A loader that counts its calls and makes a new Blob each time."""

    def __init__(self, nbytes: int = 10) -> None:
        self.calls = 0
        self.nbytes = nbytes

    def __call__(self) -> Blob:
        self.calls += 1
        return Blob(self.nbytes, tag=self.calls)


def frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition()`` holds; fail (not hang) if it never does."""
    event = threading.Event()
    for _ in range(int(WAIT / 0.001)):
        if condition():
            return
        event.wait(0.001)
    pytest.fail("condition never became true")


# -- identity -------------------------------------------------------------------
def test_identity_while_held() -> None:
    cache = ObjectCache(max_bytes=0)  # no LRU: identity comes from the weak map alone
    load = Counter()
    first = cache.get_or_load("d1", load)
    assert cache.get_or_load("d1", load) is first
    assert load.calls == 1
    assert cache.peek("d1") is first
    assert "d1" in cache


def test_reload_after_refs_dropped_and_lru_evicted() -> None:
    cache = ObjectCache(max_bytes=100)
    load = Counter(nbytes=60)
    obj = cache.get_or_load("a", load)
    first_tag = obj.tag
    del obj
    gc.collect()
    # The LRU still keeps it alive, though nobody else does.
    assert cache.get_or_load("a", load).tag == first_tag
    assert load.calls == 1
    # Loading another 60-byte object evicts "a" from the 100-byte LRU.
    cache.get_or_load("b", Counter(nbytes=60))
    gc.collect()
    assert "a" not in cache
    assert cache.peek("a") is None
    again = cache.get_or_load("a", load)
    assert load.calls == 2
    assert again.tag != first_tag


def test_weak_hit_keeps_identity_after_lru_eviction_and_is_promoted() -> None:
    cache = ObjectCache(max_bytes=100)
    a = cache.get_or_load("a", Counter(nbytes=60))
    cache.get_or_load("b", Counter(nbytes=60))  # evicts "a" from the LRU
    assert cache.stats()["strong_objects"] == 1
    load_a = Counter(nbytes=60)
    assert cache.get_or_load("a", load_a) is a  # still alive: same object
    assert load_a.calls == 0
    # The hit made "a" recent again, so it survives its last holder.
    a_id = id(a)
    del a
    gc.collect()
    assert id(cache.peek("a")) == a_id
    assert "b" not in cache


def test_hit_refreshes_recency() -> None:
    cache = ObjectCache(max_bytes=30)
    cache.get_or_load("a", Counter(10))
    cache.get_or_load("b", Counter(10))
    cache.get_or_load("c", Counter(10))
    cache.get_or_load("a", Counter(10))  # "a" becomes the most recent
    cache.get_or_load("d", Counter(10))  # evicts the oldest: "b"
    gc.collect()
    assert "a" in cache and "c" in cache and "d" in cache
    assert "b" not in cache


def test_peek_and_contains_do_not_load_count_or_refresh() -> None:
    cache = ObjectCache(max_bytes=20)
    load = Counter(10)
    assert cache.peek("a") is None
    assert "a" not in cache
    cache.get_or_load("a", load)
    cache.get_or_load("b", Counter(10))
    before = cache.stats()
    assert cache.peek("a") is not None and "a" in cache
    assert cache.stats() == before
    cache.get_or_load("c", Counter(10))  # "a" is still the oldest despite the peek
    gc.collect()
    assert "a" not in cache
    assert load.calls == 1


# -- the byte bound ---------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    max_bytes=st.integers(min_value=0, max_value=200),
    ops=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 120)), max_size=40),
)
def test_lru_bound_in_bytes_matches_model(max_bytes: int, ops: list[tuple[int, int]]) -> None:
    # A digest always names the same content, so its size is fixed by its first use.
    cache = ObjectCache(max_bytes=max_bytes)
    sizes: dict[str, int] = {}
    model: OrderedDict[str, int] = OrderedDict()  # digest -> size, oldest first
    for key, size in ops:
        digest = f"d{key}"
        size = sizes.setdefault(digest, size)
        # The test holds no reference: only the LRU can keep the object alive.
        cache.get_or_load(digest, lambda size=size: Blob(size))
        if digest in model:
            model.move_to_end(digest)
        elif size <= max_bytes:
            model[digest] = size
            while sum(model.values()) > max_bytes:
                model.popitem(last=False)
        stats = cache.stats()
        assert stats["strong_bytes"] <= max_bytes
        assert stats["strong_bytes"] == sum(model.values())
        assert {d for d in sizes if d in cache} == set(model)
    assert cache.stats()["live_objects"] == len(model)


def test_object_bigger_than_bound_is_only_weakly_held() -> None:
    cache = ObjectCache(max_bytes=100)
    load = Counter(nbytes=1000)
    big = cache.get_or_load("big", load)
    assert cache.stats()["strong_bytes"] == 0
    assert cache.get_or_load("big", load) is big  # identity while held
    assert load.calls == 1
    del big
    gc.collect()
    assert "big" not in cache
    cache.get_or_load("big", load)
    assert load.calls == 2


def test_size_of_overrides_default() -> None:
    cache = ObjectCache(max_bytes=100)
    cache.get_or_load("a", lambda: Blob(1), size_of=lambda obj: 70)
    assert cache.stats()["strong_bytes"] == 70


def test_default_size_of() -> None:
    assert default_size_of(np.zeros((4, 5), dtype=np.float32)) == 80
    assert default_size_of(Blob(1234)) == 1234
    assert default_size_of(Blob(np.int64(7))) == 7
    assert default_size_of(object()) == DEFAULT_OBJECT_SIZE
    assert default_size_of({"a": 1}) == DEFAULT_OBJECT_SIZE
    assert default_size_of(Blob(True)) == DEFAULT_OBJECT_SIZE  # a flag is no size
    assert default_size_of(Blob(-5)) == DEFAULT_OBJECT_SIZE


def test_numpy_arrays_are_sized_by_nbytes() -> None:
    cache = ObjectCache(max_bytes=1000)
    cache.get_or_load("a", lambda: frozen(np.zeros(100, dtype=np.float64)))  # 800 bytes
    assert cache.stats()["strong_bytes"] == 800
    cache.get_or_load("b", lambda: frozen(np.zeros(50, dtype=np.float64)))  # 400: evicts "a"
    assert cache.stats()["strong_bytes"] == 400


def test_negative_size_fails_the_load_and_caches_nothing() -> None:
    cache = ObjectCache()
    with pytest.raises(ValueError, match="negative"):
        cache.get_or_load("a", lambda: Blob(1), size_of=lambda obj: -1)
    assert "a" not in cache
    assert cache.get_or_load("a", lambda: 5) == 5


@pytest.mark.parametrize("bad", [-1, 1.5, "10"])
def test_bad_max_bytes(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        ObjectCache(max_bytes=bad)
    with pytest.raises((ValueError, TypeError)):
        ObjectCache().resize(bad)


def test_default_bound() -> None:
    assert ObjectCache().max_bytes == DEFAULT_MAX_BYTES == 256 * 1024 * 1024


# -- objects that cannot be weakly referenced ---------------------------------------
@pytest.mark.parametrize(
    "make", [lambda: 10**30, lambda: (1, 2, 3), lambda: "x" * 10, lambda: {"k": [1]}, lambda: None]
)
def test_non_weakrefable_objects_live_in_the_lru(make: Callable[[], object]) -> None:
    cache = ObjectCache(max_bytes=DEFAULT_OBJECT_SIZE * 4)
    calls = []

    def load() -> object:
        calls.append(1)
        return make()

    first = cache.get_or_load("d", load)
    assert cache.get_or_load("d", load) is first
    assert len(calls) == 1
    assert "d" in cache
    assert cache.stats()["live_objects"] == 0  # nothing in the weak map
    assert cache.known_digest(first) is None  # identity cannot be tracked
    # Once evicted from the LRU, the object is loaded again.
    for i in range(4):
        cache.get_or_load(f"other{i}", lambda: Blob(DEFAULT_OBJECT_SIZE))
    assert "d" not in cache
    cache.get_or_load("d", load)
    assert len(calls) == 2


def test_non_weakrefable_object_bigger_than_bound_is_not_cached() -> None:
    cache = ObjectCache(max_bytes=10)
    calls = []

    def load() -> tuple[int, ...]:
        calls.append(1)
        return (1, 2)

    cache.get_or_load("d", load)
    cache.get_or_load("d", load)
    assert len(calls) == 2
    assert "d" not in cache


# -- threads ------------------------------------------------------------------------
def test_same_digest_from_many_threads_loads_once() -> None:
    cache = ObjectCache()
    n = 8
    started = threading.Event()
    release = threading.Event()
    calls = []

    def slow_loader() -> Blob:
        calls.append(threading.get_ident())
        started.set()
        assert release.wait(WAIT)
        return Blob(10)

    results: list[Any] = [None] * n

    def worker(i: int) -> None:
        results[i] = cache.get_or_load("same", slow_loader)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    assert started.wait(WAIT)
    # Every other thread is now parked on the load in flight.
    wait_until(lambda: cache.stats()["waits"] == n - 1)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(calls) == 1
    assert results[0] is not None
    assert all(result is results[0] for result in results)
    stats = cache.stats()
    assert stats["loads"] == 1 and stats["misses"] == n


def test_different_digests_load_in_parallel() -> None:
    # Each loader waits for the other to have started: if loads were serialized
    # (e.g. run under the cache lock) neither would ever see the other.
    cache = ObjectCache()
    started = {"a": threading.Event(), "b": threading.Event()}
    overlapped: dict[str, bool] = {}

    def loader(mine: str, other: str) -> Callable[[], Blob]:
        def load() -> Blob:
            started[mine].set()
            overlapped[mine] = started[other].wait(WAIT)
            return Blob(1, tag=mine)

        return load

    results: dict[str, Blob] = {}
    threads = [
        threading.Thread(
            target=lambda d=d, o=o: results.__setitem__(d, cache.get_or_load(d, loader(d, o)))
        )
        for d, o in (("a", "b"), ("b", "a"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert overlapped == {"a": True, "b": True}
    assert results["a"].tag == "a" and results["b"].tag == "b"


def test_hits_are_served_while_another_digest_loads() -> None:
    cache = ObjectCache()
    held = cache.get_or_load("cached", Counter())
    started = threading.Event()
    release = threading.Event()

    def slow() -> Blob:
        started.set()
        assert release.wait(WAIT)
        return Blob(1)

    thread = threading.Thread(target=cache.get_or_load, args=("slow", slow))
    thread.start()
    assert started.wait(WAIT)
    assert cache.get_or_load("cached", Counter()) is held  # not blocked by the slow load
    release.set()
    thread.join(WAIT)


def test_failing_loader_propagates_to_all_waiters_and_next_call_retries() -> None:
    cache = ObjectCache()
    n = 8
    started = threading.Event()
    release = threading.Event()
    calls = []

    class Boom(Exception):
        pass

    def failing() -> Blob:
        calls.append(1)
        started.set()
        assert release.wait(WAIT)
        raise Boom("disk on fire")

    errors: list[BaseException | None] = [None] * n

    def worker(i: int) -> None:
        try:
            cache.get_or_load("d", failing)
        except Boom as exc:
            errors[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    assert started.wait(WAIT)
    wait_until(lambda: cache.stats()["waits"] == n - 1)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(calls) == 1
    assert all(isinstance(error, Boom) for error in errors)
    assert "d" not in cache
    assert cache.stats()["load_errors"] == 1
    # Nothing was cached: the next call runs its loader.
    ok = cache.get_or_load("d", lambda: Blob(1, tag="ok"))
    assert ok.tag == "ok"
    assert cache.get_or_load("d", failing) is ok


def test_failing_loader_single_thread() -> None:
    cache = ObjectCache()

    def fail() -> object:
        raise KeyError("missing blob")

    with pytest.raises(KeyError, match="missing blob"):
        cache.get_or_load("d", fail)
    with pytest.raises(KeyError):
        cache.get_or_load("d", fail)
    assert cache.stats()["loads"] == 2


def test_loader_asking_for_its_own_digest_raises_instead_of_deadlocking() -> None:
    cache = ObjectCache()

    def recursive() -> object:
        return cache.get_or_load("d", recursive)

    with pytest.raises(RuntimeError, match="must not depend on its own digest"):
        cache.get_or_load("d", recursive)
    assert cache.get_or_load("d", lambda: Blob(1)) is not None  # not stuck in flight


def test_loader_may_load_other_digests() -> None:
    cache = ObjectCache()
    part = cache.get_or_load("part", Counter())
    whole = cache.get_or_load("whole", lambda: (cache.get_or_load("part", Counter()), "whole"))
    assert whole[0] is part


# -- the reverse map ----------------------------------------------------------------
def test_get_or_load_remembers_the_digest() -> None:
    cache = ObjectCache()
    blob = cache.get_or_load("d1", Counter())
    array = cache.get_or_load("d2", lambda: frozen(np.arange(5)))
    assert cache.known_digest(blob) == "d1"
    assert cache.known_digest(array) == "d2"
    assert cache.known_digest(Blob(1)) is None


def test_remember_and_known_digest() -> None:
    cache = ObjectCache()
    blob = Blob(1)
    assert cache.known_digest(blob) is None
    assert cache.remember_digest(blob, "abc") is True
    assert cache.known_digest(blob) == "abc"
    assert cache.remember_digest(blob, "def") is True  # the latest record wins
    assert cache.known_digest(blob) == "def"
    assert "abc" not in cache  # remembering is not caching


def test_remembered_entry_dies_with_the_object() -> None:
    cache = ObjectCache()
    blob = Blob(1)
    cache.remember_digest(blob, "abc")
    assert cache.stats()["remembered"] == 1
    del blob
    gc.collect()
    assert cache.stats()["remembered"] == 0


def test_id_reuse_is_never_mistaken() -> None:
    cache = ObjectCache()
    blob = Blob(1)
    cache.remember_digest(blob, "abc")
    old_id = id(blob)
    del blob  # freed at once (no cycles); no gc.collect(), whose allocations could take the slot
    keep = []
    for _ in range(10_000):
        candidate = Blob(1)
        if id(candidate) == old_id:
            break
        keep.append(candidate)  # keep alive so the next try gets fresh memory
    else:
        pytest.skip("the interpreter never reused the id")
    assert cache.known_digest(candidate) is None


def test_id_reuse_before_the_dead_entry_is_purged() -> None:
    # Entries of dead objects linger until the next slow-path call; a newcomer
    # with the same id must still not be taken for the dead object.
    cache = ObjectCache()
    blob = Blob(1)
    cache.remember_digest(blob, "abc")
    entry = cache._by_id[id(blob)]
    del blob
    gc.collect()
    impostor = Blob(1)
    cache._by_id[id(impostor)] = entry  # as if the id had been reused, unpurged
    assert cache.known_digest(impostor) is None


def test_remembered_digest_survives_a_new_object_with_the_same_digest() -> None:
    # A dead object's late purge must not remove the record of a newer object.
    cache = ObjectCache(max_bytes=0)
    first = cache.get_or_load("d", Counter())
    del first
    gc.collect()
    second = cache.get_or_load("d", Counter())
    cache.stats()  # purges dead entries
    assert cache.known_digest(second) == "d"
    assert cache.get_or_load("d", Counter()) is second


def test_objects_that_cannot_be_weakly_referenced_are_not_remembered() -> None:
    cache = ObjectCache()
    value = (1, 2, 3)
    assert cache.remember_digest(value, "abc") is False
    assert cache.known_digest(value) is None
    assert cache.remember_digest(12345678901234567890, "abc") is False


def test_writeable_array_guard() -> None:
    cache = ObjectCache()
    array = frozen(np.arange(10))
    assert cache.remember_digest(array, "abc") is True
    assert cache.known_digest(array) == "abc"
    array.flags.writeable = True  # someone could now change it
    assert cache.known_digest(array) is None
    array.flags.writeable = False  # proves nothing: it may have changed meanwhile
    assert cache.known_digest(array) is None


def test_writeable_arrays_are_not_remembered() -> None:
    cache = ObjectCache()
    assert cache.remember_digest(np.arange(3), "abc") is False
    # A read-only view of a writeable base can still change under us.
    base = np.arange(3)
    view = frozen(base.view())
    assert cache.remember_digest(view, "abc") is False
    assert cache.known_digest(view) is None
    # Loaded writeable arrays keep their identity but get no remembered digest.
    loaded = cache.get_or_load("d", lambda: np.arange(3))
    assert cache.get_or_load("d", lambda: np.arange(3)) is loaded
    assert cache.known_digest(loaded) is None


def test_read_only_view_of_read_only_base_is_remembered() -> None:
    cache = ObjectCache()
    base = frozen(np.arange(6))
    view = base.reshape(2, 3)
    assert not view.flags.writeable
    assert cache.remember_digest(view, "abc") is True
    assert cache.known_digest(view) == "abc"


# -- management ---------------------------------------------------------------------
def test_stats() -> None:
    cache = ObjectCache(max_bytes=100)
    held = cache.get_or_load("a", Counter(30))
    cache.get_or_load("a", Counter(30))
    cache.get_or_load("b", lambda: (1, 2), size_of=lambda obj: 20)
    stats = cache.stats()
    assert stats["hits"] == 1
    assert stats["misses"] == 2
    assert stats["loads"] == 2
    assert stats["strong_bytes"] == 50
    assert stats["strong_objects"] == 2
    assert stats["live_objects"] == 1  # the tuple is not weakly referenced
    assert stats["max_bytes"] == 100
    del held


def test_resize_evicts_oldest_and_grows() -> None:
    cache = ObjectCache(max_bytes=100)
    for key in "abcd":
        cache.get_or_load(key, Counter(25))
    cache.get_or_load("a", Counter(25))  # recency now: b, c, d, a
    cache.resize(50)
    gc.collect()
    assert cache.max_bytes == 50
    assert {key for key in "abcd" if key in cache} == {"d", "a"}
    assert cache.stats()["strong_bytes"] == 50
    cache.resize(1000)
    cache.get_or_load("big", Counter(900))
    assert cache.stats()["strong_bytes"] == 950
    cache.resize(0)
    gc.collect()
    assert cache.stats()["strong_bytes"] == 0
    assert not any(key in cache for key in ["a", "d", "big"])


def test_clear_drops_both_maps_but_keeps_the_reverse_map() -> None:
    cache = ObjectCache()
    held = cache.get_or_load("a", Counter())
    cache.get_or_load("b", Counter())
    cache.clear()
    assert "a" not in cache and "b" not in cache
    stats = cache.stats()
    assert stats["strong_bytes"] == 0 and stats["live_objects"] == 0
    fresh = cache.get_or_load("a", Counter())
    assert fresh is not held  # documented: clear() forgets live objects too
    assert cache.known_digest(held) == "a"  # still true of the old object


# -- sharing ------------------------------------------------------------------------
def test_shared_cache_is_one_instance_per_key(tmp_path: Any) -> None:
    key = str(tmp_path.resolve())
    cache = shared_cache(key)
    assert shared_cache(key) is cache
    assert cache.max_bytes == DEFAULT_MAX_BYTES
    other = shared_cache(key + "-other", max_bytes=10)
    assert other is not cache
    assert other.max_bytes == 10


def test_shared_cache_grows_never_shrinks(tmp_path: Any) -> None:
    key = str(tmp_path.resolve())
    cache = shared_cache(key, max_bytes=100)
    assert shared_cache(key, max_bytes=50).max_bytes == 100
    assert shared_cache(key, max_bytes=500) is cache
    assert cache.max_bytes == 500
    assert shared_cache(key).max_bytes == 500


def test_shared_cache_is_released_when_nobody_holds_it(tmp_path: Any) -> None:
    key = str(tmp_path.resolve())
    cache = shared_cache(key, max_bytes=100)
    del cache
    gc.collect()
    # A new cache (default bound), not the old one kept alive by the registry.
    assert shared_cache(key).max_bytes == DEFAULT_MAX_BYTES


def test_shared_cache_from_threads_is_one_instance(tmp_path: Any) -> None:
    key = str(tmp_path.resolve())
    results: list[ObjectCache] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait(WAIT)
        results.append(shared_cache(key))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(results) == 8
    assert all(result is results[0] for result in results)


# -- each buffer charged once ---------------------------------------------------
def test_views_and_sharing_objects_are_charged_once() -> None:
    cache = ObjectCache(max_bytes=10_000)
    base = np.zeros(1000, dtype=np.uint8)
    base.flags.writeable = False
    cache.get_or_load("a", lambda: base)
    cache.get_or_load("b", lambda: base[:10])            # a view of the same buffer
    holder = [base]
    cache.get_or_load("c", lambda: holder, size_of=lambda h: list(h))
    assert cache.stats()["strong_objects"] == 3
    assert cache.stats()["strong_bytes"] == 1000


def test_a_shared_buffer_leaves_the_count_with_its_last_holder() -> None:
    cache = ObjectCache(max_bytes=2500)
    one, two = np.zeros(1000, np.uint8), np.zeros(1000, np.uint8)
    cache.get_or_load("one", lambda: one)
    cache.get_or_load("pair", lambda: (one, two), size_of=list)
    assert cache.stats()["strong_bytes"] == 2000
    three = np.zeros(1000, np.uint8)
    # 3000 > 2500: evicting "one" frees nothing ("pair" holds its buffer), so "pair"
    # goes too; only then has the count dropped to three's 1000 bytes.
    cache.get_or_load("three", lambda: three)
    stats = cache.stats()
    assert (stats["strong_objects"], stats["strong_bytes"]) == (1, 1000)
    assert cache.peek("one") is one                        # still found while alive


def test_visit_load_charges_unique_bytes(butler, sky) -> None:
    held = []
    for detector in range(4):
        exposure, catalog = sky(visit=1, detector=detector)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        butler.put(catalog, "src", visit=1, detector=detector)
    butler.cache.clear()
    before = butler.cache.stats()["strong_bytes"]
    for detector in range(4):
        exp = butler.get("calexp", visit=1, detector=detector)
        cat = butler.get("src", visit=1, detector=detector)
        held += [exp.image, exp.mask.array, exp.variance]
        held += [np.asarray(cat.table[name]) for name in cat.columns]
    owners = {}
    for array in held:
        while array.base is not None and isinstance(array.base, np.ndarray):
            array = array.base
        owners[id(array)] = array.nbytes
    unique = sum(owners.values())
    charged = butler.cache.stats()["strong_bytes"] - before
    # Everything read is in the LRU (it is big enough); the bytes it reports are the
    # distinct buffers held, not the Exposure, its Mask and its arrays added up.
    assert unique > 4 * 256 * 256 * 4
    assert unique <= charged <= unique * 1.05 + 64 * 1024

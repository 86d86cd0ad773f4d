"""``RegistryTests``: the conformance suite every registry database passes.

Subclass it in a test module and implement :meth:`RegistryTests.make_registry`,
which gets pytest's ``request`` (for ``tmp_path`` or a database fixture)::

    class TestSQLiteRegistry(RegistryTests):
        def make_registry(self, request):
            return Registry.create(request.getfixturevalue("tmp_path") / "r.sqlite3")

The suite checks what the Butler relies on, whatever the database: dataset
types, collections and chains, exact and first-match lookups, bulk inserts that
are all-or-nothing, conflicts, removal, tagging, ``where`` queries,
transactions, provenance, and that a second registry object on the same
database (another process or host) sees commits, through `Registry.data_version`
too. Database-specific behaviour (SQLite pragmas, files) is tested beside each
database, not here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compstore.errors import (
    CollectionTypeError,
    ConflictingDatasetError,
    DataIdError,
    DatasetTypeConflictError,
    MissingCollectionError,
    MissingDatasetTypeError,
    QueryError,
)
from compstore.registry import CollectionType, Registry

__all__ = ["RegistryTests"]


class RegistryTests:
    """Conformance tests of a `Registry` on one database; subclass and implement `make_registry`."""

    def make_registry(self, request: pytest.FixtureRequest) -> Registry:
        """Create a new, empty registry (the hook every subclass implements)."""
        raise NotImplementedError

    @pytest.fixture
    def registry(self, request: pytest.FixtureRequest) -> Iterator[Registry]:
        """The registry under test, closed afterwards."""
        registry = self.make_registry(request)
        yield registry
        registry.close()

    @pytest.fixture
    def filled(self, registry: Registry) -> Registry:
        """``calexp(visit, detector)`` in RUNs ``a`` (visits 1-3) and ``b`` (visit 1), chain ``ab``."""
        registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        registry.register_run("a")
        registry.register_run("b")
        registry.insert_datasets(
            "calexp",
            [{"visit": v, "detector": d} for v in (1, 2, 3) for d in (0, 1)],
            "a",
            [f"m-a-{v}-{d}" for v in (1, 2, 3) for d in (0, 1)],
        )
        registry.insert_dataset("calexp", {"visit": 1, "detector": 0}, "b", "m-b-1-0")
        registry.register_collection("ab", CollectionType.CHAINED)
        registry.set_chain("ab", ["b", "a"])
        return registry

    @staticmethod
    def _reopen(registry: Registry) -> Registry:
        """Another registry object on the same database (as another process would open)."""
        return Registry(registry._url)

    # -- dataset types ----------------------------------------------------------
    def test_dataset_type_round_trip(self, registry: Registry) -> None:
        made = registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        assert registry.get_dataset_type("calexp") == made
        assert made.dimensions == ("visit", "detector")
        # Same definition again: a no-op.
        assert registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure") == made
        assert [t.name for t in registry.dataset_types()] == ["calexp"]

    def test_dataset_type_conflict_and_missing(self, registry: Registry) -> None:
        registry.register_dataset_type("calexp", ("visit",), "Exposure")
        with pytest.raises(DatasetTypeConflictError):
            registry.register_dataset_type("calexp", ("visit",), "SourceCatalog")
        with pytest.raises(MissingDatasetTypeError):
            registry.get_dataset_type("nope")

    # -- collections ------------------------------------------------------------
    def test_collections_and_chains(self, filled: Registry) -> None:
        assert set(filled.query_collections()) == {"a", "b", "ab"}
        assert filled.collection_type("ab") is CollectionType.CHAINED
        assert filled.get_chain("ab") == ("b", "a")
        assert filled.flatten_collections("ab") == ["b", "a"]
        assert filled.register_run("a") is False  # exists: no-op
        with pytest.raises(MissingCollectionError):
            filled.set_chain("ab", ["missing"])
        with pytest.raises(CollectionTypeError):
            filled.register_collection("a", CollectionType.TAGGED)

    def test_chain_cycle_refused(self, registry: Registry) -> None:
        registry.register_collection("x", CollectionType.CHAINED)
        registry.register_collection("y", CollectionType.CHAINED)
        registry.set_chain("x", ["y"])
        with pytest.raises(Exception, match="cycle|itself|contain"):
            registry.set_chain("y", ["x"])
        assert registry.get_chain("y") == ()

    # -- inserts and lookups ----------------------------------------------------
    def test_find_first_match_in_chain_order(self, filled: Registry) -> None:
        found = filled.find_dataset("calexp", {"visit": 1, "detector": 0}, "ab")
        assert found is not None and found.run == "b" and found.manifest == "m-b-1-0"
        found = filled.find_dataset("calexp", {"visit": 2, "detector": 1}, "ab")
        assert found is not None and found.run == "a" and found.manifest == "m-a-2-1"
        assert filled.find_dataset("calexp", {"visit": 9, "detector": 0}, "ab") is None
        assert filled.get_dataset(found.id) == found

    def test_bulk_insert_round_trip_with_given_ids(self, registry: Registry) -> None:
        registry.register_dataset_type("raw", ("exposure", "detector"), "Exposure")
        registry.register_run("r")
        data_ids = [{"exposure": e, "detector": d} for e in range(50) for d in range(20)]
        ids = [uuid.uuid4() for _ in data_ids]
        refs = registry.insert_datasets("raw", data_ids, "r", [f"m{i}" for i in range(1000)], ids)
        assert [r.id for r in refs] == ids
        assert registry.count_datasets("raw") == 1000
        got = registry.find_dataset("raw", {"exposure": 7, "detector": 3}, "r")
        assert got is not None and got.id == ids[7 * 20 + 3] and got.manifest == f"m{7 * 20 + 3}"

    def test_duplicate_data_id_refused_all_or_nothing(self, filled: Registry) -> None:
        before = filled.count_datasets()
        new = [{"visit": 7, "detector": 0}, {"visit": 1, "detector": 1}]  # the 2nd exists in a
        with pytest.raises(ConflictingDatasetError):
            filled.insert_datasets("calexp", new, "a", ["n1", "n2"])
        assert filled.count_datasets() == before  # the first row was not kept either
        with pytest.raises(ConflictingDatasetError):
            filled.insert_datasets("calexp", [new[0], new[0]], "a", ["n1", "n1"])
        assert filled.count_datasets() == before

    def test_large_bulk_insert_is_all_or_nothing(self, filled: Registry) -> None:
        """A conflict or a bad data ID deep in a bulk insert of several chunks keeps no row."""
        before = filled.count_datasets()
        many = [{"visit": 100 + i // 100, "detector": i % 100} for i in range(25_000)]
        for bad, error in (({"visit": 1, "detector": 1}, ConflictingDatasetError),
                           ({"visit": "x", "detector": 0}, DataIdError)):  # fmt: skip
            rows = [*many[:22_000], bad, *many[22_000:]]  # in the second chunk
            with pytest.raises(error):
                filled.insert_datasets("calexp", rows, "a", ["m"] * len(rows))
            assert filled.count_datasets() == before
        refs = filled.insert_datasets("calexp", many, "a", ["m"] * len(many))  # still usable
        assert len(refs) == len(many) and filled.count_datasets() == before + len(many)

    def test_bad_data_id_refused(self, filled: Registry) -> None:
        with pytest.raises(DataIdError):
            filled.insert_dataset("calexp", {"visit": 1}, "a", "m")
        with pytest.raises(DataIdError):
            filled.insert_dataset("calexp", {"visit": "one", "detector": 0}, "a", "m")

    def test_remove_datasets(self, filled: Registry) -> None:
        ref = filled.find_dataset("calexp", {"visit": 1, "detector": 0}, "b")
        assert ref is not None
        assert filled.remove_datasets([ref]) == 1
        assert filled.get_dataset(ref.id) is None
        found = filled.find_dataset("calexp", {"visit": 1, "detector": 0}, "ab")
        assert found is not None and found.run == "a"  # the chain now falls through

    def test_tagged_associate_disassociate(self, filled: Registry) -> None:
        filled.register_collection("best", CollectionType.TAGGED)
        refs = filled.query_datasets("calexp", "visit = 2", "a")
        filled.associate("best", refs)
        assert {r.id for r in filled.query_datasets("calexp", None, "best")} == {r.id for r in refs}
        filled.disassociate("best", refs[:1])
        assert [r.id for r in filled.query_datasets("calexp", None, "best")] == [refs[1].id]

    # -- queries ----------------------------------------------------------------
    def test_where_queries(self, filled: Registry) -> None:
        got = filled.query_datasets("calexp", "visit >= 2 AND detector = 1", "a")
        assert sorted(r.data_id["visit"] for r in got) == [2, 3]
        bound = filled.query_datasets("calexp", "visit IN (:v1, :v2)", "a", bind={"v1": 1, "v2": 3})
        assert len(bound) == 4
        first = filled.query_datasets("calexp", "visit = 1", "ab", find_first=True)
        assert sorted((r.data_id["detector"], r.run) for r in first) == [(0, "b"), (1, "a")]
        with pytest.raises(QueryError):
            filled.query_datasets("calexp", "visit = = 1", "a")

    # -- transactions and other connections ---------------------------------------
    def test_transaction_rolls_back_everything(self, filled: Registry) -> None:
        before = filled.count_datasets()
        with pytest.raises(RuntimeError):
            with filled.transaction():
                filled.register_run("c")
                filled.insert_dataset("calexp", {"visit": 8, "detector": 0}, "c", "m")
                raise RuntimeError("undo")
        assert filled.count_datasets() == before
        assert "c" not in filled.query_collections()

    def test_another_registry_object_sees_commits(self, filled: Registry) -> None:
        other = self._reopen(filled)
        try:
            version = filled.data_version()
            ref = other.insert_dataset("calexp", {"visit": 5, "detector": 0}, "a", "m5")
            if version is not None:  # None: a database with nothing to watch
                assert filled.data_version() != version
            assert filled.find_dataset("calexp", {"visit": 5, "detector": 0}, "a") == ref
            other.register_dataset_type("calexp", ("visit", "detector", "band"), "Exposure")
            assert filled.get_dataset_type("calexp").dimensions == ("visit", "detector", "band")
            other.set_chain("ab", ["a"])
            found = filled.find_dataset("calexp", {"visit": 1, "detector": 0}, "ab")
            assert found is not None and found.run == "a"
        finally:
            other.close()

    def test_data_version_stable_without_commits(self, filled: Registry) -> None:
        version = filled.data_version()
        filled.find_dataset("calexp", {"visit": 1, "detector": 0}, "ab")
        filled.query_datasets("calexp", None, "a")
        assert filled.data_version() == version

    @pytest.mark.parametrize("what", ["dataset type", "collection", "dimension type"])
    def test_concurrent_registrations_of_one_name_both_succeed(
        self, filled: Registry, what: str
    ) -> None:
        """Two writers registering the same new name at once: both succeed, one row.

        The first holds its transaction open; the second, on another connection,
        waits for it (SQLite: the write lock; PostgreSQL: the unique index) and
        must then find what the first made, not fail on the duplicate.
        """
        import threading

        other = self._reopen(filled)

        if what == "dimension type":  # both insert the first values of a new dimension
            filled.register_dataset_type("typed", ("visit", "newdim2"), "Exposure")
            filled.register_run("run1")
            filled.register_run("run2")

        def register(registry: Registry) -> object:
            if what == "dataset type":
                return registry.register_dataset_type("raced", ("visit", "newdim"), "Exposure")
            if what == "dimension type":
                run = "run1" if registry is filled else "run2"
                ref = registry.insert_dataset("typed", {"visit": 1, "newdim2": 5}, run, "m")
                return dict(ref.data_id)
            return registry.register_collection("raced", CollectionType.RUN)

        started, results = threading.Event(), []

        def second() -> None:
            started.wait()
            try:
                results.append(register(other))
            except Exception as exc:  # noqa: BLE001 - reported below
                results.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        try:
            with filled.transaction():
                first = register(filled)
                started.set()
                thread.join(timeout=0.5)  # the second is waiting for this transaction
            thread.join(timeout=30)
        finally:
            other.close()
        assert not thread.is_alive()
        assert len(results) == 1 and not isinstance(results[0], Exception), results
        if what == "dataset type":
            assert results[0] == first == filled.get_dataset_type("raced")
        elif what == "dimension type":
            assert results[0] == first == {"visit": 1, "newdim2": 5}
            assert filled.dimensions()["newdim2"] == "int"
            assert len(filled.query_datasets("typed", "newdim2 = 5", ["run1", "run2"])) == 2
        else:
            assert (first, results[0]) == (True, False)

    def test_a_manifest_digest_longer_than_its_column_is_refused(self, filled: Registry) -> None:
        with pytest.raises(DataIdError, match="1 to 128 characters"):
            filled.insert_dataset("calexp", {"visit": 9, "detector": 0}, "a", "m" * 129)
        assert filled.find_dataset("calexp", {"visit": 9, "detector": 0}, "a") is None

    def test_get_datasets_answers_in_order_as_get_dataset_does(self, filled: Registry) -> None:
        refs = filled.query_datasets("calexp", None, "a")
        assert len(refs) >= 2
        missing = uuid.uuid4()
        ids = [refs[1].id, missing, refs[0].id, refs[1].id]
        assert filled.get_datasets(ids) == [filled.get_dataset(i) for i in ids]
        assert filled.get_datasets(ids)[0] == refs[1] and filled.get_datasets(ids)[1] is None
        assert filled.get_datasets([]) == []

    def test_get_provenances_equals_get_provenance_per_dataset(self, filled: Registry) -> None:
        inputs = [r.id for r in filled.query_datasets("calexp", "visit = 1", "a")]
        first = filled.insert_dataset("calexp", {"visit": 6, "detector": 0}, "a", "m6")
        second = filled.insert_dataset("calexp", {"visit": 7, "detector": 0}, "a", "m7")
        bare = filled.insert_dataset("calexp", {"visit": 8, "detector": 0}, "a", "m8")
        filled.record_provenance(first.id, "t", "T", {"k": 1}, list(reversed(inputs)))
        filled.record_provenance(second.id, "u", "U", {}, [])
        got = filled.get_provenances([first.id, second.id, bare.id, uuid.uuid4()])
        assert set(got) == {first.id, second.id}
        for ref in (first, second):
            assert got[ref.id] == filled.get_provenance(ref.id)  # inputs in recorded order

    def test_provenance_round_trip(self, filled: Registry) -> None:
        inputs = [r.id for r in filled.query_datasets("calexp", "visit = 1", "a")]
        output = filled.insert_dataset("calexp", {"visit": 4, "detector": 0}, "a", "m4")
        config: dict[str, Any] = {"n": 3, "name": "x"}
        filled.record_provenance(output.id, "coadd", "CoaddTask", config, inputs)
        filled.record_provenance(output.id, "coadd", "CoaddTask", config, inputs)  # no-op
        got = filled.get_provenance(output.id)
        assert got is not None and got["task_label"] == "coadd" and got["config"] == config
        assert [uuid.UUID(str(i)) for i in got["input_ids"]] == inputs  # in order

"""Registry behaviour: dataset types, dimensions, collections, datasets, provenance."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from compstore.errors import (
    AmbiguousDatasetError,
    CollectionError,
    CollectionTypeError,
    CompstoreError,
    ConflictingDatasetError,
    DataIdError,
    DatasetNotFoundError,
    DatasetTypeConflictError,
    EncodingError,
    InvalidNameError,
    MissingCollectionError,
    MissingDatasetTypeError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)
from compstore.registry import CollectionType, DataId, DatasetType, Registry


# -- opening ----------------------------------------------------------------------
def test_create_then_open(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with Registry.create(path) as reg:
        reg.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    with Registry(path) as reg:
        assert reg.get_dataset_type("calexp").dimensions == ("visit", "detector")
    with Registry(f"sqlite:///{path}") as reg:
        assert [t.name for t in reg.dataset_types()] == ["calexp"]


def test_open_missing_does_not_create_a_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.sqlite3"
    with pytest.raises(RepositoryNotFoundError, match="no registry"):
        Registry(path)
    assert not path.exists()


def test_open_foreign_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(RepositoryNotFoundError):
        Registry(path)


def test_create_twice(tmp_path: Path) -> None:
    Registry.create(tmp_path / "r.sqlite3").close()
    with pytest.raises(RepositoryExistsError, match="exists already"):
        Registry.create(tmp_path / "r.sqlite3")


def test_unknown_schema_major_version(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    Registry.create(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE registry_meta SET value = '99.0' WHERE key = 'schema_version'")
    with pytest.raises(RepositoryFormatError, match="'99.0'"):
        Registry(path)


@pytest.mark.sqlite_only
def test_sqlite_pragmas(registry: Registry) -> None:
    with registry._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_in_memory_url() -> None:
    reg = Registry.create("sqlite://")
    reg.register_dataset_type("calexp", ("visit",), "Exposure")
    assert reg.get_dataset_type("calexp").name == "calexp"


# -- dataset types ------------------------------------------------------------------
def test_register_dataset_type_is_idempotent(registry: Registry) -> None:
    a = registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b = registry.register_dataset_type("calexp", ("detector", "visit"), "Exposure")
    assert a == b == DatasetType("calexp", ("visit", "detector"), "Exposure")
    assert registry.dataset_types() == [a]


def test_dataset_type_conflict_shows_both(registry: Registry) -> None:
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    with pytest.raises(DatasetTypeConflictError) as info:
        registry.register_dataset_type("calexp", ("visit", "detector"), "SourceCatalog")
    message = str(info.value)
    assert "calexp(visit, detector) -> Exposure" in message
    assert "calexp(visit, detector) -> SourceCatalog" in message
    with pytest.raises(DatasetTypeConflictError, match="only add"):
        registry.register_dataset_type("calexp", ("visit", "tract"), "Exposure")


def test_a_stage_may_add_a_dimension(registry: Registry) -> None:
    """jointcal writes calexp keyed by (visit, detector, tract) beside sfm's (visit, detector)."""
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    registry.register_run("sfm")
    registry.register_run("jointcal")
    old = registry.insert_dataset("calexp", {"visit": 1, "detector": 2}, "sfm", "m0")
    extended = registry.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    assert extended.optional_dimensions == ("tract",)
    assert extended.required_dimensions == ("visit", "detector")
    assert str(extended) == "calexp(visit, detector, tract?) -> Exposure"
    # registering either form again is a no-op
    assert registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure") == extended
    assert registry.register_dataset_type("calexp", ("detector", "tract", "visit"), "Exposure") == extended
    a = registry.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 8}, "jointcal", "m1")
    b = registry.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, "jointcal", "m2")
    # the old dataset keeps its data ID and is found as before
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2}, ["sfm"]) == old
    assert dict(old.data_id) == {"visit": 1, "detector": 2}
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, ["jointcal"]) == b
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2}, ["jointcal"]) is None
    with pytest.raises(AmbiguousDatasetError, match="tract: 8.*tract: 9"):
        registry.find_dataset("calexp", {"visit": 1, "detector": 2}, ["jointcal"], partial=True)
    assert registry.query_datasets("calexp", where="tract = 8") == [a]
    assert [r.run for r in registry.query_datasets("calexp", where="visit = 1")] == ["sfm", "jointcal", "jointcal"]
    # a second registry on the same file (another process) learns the extension lazily
    other = Registry(registry.url)
    assert other.find_dataset("calexp", {"visit": 1, "detector": 2, "tract": 8}, ["jointcal"]) == a


def test_search_path_shadows_by_required_dimensions(registry: Registry) -> None:
    """A dimension only a later stage adds never makes the earlier stage's dataset a candidate."""
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    for run in ("sfm", "jointcal", "rerun"):
        registry.register_run(run)
    old = {d: registry.insert_dataset("calexp", {"visit": 1, "detector": d}, "sfm", f"s{d}")
           for d in (1, 2, 3)}
    registry.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    new = {d: registry.insert_dataset("calexp", {"visit": 1, "detector": d, "tract": 8},
                                      "jointcal", f"j{d}") for d in (1, 2)}
    # detector 2 in two tracts: genuinely ambiguous within jointcal
    new9 = registry.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, "jointcal", "j9")
    path = ["jointcal", "sfm"]
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 1}, path, partial=True) == new[1]
    # not processed by jointcal: falls back to sfm
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 3}, path, partial=True) == old[3]
    first = registry.query_datasets("calexp", "visit = 1", collections=path, find_first=True)
    assert sorted(r.manifest for r in first) == ["j1", "j2", "j9", "s3"]
    assert registry.find_datasets_partial("calexp", {"visit": 1}, path) == first
    # the order decides: sfm first, sfm's versions win
    assert {r.run for r in registry.find_datasets_partial("calexp", {"visit": 1}, ["sfm", "jointcal"])} == {"sfm"}
    # the advice names an argument that really picks each candidate
    with pytest.raises(AmbiguousDatasetError) as info:
        registry.find_dataset("calexp", {"visit": 1, "detector": 2}, path, partial=True)
    message = str(info.value)
    assert "matches 2 datasets in collections ['jointcal', 'sfm']" in message
    assert "tract=8 for {detector: 2, tract: 8, visit: 1} in 'jointcal'" in message
    assert "tract=9 for {detector: 2, tract: 9, visit: 1} in 'jointcal'" in message
    assert "{detector: 2, visit: 1} in 'sfm'" not in message
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, path) == new9
    # a run holding one exposure with and without tract: the exact data ID names each one
    plain = registry.insert_dataset("calexp", {"visit": 1, "detector": 4}, "rerun", "r0")
    with_tract = registry.insert_dataset("calexp", {"visit": 1, "detector": 4, "tract": 8}, "rerun", "r8")
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 4}, "rerun", partial=True) == plain
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 4, "tract": 8}, "rerun",
                                 partial=True) == with_tract
    # without a search path nothing is shadowed, and nothing is chosen silently
    everywhere = registry.query_datasets("calexp", "visit = 1 AND detector = 1", find_first=True)
    assert sorted(r.run for r in everywhere) == ["jointcal", "sfm"]
    with pytest.raises(AmbiguousDatasetError, match=r"collections=\['sfm'\] for"):
        registry.find_dataset("calexp", {"visit": 1, "detector": 1}, None, partial=True)


def test_caches_follow_the_catalog_version(tmp_path: Path) -> None:
    """Another registry's catalog change drops this one's caches; its dataset inserts do not."""
    path = tmp_path / "r.sqlite3"
    mine = Registry.create(path)
    mine.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    mine.register_run("sfm")
    other = Registry(path)
    other.insert_dataset("calexp", {"visit": 1, "detector": 1}, "sfm", "m1")
    assert mine.find_dataset("calexp", {"visit": 1, "detector": 1}, "sfm") is not None
    cached = mine._types["calexp"]
    other.insert_dataset("calexp", {"visit": 1, "detector": 2}, "sfm", "m2")
    assert mine.find_dataset("calexp", {"visit": 1, "detector": 2}, "sfm") is not None
    assert mine._types["calexp"] is cached  # puts leave the cached types alone
    # A repository made before the catalog version existed: the first change adds it.
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM registry_meta WHERE key = 'catalog_version'")
    other.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    assert mine.get_dataset_type("calexp").optional_dimensions == ("tract",)
    other.register_run("jointcal")
    other.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 3}, "jointcal", "m3")
    found = mine.find_dataset("calexp", {"visit": 1, "detector": 2}, ["jointcal", "sfm"], partial=True)
    assert found is not None and dict(found.data_id) == {"visit": 1, "detector": 2, "tract": 3}
    other.close()
    mine.close()


def test_added_dimension_needs_a_known_type(registry: Registry) -> None:
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    with pytest.raises(DatasetTypeConflictError, match="value type"):
        registry.register_dataset_type("calexp", ("visit", "detector", "mystery"), "Exposure")
    with pytest.raises(DatasetTypeConflictError, match="SourceCatalog"):
        registry.register_dataset_type("calexp", ("visit", "detector"), "SourceCatalog")


def test_missing_dataset_type_lists_known(registry: Registry) -> None:
    registry.register_dataset_type("calexp", ("visit",), "Exposure")
    registry.register_dataset_type("src", ("visit",), "SourceCatalog")
    with pytest.raises(MissingDatasetTypeError, match="'deepCoadd'.*calexp, src") as info:
        registry.get_dataset_type("deepCoadd")
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize(
    ("name", "dims", "sc", "match"),
    [
        ("calexp.wcs", ("visit",), "Exposure", "dataset type name"),
        ("calexp", ("Visit",), "Exposure", "dimension name"),
        ("calexp", ("visit", "visit"), "Exposure", "twice"),
        ("calexp", ("visit",), "", "storage class"),
    ],
)
def test_register_dataset_type_rejects(registry: Registry, name, dims, sc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidNameError, match=match):
        registry.register_dataset_type(name, dims, sc)


# -- dimensions ---------------------------------------------------------------------
def test_builtin_dimensions(registry: Registry) -> None:
    dims = registry.dimensions()
    assert dims["visit"] == "int" and dims["band"] == "str" and dims["skymap"] == "str"
    assert {"detector", "tract", "patch", "exposure", "physical_filter", "instrument"} <= set(dims)


def test_new_dimension_typed_by_first_value(registry: Registry) -> None:
    registry.register_dataset_type("raw", ("exposure", "ccdname"), "Exposure")
    registry.register_dataset_type("flat", ("ccdname", "seq"), "Exposure")
    assert registry.dimensions()["ccdname"] is None
    registry.register_run("r")
    registry.insert_dataset("raw", {"exposure": 1, "ccdname": "S1"}, "r", "m")
    assert registry.dimensions()["ccdname"] == "str"
    with pytest.raises(DataIdError, match="'ccdname' takes strings"):
        registry.insert_dataset("flat", {"ccdname": 5, "seq": 1}, "r", "m")
    registry.insert_dataset("flat", {"ccdname": "S1", "seq": 3}, "r", "m")
    assert registry.dimensions()["seq"] == "int"
    assert registry.query_datasets("flat", "seq >= 3 AND ccdname = 'S1'")[0].data_id == {
        "ccdname": "S1", "seq": 3}
    # The new columns survive reopening.
    with Registry(registry._url) as again:
        assert again.dimensions()["seq"] == "int"
        assert len(again.query_datasets("raw", "ccdname = 'S1'")) == 1


def test_dimension_named_like_a_fixed_column(registry: Registry) -> None:
    # "id", "manifest" and "run_id" are dataset columns: dimension columns are prefixed.
    registry.register_dataset_type("odd", ("id", "manifest", "run_id"), "X")
    registry.register_run("r")
    ref = registry.insert_dataset("odd", {"id": 1, "manifest": "m", "run_id": 3}, "r", "digest")
    assert ref.manifest == "digest"
    assert registry.query_datasets("odd", "manifest = 'm' AND id = 1") == [ref]


def test_query_on_untyped_dimension_is_empty(registry: Registry) -> None:
    registry.register_dataset_type("raw", ("exposure", "ccdname"), "Exposure")
    registry.register_run("r")
    assert registry.query_datasets("raw", "ccdname = 'x'") == []
    assert registry.query_datasets("raw") == []
    assert registry.find_dataset("raw", {"exposure": 1, "ccdname": "x"}, "r") is None
    with pytest.raises(QueryErrorType):
        registry.query_datasets("raw", "nope = 1")


from compstore.errors import QueryError as QueryErrorType  # noqa: E402


@pytest.mark.parametrize(
    ("data_id", "match"),
    [
        ({"visit": 1}, r"missing detector \(it expects visit, detector\)"),
        ({"visit": 1, "detector": 2, "tract": 3}, r"extra tract \(it expects visit, detector\)"),
        ({"detector": 2, "band": "r"}, "missing visit; extra band"),
        ({"visit": "one", "detector": 2}, "'visit' takes integers, got 'one'"),
        ({"visit": True, "detector": 2}, "'visit' takes integers, got True"),
        ({"visit": 1.0, "detector": 2}, "'visit' takes integers, got 1.0"),
        ({"visit": 2**63, "detector": 2}, "does not fit 64 bits"),
    ],
)
def test_data_id_errors(registry: Registry, data_id, match) -> None:  # type: ignore[no-untyped-def]
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    registry.register_run("sfm")
    with pytest.raises(DataIdError, match=match):
        registry.insert_dataset("calexp", data_id, "sfm", "m")


def test_band_takes_strings(registry: Registry) -> None:
    registry.register_dataset_type("coadd", ("tract", "band"), "Exposure")
    registry.register_run("r")
    with pytest.raises(DataIdError, match="'band' takes strings, got 3"):
        registry.insert_dataset("coadd", {"tract": 1, "band": 3}, "r", "m")


def test_int_coercion(registry: Registry) -> None:
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    registry.register_run("sfm")
    ref = registry.insert_dataset("calexp", {"visit": np.int32(7), "detector": "12"}, "sfm", "m")
    assert ref.data_id == {"visit": 7, "detector": 12}
    assert registry.find_dataset("calexp", {"visit": "7", "detector": np.uint8(12)}, "sfm") == ref


# -- collections ----------------------------------------------------------------------
def test_collections(registry: Registry) -> None:
    assert registry.register_run("sfm") is True
    assert registry.register_run("sfm") is False
    registry.register_collection("u/alice/tagged", CollectionType.TAGGED)
    registry.register_collection("u/alice/chain", CollectionType.CHAINED)
    assert registry.collection_type("sfm") is CollectionType.RUN
    assert registry.collection_type("u/alice/chain") is CollectionType.CHAINED
    assert registry.query_collections() == ["sfm", "u/alice/chain", "u/alice/tagged"]
    assert registry.query_collections("u/alice/*") == ["u/alice/chain", "u/alice/tagged"]
    import re

    assert registry.query_collections(re.compile(r".*tag.*")) == ["u/alice/tagged"]
    assert registry.query_collections(collection_type=CollectionType.RUN) == ["sfm"]
    with pytest.raises(CollectionTypeError, match="exists already as RUN, not TAGGED"):
        registry.register_collection("sfm", CollectionType.TAGGED)
    with pytest.raises(InvalidNameError):
        registry.register_run("bad name")
    with pytest.raises(MissingCollectionError, match="'nope'.*known collections: sfm"):
        registry.collection_type("nope")


def test_chains_flatten_depth_first_and_deduplicate(registry: Registry) -> None:
    for run in ("a", "b", "c", "d"):
        registry.register_run(run)
    registry.register_collection("inner", CollectionType.CHAINED)
    registry.register_collection("outer", CollectionType.CHAINED)
    registry.set_chain("inner", ["b", "c"])
    registry.set_chain("outer", ["a", "inner", "b", "d"])
    assert registry.get_chain("outer") == ("a", "inner", "b", "d")
    assert registry.flatten_collections("outer") == ["a", "b", "c", "d"]
    assert registry.flatten_collections(["c", "outer"]) == ["c", "a", "b", "d"]
    registry.set_chain("inner", [])
    assert registry.flatten_collections("outer") == ["a", "b", "d"]


def test_chain_errors(registry: Registry) -> None:
    registry.register_run("a")
    registry.register_collection("x", CollectionType.CHAINED)
    registry.register_collection("y", CollectionType.CHAINED)
    registry.set_chain("x", ["a", "y"])
    with pytest.raises(CollectionError, match=r"cycle \(y -> x -> y\)"):
        registry.set_chain("y", ["x"])
    with pytest.raises(CollectionError, match="cycle"):
        registry.set_chain("x", ["x"])
    with pytest.raises(CollectionTypeError, match="'a' is RUN, not CHAINED"):
        registry.set_chain("a", ["x"])
    with pytest.raises(CollectionTypeError, match="not CHAINED"):
        registry.get_chain("a")
    with pytest.raises(MissingCollectionError, match="'zzz'"):
        registry.set_chain("x", ["zzz"])
    assert registry.get_chain("x") == ("a", "y")  # unchanged by the failures


def test_find_searches_chain_in_order(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    found = registry.find_dataset("calexp", {"visit": 1, "detector": 0, "band": "r"}, "all")
    assert found.run == "jointcal" and found.manifest == "j-1-0"
    found = registry.find_dataset("calexp", {"visit": 1, "detector": 0, "band": "r"},
                                  ["sfm", "jointcal"])
    assert found == refs[(1, 0, "r")]
    found = registry.find_dataset("calexp", {"visit": 2, "detector": 0, "band": "g"}, "all")
    assert found == refs[(2, 0, "g")]
    assert registry.find_dataset("calexp", {"visit": 2, "detector": 0, "band": "g"},
                                 "jointcal") is None
    assert registry.find_dataset("calexp", {"visit": 99, "detector": 0, "band": "g"},
                                 "all") is None


def test_tagged(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    best = registry.query_datasets("calexp", collections="best")
    assert best == [refs[(2, 0, "g")], refs[(3, 1, "r")]]
    registry.associate("best", [refs[(2, 0, "g")]])  # idempotent
    with pytest.raises(ConflictingDatasetError, match="already holds dataset calexp@"):
        other = registry.insert_dataset("calexp", {"visit": 2, "detector": 0, "band": "g"},
                                        "jointcal", "other")
        registry.associate("best", [other])
    registry.disassociate("best", [refs[(2, 0, "g")]])
    assert registry.query_datasets("calexp", collections="best") == [refs[(3, 1, "r")]]
    with pytest.raises(CollectionTypeError, match="not TAGGED"):
        registry.associate("sfm", [refs[(3, 1, "r")]])
    with pytest.raises(DatasetNotFoundError):
        registry.associate("best", [uuid.uuid4()])
    # TAGGED in a search path: first match wins, like any collection.
    registry.register_collection("chain2", CollectionType.CHAINED)
    registry.set_chain("chain2", ["best", "jointcal"])
    assert registry.find_dataset("calexp", {"visit": 3, "detector": 1, "band": "r"},
                                 "chain2") == refs[(3, 1, "r")]


def test_insert_into_non_run(populated) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    with pytest.raises(CollectionTypeError, match="'all' is CHAINED"):
        registry.insert_dataset("calexp", {"visit": 5, "detector": 0, "band": "r"}, "all", "m")
    with pytest.raises(MissingCollectionError):
        registry.insert_dataset("calexp", {"visit": 5, "detector": 0, "band": "r"}, "new", "m")


# -- datasets -------------------------------------------------------------------------
def test_conflicting_insert_names_both(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    old = refs[(2, 1, "g")]
    new_id = uuid.uuid4()
    with pytest.raises(ConflictingDatasetError) as info:
        registry.insert_dataset("calexp", {"visit": 2, "detector": 1, "band": "g"}, "sfm",
                                "new-manifest", id=new_id)
    message = str(info.value)
    assert str(old.id) in message and old.manifest in message
    assert str(new_id) in message and "new-manifest" in message
    assert registry.count_datasets() == len(refs) + 3


def test_bulk_insert_is_all_or_nothing(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    before = registry.count_datasets()
    data_ids = [{"visit": 50, "detector": d, "band": "r"} for d in range(5)]
    data_ids.append({"visit": 1, "detector": 0, "band": "r"})  # exists in sfm
    with pytest.raises(ConflictingDatasetError, match="already has"):
        registry.insert_datasets("calexp", data_ids, "sfm", ["m"] * 6)
    assert registry.count_datasets() == before
    twice = [{"visit": 60, "detector": 0, "band": "r"}] * 2
    with pytest.raises(ConflictingDatasetError, match="twice"):
        registry.insert_datasets("calexp", twice, "sfm", ["a", "b"])
    with pytest.raises(DataIdError, match="give one of each"):
        registry.insert_datasets("calexp", twice, "sfm", ["a"])
    assert registry.count_datasets() == before


def test_id_collision(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    taken = refs[(1, 0, "r")].id
    with pytest.raises(ConflictingDatasetError, match=f"dataset ID {taken} is taken"):
        registry.insert_dataset("calexp", {"visit": 70, "detector": 0, "band": "r"}, "sfm",
                                "m", id=taken)


def test_partial_lookup(registry: Registry) -> None:
    registry.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    registry.register_run("jointcal")
    registry.register_run("sfm")
    one = registry.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, "jointcal", "a")
    registry.insert_dataset("calexp", {"visit": 1, "detector": 3, "tract": 9}, "jointcal", "b")
    registry.insert_dataset("calexp", {"visit": 1, "detector": 3, "tract": 10}, "jointcal", "c")
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2}, "jointcal",
                                 partial=True) == one
    with pytest.raises(AmbiguousDatasetError) as info:
        registry.find_dataset("calexp", {"visit": 1, "detector": 3}, "jointcal", partial=True)
    message = str(info.value)
    assert "matches 2 datasets" in message
    assert "{detector: 3, tract: 9, visit: 1}" in message
    assert "{detector: 3, tract: 10, visit: 1}" in message
    assert isinstance(info.value, LookupError)
    assert registry.find_dataset("calexp", {"visit": 5}, "jointcal", partial=True) is None
    assert len(registry.find_datasets_partial("calexp", {"visit": 1}, "jointcal")) == 3
    with pytest.raises(DataIdError, match="extra band"):
        registry.find_datasets_partial("calexp", {"band": "r"}, "jointcal")
    with pytest.raises(DataIdError, match="missing tract"):
        registry.find_dataset("calexp", {"visit": 1, "detector": 2}, "jointcal")
    # Per data ID, the first collection wins: the same data ID in two runs is one candidate.
    registry.insert_dataset("calexp", {"visit": 1, "detector": 2, "tract": 9}, "sfm", "z")
    assert registry.find_dataset("calexp", {"visit": 1, "detector": 2}, ["sfm", "jointcal"],
                                 partial=True).manifest == "z"


def test_get_remove_manifests(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    ref = refs[(2, 0, "g")]
    assert registry.get_dataset(ref.id) == ref
    assert registry.get_dataset(uuid.uuid4()) is None
    assert ref.manifest in registry.manifests()
    total = registry.count_datasets()
    assert registry.count_datasets("calexp") == total
    assert registry.remove_datasets([ref, refs[(3, 1, "r")].id]) == 2
    assert registry.remove_datasets([ref]) == 0
    assert registry.get_dataset(ref.id) is None
    assert ref.manifest not in registry.manifests()
    assert registry.count_datasets() == total - 2
    assert registry.query_datasets("calexp", collections="best") == []  # tags went too


def test_query_datasets_collections(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    everything = registry.query_datasets("calexp", "visit = 1")
    assert {r.run for r in everything} == {"sfm", "jointcal"} and len(everything) == 6
    first = registry.query_datasets("calexp", "visit = 1", collections="all", find_first=True)
    assert {r.run for r in first} == {"jointcal"} and len(first) == 3
    both = registry.query_datasets("calexp", "visit = 1", collections=["all", "sfm"])
    assert len(both) == 6  # a dataset reachable twice is listed once
    with pytest.raises(MissingCollectionError):
        registry.query_datasets("calexp", collections="nope")
    with pytest.raises(MissingDatasetTypeError):
        registry.query_datasets("nope")


# -- transactions ---------------------------------------------------------------------
@pytest.mark.usefixtures("sfm_calexp")
def test_transaction_rolls_back_everything(registry: Registry) -> None:
    with pytest.raises(RuntimeError), registry.transaction():
        registry.register_dataset_type("raw", ("exposure", "newdim"), "Exposure")
        registry.insert_dataset("raw", {"exposure": 1, "newdim": "x"}, "sfm", "m")
        registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
        raise RuntimeError("blob store failed")
    assert registry.count_datasets() == 0
    with pytest.raises(MissingDatasetTypeError):
        registry.get_dataset_type("raw")
    assert "newdim" not in registry.dimensions()
    # The rolled-back dimension can be typed afresh, and differently.
    registry.register_dataset_type("raw", ("exposure", "newdim"), "Exposure")
    registry.insert_dataset("raw", {"exposure": 1, "newdim": 4}, "sfm", "m")
    assert registry.dimensions()["newdim"] == "int"


@pytest.mark.usefixtures("sfm_calexp")
def test_failed_call_inside_transaction_keeps_the_rest(registry: Registry) -> None:
    with registry.transaction():
        registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
        with pytest.raises(ConflictingDatasetError):
            registry.insert_datasets("calexp", [{"visit": 2}, {"visit": 1}], "sfm", ["a", "b"])
        registry.insert_dataset("calexp", {"visit": 3}, "sfm", "m")
    assert sorted(r.data_id["visit"] for r in registry.query_datasets("calexp")) == [1, 3]


@pytest.mark.usefixtures("sfm_calexp")
def test_failed_single_insert_inside_transaction_keeps_the_rest(registry: Registry) -> None:
    # A one-row insert runs without a savepoint of its own (one SQLite statement
    # is atomic): its conflict must still leave the transaction usable.
    with registry.transaction():
        registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
        with pytest.raises(ConflictingDatasetError):
            registry.insert_dataset("calexp", {"visit": 1}, "sfm", "other")
        registry.insert_dataset("calexp", {"visit": 2}, "sfm", "m")
    refs = sorted(registry.query_datasets("calexp"), key=lambda r: r.data_id["visit"])
    assert [(r.data_id["visit"], r.manifest) for r in refs] == [(1, "m"), (2, "m")]


@pytest.mark.usefixtures("sfm_calexp")
def test_nested_transactions_are_savepoints(registry: Registry) -> None:
    with registry.transaction():
        registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
        with pytest.raises(RuntimeError), registry.transaction():
            registry.insert_dataset("calexp", {"visit": 2}, "sfm", "m")
            with registry.transaction():
                registry.insert_dataset("calexp", {"visit": 3}, "sfm", "m")
            raise RuntimeError("undo visits 2 and 3 only")
        with registry.transaction():
            registry.insert_dataset("calexp", {"visit": 4}, "sfm", "m")
    assert sorted(r.data_id["visit"] for r in registry.query_datasets("calexp")) == [1, 4]


@pytest.mark.usefixtures("sfm_calexp")
def test_a_conflict_in_a_multi_row_insert_names_the_stored_row(registry: Registry) -> None:
    # The chunk's savepoint undoes visit 2 before the conflict is explained: the
    # message names the dataset stored before, never a row of the failed insert.
    first = registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
    with registry.transaction():
        with pytest.raises(ConflictingDatasetError) as info:
            registry.insert_datasets("calexp", [{"visit": 2}, {"visit": 1}], "sfm", ["a", "b"])
        assert registry.find_dataset("calexp", {"visit": 2}, "sfm") is None
    message = str(info.value)
    assert str(first.id) in message and "(manifest m)" in message and "(manifest a)" not in message


@pytest.mark.usefixtures("sfm_calexp")
def test_a_transaction_the_database_ended_refuses_more_work(registry: Registry) -> None:
    # A full disk or an I/O error makes SQLite roll the whole transaction back by
    # itself. A caller who catches that error must not go on writing in autocommit
    # mode: every later call in the block fails, and nothing of the block is kept.
    with pytest.raises(RepositoryError, match="ended by the database"), registry.transaction():
        registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
        with pytest.raises(RuntimeError), registry.transaction():
            registry._local.conn.connection.dbapi_connection.execute("ROLLBACK")
            raise RuntimeError("disk full (test)")
        registry.insert_dataset("calexp", {"visit": 2}, "sfm", "m")
    assert registry.count_datasets() == 0
    registry.insert_dataset("calexp", {"visit": 3}, "sfm", "m")  # a new transaction works
    assert registry.count_datasets() == 1


def test_a_lookup_after_a_commit_reads_a_run_path_without_a_transaction(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register_run("sfm")
    registry.register_dataset_type("calexp", ("visit",), "Exposure")
    registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m")
    assert registry.find_dataset("calexp", {"visit": 1}, ["sfm"]) is not None
    ref = registry.insert_dataset("calexp", {"visit": 2}, "sfm", "m")  # data_version moves on

    def no_transaction() -> None:
        raise AssertionError("the fast path opened a SQLAlchemy read transaction")

    monkeypatch.setattr(registry, "_read", no_transaction)
    assert registry.find_dataset("calexp", {"visit": 2}, ["sfm", "sfm"]) == ref
    monkeypatch.undo()
    with pytest.raises(InvalidNameError):  # not a string: the general path says why
        registry.find_dataset("calexp", {"visit": 2}, [5])  # type: ignore[list-item]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("durable, level", [(True, 2), (False, 1)])
def test_transaction_durability(registry: Registry, durable: bool, level: int) -> None:
    # SQLite's synchronous: 2 = FULL (fsync at each commit), 1 = NORMAL.
    registry.register_run("sfm")
    for _ in range(2):  # the pooled connection is reused: the setting follows each call
        with registry.transaction(durable=durable):
            conn = registry._local.conn
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
            with registry.transaction(durable=not durable):  # nested: the outer's setting
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
        with registry.transaction(durable=not durable):
            other = registry._local.conn.exec_driver_sql("PRAGMA synchronous").scalar()
            assert other == 3 - level


def test_committed_rows_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with Registry.create(path) as writer, Registry(path) as reader:
        writer.register_run("sfm")
        writer.register_dataset_type("raw", ("exposure", "ccd"), "Exposure")
        # The reader learns the new dimension column from the database.
        assert reader.get_dataset_type("raw").dimensions == ("exposure", "ccd")
        ref = writer.insert_dataset("raw", {"exposure": 1, "ccd": 4}, "sfm", "m")
        assert reader.find_dataset("raw", {"exposure": 1, "ccd": 4}, "sfm") == ref
        assert reader.get_dataset(ref.id) == ref
        # Durability: the row is in the file, seen by plain sqlite3.
        db = sqlite3.connect(path)
        assert db.execute("SELECT count(*) FROM dataset").fetchone() == (1,)
        db.close()


def test_threads_share_a_registry(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    errors: list[BaseException] = []

    def work(visit: int) -> None:
        try:
            for d in range(20):
                registry.insert_dataset("calexp", {"visit": visit, "detector": d, "band": "i"},
                                        "sfm", "t")
                assert registry.find_dataset(
                    "calexp", {"visit": visit, "detector": d, "band": "i"}, "sfm") is not None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(1000 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(registry.query_datasets("calexp", "band = 'i'")) == 80


# -- provenance -----------------------------------------------------------------------
def test_provenance(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    out, a, b = refs[(1, 0, "r")], refs[(2, 0, "g")], refs[(2, 1, "g")]
    assert registry.get_provenance(out.id) is None
    registry.record_provenance(out.id, "calibrate", "pkg.CalibrateTask", {"n": 3, "x": [1.5]},
                               [a.id, b.id])
    registry.record_provenance(out.id, "calibrate", "pkg.CalibrateTask", {"x": [1.5], "n": 3},
                               [a.id, b.id])  # same again: fine
    assert registry.get_provenance(out.id) == {
        "output_id": out.id,
        "task_label": "calibrate",
        "task_class": "pkg.CalibrateTask",
        "config": {"n": 3, "x": [1.5]},
        "input_ids": [a.id, b.id],
    }
    with pytest.raises(ConflictingDatasetError, match="has provenance already"):
        registry.record_provenance(out.id, "other", "pkg.Other", {}, [])
    with pytest.raises(DatasetNotFoundError):
        registry.record_provenance(uuid.uuid4(), "t", "T", {}, [])
    with pytest.raises(EncodingError, match="not plain JSON"):
        registry.record_provenance(a.id, "t", "T", {"x": float("nan")}, [])
    # Removing an input keeps the record; removing the output drops it.
    registry.remove_datasets([a])
    assert registry.get_provenance(out.id)["input_ids"] == [a.id, b.id]
    registry.remove_datasets([out])
    assert registry.get_provenance(out.id) is None


def test_every_error_is_a_compstore_error(registry: Registry) -> None:
    with pytest.raises(CompstoreError):
        registry.get_dataset_type("x")
    with pytest.raises(CompstoreError):
        registry.collection_type("x")
    with pytest.raises(DataIdError):
        registry.get_dataset("not-a-uuid")  # type: ignore[arg-type]


def test_data_id_values_in_refs(populated) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    ref = registry.find_dataset("calexp", DataId(visit=10, detector=2, band="g"), "sfm")
    assert isinstance(ref.data_id, DataId)
    assert ref.data_id == {"visit": 10, "detector": 2, "band": "g"}


def test_fast_exact_lookup_agrees_with_the_general_path(registry: Registry) -> None:
    """find_dataset's raw-SQLite path answers exactly as the SQLAlchemy path does."""
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    for run in ("a", "b", "c"):
        registry.register_run(run)
    refs = {}
    for run, visits in (("a", (1, 2)), ("b", (2, 3)), ("c", (3,))):
        for visit in visits:
            refs[run, visit] = registry.insert_dataset("calexp", {"visit": visit, "detector": 0}, run, run * 32)
    registry.register_collection("chain", CollectionType.CHAINED)
    registry.set_chain("chain", ["b", "a"])
    for search in (["a"], ["b", "a"], ["a", "b"], ["chain"], ["c", "chain"], "a"):
        for visit in (1, 2, 3, 4):
            data_id = {"visit": visit, "detector": 0}
            fast = registry.find_dataset("calexp", data_id, search)
            with registry.transaction():  # inside a transaction the general path answers
                general = registry.find_dataset("calexp", data_id, search)
            assert fast == general, (search, visit)
    assert registry._fast_paths, "the lookups outside a transaction took the fast path"
    # a write is seen at once (data_version changed)
    new = registry.insert_dataset("calexp", {"visit": 4, "detector": 0}, "a", "d" * 32)
    assert registry.find_dataset("calexp", {"visit": 4, "detector": 0}, ["chain"]) == new
    registry.remove_datasets([new])
    assert registry.find_dataset("calexp", {"visit": 4, "detector": 0}, ["chain"]) is None
    # ... and so is a new search path for a cached collection (the cached flattening goes).
    assert registry.find_dataset("calexp", {"visit": 2, "detector": 0}, ["chain"]) == refs["b", 2]
    registry.set_chain("chain", ["a", "b"])
    assert registry.find_dataset("calexp", {"visit": 2, "detector": 0}, ["chain"]) == refs["a", 2]


def test_remembered_reads_the_change_counter_once(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """remembered: one counter reading per computation; a commit (ours or another's) forgets."""
    registry.register_run("sfm")
    registry.register_dataset_type("calexp", ("visit",), "Exposure")
    ref = registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m" * 32)
    inner: list[int | None] = []

    def lookup(visit: int) -> object:
        inner.append(registry.data_version())  # pinned: what remembered read
        return registry.find_dataset("calexp", {"visit": visit}, ["sfm"])

    version = registry.data_version()
    assert registry.remembered(("find", 1), lookup, 1) == ref
    assert inner == [version]
    assert registry.remembered(("find", 1), lookup, 1) == ref
    assert len(inner) == 1, "remembered while nobody commits"
    new = registry.insert_dataset("calexp", {"visit": 2}, "sfm", "n" * 32)
    # Count the readings of the counter from here on.
    reads: list[str] = []
    if registry.url.startswith("postgresql"):
        real = type(registry)._pg_data_version

        def counting(self: Registry) -> int:
            reads.append("generation")
            return real(self)

        monkeypatch.setattr(type(registry), "_pg_data_version", counting)
    else:
        registry._watcher.set_trace_callback(  # type: ignore[union-attr]
            lambda sql: reads.append(sql) if sql.startswith("PRAGMA data_version") else None
        )
    assert registry.remembered(("find", 2), lookup, 2) == new
    assert registry.remembered(("find", 1), lookup, 1) == ref
    assert len(inner) == 3, "the commit dropped what was remembered"
    assert len(reads) == 2, "one reading per remembered call, none inside the computation"
    # What raises is not remembered.
    with pytest.raises(MissingDatasetTypeError):
        registry.remembered(("bad",), registry.get_dataset_type, "nope")
    assert ("bad",) not in registry._remembered

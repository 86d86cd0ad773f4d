"""Hostile where expressions, bind values, collection types and damaged registry files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from compstore import Butler
from compstore.errors import CollectionTypeError, QueryError, RepositoryFormatError
from compstore.registry import CollectionType
from compstore.registry.where import MAX_WHERE_DEPTH, MAX_WHERE_LENGTH, parse_where


def _fill(butler: Butler, n: int) -> None:
    manifest = butler.blobs.put_document(b'{"format":"x"}')
    butler.blobs.sync()
    butler.registry.insert_datasets("thing", [{"visit": v} for v in range(n)], "r", [manifest] * n)


def _visits(butler: Butler, where: str, **bind) -> list[int]:
    return sorted(int(r.data_id["visit"]) for r in butler.query_datasets("thing", where=where, bind=bind))


@pytest.fixture
def filled(repo):
    b = Butler(repo, run="r")
    b.register_dataset_type("thing", ("visit",), "Wcs")
    _fill(b, 3000)
    return b


def test_thousands_of_or_and_terms_run_and_answer_right(filled):
    wanted = list(range(0, 3000, 3))  # 1,000 terms
    assert _visits(filled, " OR ".join(f"visit = {v}" for v in wanted)) == wanted
    assert _visits(filled, "NOT (" + " OR ".join(f"visit = {v}" for v in wanted) + ")") == [
        v for v in range(3000) if v % 3
    ]
    unwanted = set(range(0, 3000, 2))
    assert _visits(filled, " AND ".join(f"visit != {v}" for v in sorted(unwanted))) == [
        v for v in range(3000) if v not in unwanted
    ]
    assert _visits(filled, " OR ".join(["visit = 1"] * 1001)) == [1]


def test_deep_nots_and_parentheses_are_a_query_error_not_a_recursion(filled):
    assert _visits(filled, "NOT " * 10 + "visit = 1") == [1]
    for text in ("NOT " * 1000 + "visit = 1", "NOT (" * 1000 + "visit = 1" + ")" * 1000):
        with pytest.raises(QueryError, match=f"more than {MAX_WHERE_DEPTH} deep"):
            filled.query_datasets("thing", where=text)
    # Parentheses alone add no depth to the tree: 10,000 of them are fine.
    assert _visits(filled, "(" * 10_000 + "visit = 1" + ")" * 10_000) == [1]
    with pytest.raises(QueryError, match="longer than"):
        parse_where("visit = 1 OR " * (MAX_WHERE_LENGTH // 10))


def test_out_of_range_integers_are_query_errors_as_literals_and_binds(filled):
    for where in ("visit = " + "9" * 5000, f"visit = {2**63}", f"visit = {-(2**63) - 1}"):
        with pytest.raises(QueryError, match="does not fit 64 bits"):
            filled.query_datasets("thing", where=where)
    for value in (2**63, -(2**63) - 1, 10**5000, [1, 2**64]):
        with pytest.raises(QueryError, match="does not fit 64 bits"):
            filled.query_datasets("thing", where="visit IN (:v)", bind={"v": value})
    assert _visits(filled, "visit = :v", v=2**63 - 1) == []
    assert _visits(filled, "visit IN (:v)", v=list(range(0, 3000, 2)) * 20)[:3] == [0, 2, 4]


def test_collection_type_by_any_name_or_a_clean_error(repo):
    assert CollectionType("chained") is CollectionType.CHAINED
    assert CollectionType(1) is CollectionType.RUN
    b = Butler(repo)
    b.register_collection("tagged", "Tagged")
    for bad in ("CHAIN", "", 7, None):
        with pytest.raises(CollectionTypeError, match="RUN, CHAINED, TAGGED"):
            b.register_collection("c", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed"])
def test_a_damaged_registry_file_is_a_clean_error(tmp_path, damage):
    root = tmp_path / "repo"
    b = Butler.create(root)
    b.register_dataset_type("thing", ("visit",), "Wcs")
    b.registry.close()
    path = root / "registry.sqlite3"
    subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(path)!r}).execute("
                    "'PRAGMA wal_checkpoint(TRUNCATE)')"], check=True)
    data = path.read_bytes()
    if damage == "garbage":
        data = b"not a database at all" * 1000
    elif damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data = data[:100] + bytes(len(data) - 100)
    for extra in root.glob("registry.sqlite3-*"):
        extra.unlink()
    path.write_bytes(data)
    # A fresh process: nothing of the healthy file is cached.
    code = (
        "from compstore import Butler\n"
        "from compstore.errors import RepositoryFormatError\n"
        "try:\n"
        f"    b = Butler({str(root)!r}); b.register_dataset_type('thing', ('visit',), 'Wcs')\n"
        "    b.query_datasets('thing')\n"
        "except RepositoryFormatError as e:\n"
        "    print('CLEAN', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.startswith("CLEAN"), out.stderr[-2000:]
    assert "registry.sqlite3 is damaged" in out.stdout and "backup" in out.stdout
    assert RepositoryFormatError  # the class the message comes from


def test_odd_data_id_keys_and_values_and_names_are_clean_errors(repo):
    from compstore.errors import DataIdError, InvalidNameError, UnknownStorageClassError

    b = Butler(repo, run="r")
    b.register_dataset_type("thing", ("visit",), "Wcs")
    for data_id in ({None: "x", "band": "y"}, {1: 2}, {"visit": {}}, {"visit": [1]}):
        with pytest.raises(DataIdError):
            b.find_dataset("thing", data_id)
    with pytest.raises(QueryError, match="is a string"):
        b.query_datasets("thing", where=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        b.get([], visit=1)  # type: ignore[arg-type]
    with pytest.raises(UnknownStorageClassError):
        b.register_dataset_type("other", ("visit",), {})  # type: ignore[arg-type]

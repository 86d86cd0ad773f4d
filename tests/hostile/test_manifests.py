"""Damaged and hostile manifests: get, verify and stats end in a CompstoreError, never a traceback."""

from __future__ import annotations

import uuid

import pytest

from compstore import Butler
from compstore.cas import canonical_json, parse_json
from compstore.cas._encoding import MAX_JSON_DEPTH
from compstore.errors import CorruptBlobError
from compstore.storage_classes import MANIFEST_FORMAT
from compstore.datastore import MAX_MANIFEST_DEPTH


@pytest.fixture
def hb(repo):
    b = Butler(repo, run="r")
    b.register_dataset_type("thing", ("visit",), "Wcs")
    b.register_dataset_type("exp", ("visit",), "Exposure")
    return b


def _doc(b: Butler, raw: bytes) -> str:
    digest = b.blobs.put_document(raw)
    b.blobs.sync()
    return digest


def _manifest(b: Butler, components: dict, storage_class: str = "Wcs", **extra) -> str:
    value = {"format": MANIFEST_FORMAT, "storage_class": storage_class, "attributes": {},
             "components": components, **extra}
    return _doc(b, canonical_json(value))


def test_parse_json_refuses_deep_nesting_without_recursing():
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(ValueError, match="nested deeper"):
            parse_json(b"[" * depth + b"]" * depth)
    # Wide is fine: only depth is bounded.
    assert len(parse_json(b"[" + b"[]," * 10_000 + b"1]")) == 10_001


def test_a_manifest_nested_100000_deep_is_a_clean_error(hb):
    deep = b"[" * 100_000 + b"]" * 100_000
    raw = (b'{"attributes":' + deep + b',"components":{},"format":"' + MANIFEST_FORMAT.encode()
           + b'","storage_class":"Wcs"}')
    digest = _doc(hb, raw)
    hb.registry.insert_dataset("thing", {"visit": 1}, "r", digest)
    with pytest.raises(CorruptBlobError, match=digest):
        hb.get("thing", visit=1)
    with pytest.raises(CorruptBlobError, match=digest):
        hb.stats()
    report = hb.verify()
    assert [(p.digest, p.problem) for p in report.problems] == [(digest, "corrupt")]


def test_a_long_chain_of_nested_manifests_is_refused_on_get_and_walked_by_stats(hb):
    digest = _manifest(hb, {})
    for _ in range(5_000):
        digest = _manifest(hb, {"value": {"storage_class": "Wcs", "manifest": digest}})
    hb.registry.insert_dataset("thing", {"visit": 2}, "r", digest)
    with pytest.raises(CorruptBlobError, match=f"more than {MAX_MANIFEST_DEPTH} deep"):
        hb.get("thing", visit=2)
    assert hb.stats().datasets == 1  # iterative walk: no RecursionError
    assert hb.verify().ok


@pytest.mark.parametrize(
    "manifest",
    [
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "components": {}},
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "attributes": [], "components": {}},
        {"format": MANIFEST_FORMAT, "storage_class": 7, "attributes": {}, "components": {}},
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "attributes": {}, "components": []},
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "attributes": {"xy0": "x"},
         "components": {}},
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "attributes": {},
         "components": {"image": {"array": 5}}},
        {"format": MANIFEST_FORMAT, "storage_class": "Exposure", "attributes": {},
         "components": {"image": ["array"]}},
    ],
)
def test_a_manifest_of_the_wrong_shape_is_a_clean_error(hb, manifest):
    digest = _doc(hb, canonical_json(manifest))
    hb.registry.insert_dataset("exp", {"visit": 3}, "r", digest)
    with pytest.raises(CorruptBlobError, match=digest):
        hb.get("exp", visit=3)
    assert not hb.verify().ok or manifest.get("attributes") == {"xy0": "x"}


def test_a_reference_cycle_names_the_datasets(hb):
    a, b = uuid.uuid4(), uuid.uuid4()
    to_b = _manifest(hb, {"value": {"storage_class": "Wcs", "dataset": str(b), "component": None}})
    to_a = _manifest(hb, {"value": {"storage_class": "Wcs", "dataset": str(a)}})
    hb.registry.insert_dataset("thing", {"visit": 4}, "r", to_b, id=a)
    hb.registry.insert_dataset("thing", {"visit": 5}, "r", to_a, id=b)
    with pytest.raises(CorruptBlobError, match="cycle") as info:
        hb.get("thing", visit=4)
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_a_reference_that_is_not_a_uuid_is_a_clean_error(hb):
    digest = _manifest(hb, {"value": {"storage_class": "Wcs", "dataset": "../../etc"}})
    hb.registry.insert_dataset("thing", {"visit": 6}, "r", digest)
    with pytest.raises(CorruptBlobError, match="not one of"):
        hb.get("thing", visit=6)

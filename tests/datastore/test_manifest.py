"""The typed manifest, the one walk, and the layering of the packages around them."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

import compstore
import compstore.storage_classes
from compstore.cache import ObjectCache
from compstore.cas import MemoryBlobStore, digest_bytes
from compstore.datastore import (
    MANIFEST_FORMAT,
    Manifest,
    ObjectIO,
    entry_kind,
    parse_manifest,
    walk,
    walk_entries,
)
from compstore.errors import BlobNotFoundError, CorruptBlobError
from compstore.testing.sky import make_exposure

D = "0" * 32


def test_manifest_round_trips_and_reads_as_its_document() -> None:
    manifest = Manifest(
        "Exposure",
        {"xy0": [0, 0]},
        {"wcs": {"storage_class": "Wcs", "document": D}},
    )
    data = manifest.to_document()
    parsed = parse_manifest(digest_bytes(data), data)
    assert parsed == manifest or parsed.to_document() == data
    assert parsed["format"] == MANIFEST_FORMAT
    assert parsed["components"] is parsed.components
    assert dict(parsed)["storage_class"] == "Exposure"
    with pytest.raises(KeyError):
        parsed["nothing"]


@pytest.mark.parametrize(
    "data",
    [b"[]", b"{", b'{"format": "other"}', b'{"format": "compstore.manifest/1", "storage_class": 1}'],
)
def test_parse_manifest_refuses_what_is_not_one(data: bytes) -> None:
    with pytest.raises(CorruptBlobError):
        parse_manifest(D, data)


def test_entry_kind() -> None:
    assert entry_kind({"array": D}) == "array"
    assert entry_kind({"dataset": str(uuid.uuid4()), "component": "wcs"}) == "dataset"
    assert entry_kind({"array": 3}) is None
    assert entry_kind("array") is None


def test_walk_matches_what_a_write_stored() -> None:
    blobs = MemoryBlobStore()
    io = ObjectIO(blobs, ObjectCache(1 << 26))
    root = io.write(make_exposure(1, 1, size=32), "Exposure")
    found = list(walk(io.manifest, root))
    assert found[0] == ("manifest", root)
    stored = set(blobs.iter_arrays()) | set(blobs.iter_documents())
    assert {target for _, target in found} == stored
    assert {(("document" if k == "manifest" else k), t) for k, t in found} == set(
        io.iter_components(root)
    )


def test_walk_yields_references_only_when_asked() -> None:
    other = str(uuid.uuid4())
    manifests = {
        "a" * 32: Manifest("X", {}, {"n": {"storage_class": "Y", "manifest": "b" * 32}}),
        "b" * 32: Manifest("Y", {}, {"r": {"storage_class": "Wcs", "dataset": other}}),
    }
    assert list(walk(manifests.__getitem__, "a" * 32)) == [
        ("manifest", "a" * 32), ("manifest", "b" * 32)
    ]
    assert ("dataset", other) in list(walk(manifests.__getitem__, "a" * 32, datasets=True))


def _tree() -> dict[str, Manifest]:
    # a -> b (nested) and c (missing); b names an array, a malformed entry, a reference.
    return {
        "a" * 32: Manifest("X", {}, {
            "n": {"storage_class": "Y", "manifest": "b" * 32},
            "gone": {"storage_class": "Y", "manifest": "c" * 32},
        }),
        "b" * 32: Manifest("Y", {}, {
            "pixels": {"storage_class": "Array", "array": "d" * 32},
            "junk": {"storage_class": "Array", "array": 3},
            "ref": {"storage_class": "Wcs", "dataset": "not a uuid", "component": "wcs"},
        }),
    }


def _load(manifests: dict[str, Manifest]):
    def load(digest: str) -> Manifest:
        if digest not in manifests:
            raise BlobNotFoundError(f"no document {digest}")
        return manifests[digest]
    return load


def test_walk_raises_on_what_the_tolerant_walk_reports() -> None:
    manifests = _tree()
    with pytest.raises(BlobNotFoundError):
        list(walk(_load(manifests), "a" * 32))
    del manifests["a" * 32].components["gone"]
    with pytest.raises(CorruptBlobError, match="manifest entry"):
        list(walk(_load(manifests), "a" * 32))


def test_the_tolerant_walk_reports_damage_and_goes_on() -> None:
    unreadable: list[tuple[str, str]] = []

    def on_unreadable(digest: str, exc: Exception):
        unreadable.append((digest, type(exc).__name__))
        # salvaged some other way: its components are walked anyway
        return {"salvaged": {"storage_class": "Array", "document": "e" * 32}}

    found = list(walk_entries(_load(_tree()), "a" * 32, on_unreadable=on_unreadable))
    assert [(k, t, n) for k, t, n, _ in found] == [
        ("manifest", "a" * 32, ""),
        ("manifest", "c" * 32, ""),
        ("document", "e" * 32, "salvaged"),
        ("manifest", "b" * 32, ""),
        ("array", "d" * 32, "pixels"),
        ("malformed", "b" * 32, "junk"),
        ("dataset", "not a uuid", "ref"),  # lenient: the caller checks the ID
    ]
    assert found[-1][3]["component"] == "wcs"
    assert unreadable == [("c" * 32, "BlobNotFoundError")]


def test_a_shared_seen_walks_each_manifest_once_across_calls() -> None:
    manifests = _tree()
    seen: set[str] = set()
    first = [t for k, t, _, _ in walk_entries(_load(manifests), "b" * 32, seen=seen, on_unreadable=lambda d, e: None)]
    assert first[0] == "b" * 32 and seen == {"b" * 32}
    again = [(k, t) for k, t, _, _ in walk_entries(_load(manifests), "a" * 32, seen=seen, on_unreadable=lambda d, e: None)]
    assert again == [("manifest", "a" * 32), ("manifest", "c" * 32)]  # b not walked again
    assert list(walk_entries(_load(manifests), "a" * 32, seen=seen)) == []


def test_verify_has_no_manifest_walk_of_its_own() -> None:
    import compstore.butler.verify as verify

    source = Path(verify.__file__).read_text()
    assert "walk_entries(" in source and ".pop()" not in source and "stack" not in source


def test_storage_classes_import_only_objects_errors_and_plugins() -> None:
    package = Path(compstore.storage_classes.__file__).parent
    # compstore._plugins: the one plug-in table (imports only compstore.errors).
    allowed = {"compstore.objects", "compstore.errors", "compstore._plugins"}
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                targets = [node.module or ""]
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                targets = (
                    [f"compstore.{node.module}"]
                    if node.module
                    else [f"compstore.{alias.name}" for alias in node.names]
                )
            else:
                continue  # within storage_classes, or not an import
            for target in targets:
                if not target.startswith("compstore"):
                    continue
                if path.name == "__init__.py" and target == "compstore.datastore":
                    continue  # the lazy answer for the names that moved there
                assert target.split(".")[:2] in ([*a.split(".")] for a in allowed), (
                    f"{path.name} imports {target}"
                )


def test_old_names_still_answer() -> None:
    from compstore.storage_classes import MANIFEST_FORMAT as old_format
    from compstore.storage_classes import ObjectIO as old_io

    assert old_io is ObjectIO and old_format == MANIFEST_FORMAT
    with pytest.raises(AttributeError):
        compstore.storage_classes.no_such_name  # noqa: B018


def test_the_plugin_table_imports_only_errors() -> None:
    import compstore._plugins as plugins

    tree = ast.parse(Path(plugins.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
    }
    assert imported == {"errors"}, imported

"""Value types, name rules and the package's public surface."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import compstore.registry as registry_pkg
from compstore.errors import InvalidNameError
from compstore.registry import CollectionType, DataId, DatasetRef, DatasetType
from compstore.registry._types import (
    validate_collection_name,
    validate_dataset_type_name,
    validate_dimension_name,
)


def test_public_names() -> None:
    assert registry_pkg.__all__ == [
        "BUILTIN_DIMENSIONS",
        "CollectionType",
        "DataId",
        "DatasetRef",
        "DatasetType",
        "DatasetTypeDefinition",
        "Registry",
        "derived_dataset_id",
        "parse_where",
    ]
    for name in registry_pkg.__all__:
        assert hasattr(registry_pkg, name)


def test_registry_imports_only_errors_from_compstore() -> None:
    import ast
    from pathlib import Path

    for path in Path(registry_pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # Relative imports count too: "from ..cas import x" is compstore.cas.
                base = "compstore.registry".split(".")[: 2 - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if module.startswith("compstore") and not module.startswith("compstore.registry"):
                    assert module == "compstore.errors", (path, module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("compstore"), (path, alias.name)


def test_data_id_is_sorted_hashable_and_equal_to_dict() -> None:
    a = DataId({"visit": 1, "detector": 2})
    b = DataId(detector=2, visit=1)
    assert a == b and hash(a) == hash(b)
    assert a == {"visit": 1, "detector": 2}
    assert list(a) == ["detector", "visit"]
    assert repr(a) == "{detector: 2, visit: 1}"
    assert repr(DataId(band="r")) == "{band: 'r'}"
    assert a["visit"] == 1 and len(a) == 2 and "visit" in a
    with pytest.raises(KeyError):
        a["tract"]
    with pytest.raises(AttributeError):
        a.foo = 1  # type: ignore[attr-defined]
    assert {a: "x"}[b] == "x"
    assert a.to_dict() == {"detector": 2, "visit": 1}
    assert a != DataId(visit=1)


def test_frozen_value_types() -> None:
    dt = DatasetType("calexp", ["visit", "detector"], "Exposure")  # type: ignore[arg-type]
    assert dt.dimensions == ("visit", "detector")
    assert str(dt) == "calexp(visit, detector) -> Exposure"
    with pytest.raises(AttributeError):
        dt.name = "x"  # type: ignore[misc]
    ref = DatasetRef(uuid.uuid4(), "calexp", DataId(visit=1), "sfm", "abc")
    assert hash(ref) == hash(DatasetRef(ref.id, "calexp", DataId(visit=1), "sfm", "abc"))
    assert {c.name for c in CollectionType} == {"RUN", "CHAINED", "TAGGED"}


@pytest.mark.parametrize("name", ["calexp", "deepCoadd", "_x", "src2"])
def test_good_dataset_type_names(name: str) -> None:
    assert validate_dataset_type_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "2src", "calexp.wcs", "calexp:jointcal", "a b", "a-b", "é", None, 3]
)
def test_bad_dataset_type_names(name: object) -> None:
    with pytest.raises(InvalidNameError, match="invalid dataset type name"):
        validate_dataset_type_name(name)


@pytest.mark.parametrize("name", ["Visit", "1d", "a-b", "a.b", "", "visit;"])
def test_bad_dimension_names(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid dimension name"):
        validate_dimension_name(name)


@pytest.mark.parametrize("name", ["sfm", "u/alice/jointcal-v2.1", "HSC/runs/RC2_w40"])
def test_good_collection_names(name: str) -> None:
    assert validate_collection_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a'b", "x:y", "ü"])
def test_bad_collection_names(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid collection name"):
        validate_collection_name(name)


def test_numpy_values_in_data_ids_are_plain_after_insert(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from compstore.registry import Registry

    with Registry.create(tmp_path / "r.sqlite3") as reg:
        reg.register_dataset_type("calexp", ("visit", "band"), "Exposure")
        reg.register_run("sfm")
        ref = reg.insert_dataset("calexp", {"visit": np.int64(5), "band": np.str_("r")},
                                 "sfm", "m")
        assert type(ref.data_id["visit"]) is int and type(ref.data_id["band"]) is str

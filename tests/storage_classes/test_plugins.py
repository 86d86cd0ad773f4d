"""Third-party storage classes load through the ``compstore.storage_classes`` entry-point group."""

from __future__ import annotations

import sys
import textwrap

import pytest

from compstore.errors import StorageClassError, UnknownStorageClassError
from compstore.storage_classes import _registry, get_storage_class, storage_class_names


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """Install a fake distribution whose entry point names a storage class."""
    (tmp_path / "myplugin.py").write_text(textwrap.dedent('''
        from compstore.storage_classes import DocumentStorageClass

        class Temperature:
            def __init__(self, kelvin):
                self.kelvin = kelvin

        class TemperatureStorageClass(DocumentStorageClass):
            name = "Temperature"
            python_type = Temperature

            def to_json(self, obj):
                return {"kelvin": obj.kelvin}

            def from_json(self, value):
                return Temperature(value["kelvin"])
    '''))
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[compstore.storage_classes]\nTemperature = myplugin:TemperatureStorageClass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    _registry._classes.forget("Temperature")
    sys.modules.pop("myplugin", None)


def test_entry_point_storage_class_round_trips(plugin_dist, tmp_path):
    from compstore import Butler

    storage_class = get_storage_class("Temperature")
    Butler.create(tmp_path / "repo")
    butler = Butler(tmp_path / "repo", run="r")
    butler.register_dataset_type("temp", ("visit",), "Temperature")
    butler.put(storage_class.python_type(270.5), "temp", visit=1)
    assert butler.get("temp", visit=1).kelvin == 270.5
    # the repository names the storage class, never an import path
    manifest = butler._io.manifest(butler.find_dataset("temp", visit=1).manifest)
    assert manifest["storage_class"] == "Temperature"
    assert "myplugin" not in (tmp_path / "repo" / "registry.sqlite3").read_bytes().decode("latin-1")


def test_unknown_storage_class_message():
    with pytest.raises(UnknownStorageClassError, match="entry-point group"):
        get_storage_class("NoSuchThing")


def test_a_name_clash_is_refused():
    from compstore.storage_classes import register_storage_class
    from compstore.storage_classes._leaf import CalibStorageClass

    class Fake(CalibStorageClass):
        pass

    with pytest.raises(StorageClassError, match="registered already, for CalibStorageClass"):
        register_storage_class(Fake())
    register_storage_class(CalibStorageClass())  # the same class again: fine


@pytest.fixture
def broken_dists(tmp_path, monkeypatch):
    """Two plug-ins: one whose module fails to import, one loading something else."""
    (tmp_path / "brokenplugin.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "wrongplugin.py").write_text("class NotAStorageClass:\n    pass\n")
    dist = tmp_path / "brokenplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[compstore.storage_classes]\nBroken = brokenplugin:Whatever\n"
        "Wrong = wrongplugin:NotAStorageClass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("brokenplugin", "wrongplugin"):
        sys.modules.pop(name, None)


def test_a_broken_plugin_fails_only_its_own_name(broken_dists):
    with pytest.raises(StorageClassError, match=r"'Broken' .*failed to load: boom at import; fix"):
        get_storage_class("Broken")
    with pytest.raises(StorageClassError, match="must load a StorageClass for .Wrong."):
        get_storage_class("Wrong")
    # Every other storage class still works, and the names are listed without loading.
    assert get_storage_class("Exposure").name == "Exposure"
    assert {"Broken", "Wrong", "Exposure"} <= set(storage_class_names())

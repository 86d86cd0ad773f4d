"""Butler.remove refuses to break the datasets that refer to the ones removed (use case 7)."""

from __future__ import annotations

import pytest

from compstore import Butler
from compstore.errors import DatasetInUseError
from compstore.objects import CoaddInput, CoaddInputs


@pytest.fixture
def coadded(butler, sky):
    """Two calexps; a coadd whose inputs refer to both; a second-level coadd referring to the first."""
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    inputs = []
    for detector in range(2):
        exposure, _ = sky(1, detector)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        inputs.append(CoaddInput("calexp", {"visit": 1, "detector": detector}, wcs=exposure.wcs))
    coadd, _ = sky(2, 0)
    butler.put(coadd.replace(coadd_inputs=CoaddInputs(inputs)), "deepCoadd", tract=1, patch=1, band="r")
    outer = CoaddInputs([CoaddInput("deepCoadd", {"tract": 1, "patch": 1, "band": "r"}, wcs=coadd.wcs)])
    other, _ = sky(3, 0)
    butler.put(other.replace(coadd_inputs=outer), "deepCoadd", tract=1, patch=2, band="r")
    assert butler.verify().ok
    return butler


def test_removing_a_referenced_calexp_is_refused_and_names_the_referrers(coadded):
    calexp = coadded.find_dataset("calexp", visit=1, detector=0)
    with pytest.raises(DatasetInUseError) as err:
        coadded.remove(calexp)
    message = str(err.value)
    assert "deepCoadd {'band': 'r', 'patch': 1, 'tract': 1} in run 'sfm'" in message
    assert "deepCoadd {'band': 'r', 'patch': 2, 'tract': 1}" in message  # refers to that coadd
    assert "referrers=True" in message
    assert sorted(r.data_id["patch"] for r in err.value.referrers) == [1, 2]
    # Nothing was removed: every dataset still reads whole.
    reopened = Butler(coadded.root)
    assert reopened.verify().ok and reopened.verify().datasets == 4
    assert reopened.get("deepCoadd", tract=1, patch=1, band="r", collections="sfm").coadd_inputs


def test_referrers_true_removes_the_referrers_too_and_leaves_nothing_dangling(coadded):
    calexp = coadded.find_dataset("calexp", visit=1, detector=0)
    removed = coadded.remove(calexp, referrers=True)
    assert sorted((r.dataset_type, r.data_id.get("patch")) for r in removed) == [
        ("calexp", None), ("deepCoadd", 1), ("deepCoadd", 2)
    ]
    report = Butler(coadded.root).verify()
    assert report.ok and report.datasets == 1  # the other calexp


def test_a_dataset_nothing_refers_to_is_removed_as_before(coadded):
    outer = coadded.find_dataset("deepCoadd", tract=1, patch=2, band="r")
    assert coadded.remove(outer) == [outer]
    assert not coadded.exists("deepCoadd", tract=1, patch=2, band="r")
    assert Butler(coadded.root).verify().ok


def test_a_dataset_removed_and_collected_by_another_process_meanwhile_is_skipped(
    coadded, monkeypatch
):
    """remove lists every dataset, then reads their manifests: one removed (and its manifest
    deleted by gc) by another process in between refers to nothing, and is no error."""
    butler = Butler(coadded.root)  # nothing read yet: no manifest in its caches
    listed = butler._all_refs()
    outer = coadded.find_dataset("deepCoadd", tract=1, patch=2, band="r")
    Butler(coadded.root).remove(outer)  # another process: remove, then gc
    assert Butler(coadded.root).gc().components > 0
    monkeypatch.setattr(butler, "_all_refs", lambda collections=None: listed)
    butler.cache.clear()  # the process's cache of this repository holds what coadded put
    calexp = butler.find_dataset("calexp", visit=1, detector=0)
    with pytest.raises(DatasetInUseError):  # the first deepCoadd still refers to it
        butler.remove(calexp)
    inner = butler.find_dataset("deepCoadd", tract=1, patch=1, band="r")
    assert butler.remove(inner) == [inner]

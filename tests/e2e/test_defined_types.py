"""Defined dataset types end to end on the synthetic sky: use cases 5, 6 and 10."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u

from compstore import Butler, VisitExposure
from compstore.errors import (
    CombineError,
    DataIdError,
    DatasetNotFoundError,
    DatasetTypeConflictError,
    DefinitionError,
)
from compstore.testing.repository import blob_bytes
from compstore.testing.sky import OBJECT_TABLE_MEMBERS, make_object_tables, make_visit

DETECTORS = (0, 1, 2, 3)


@pytest.fixture
def visit_repo(tmp_path):
    root = tmp_path / "repo"
    Butler.create(root)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        exposures, catalogs = make_visit(visit, DETECTORS, size=128)
        for d, e, c in zip(DETECTORS, exposures, catalogs):
            butler.put(e, "calexp", visit=visit, detector=d)
            butler.put(c, "src", visit=visit, detector=d)
    return root


# -- use case 6: aggregates -----------------------------------------------------
def test_src_visit_unites_rows_with_each_members_calib(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    before = blob_bytes(visit_repo)
    butler.register_aggregate("src_visit", "src", over=("detector",))
    assert blob_bytes(visit_repo) == before                   # a definition stores no rows
    agg = butler.get("src_visit", visit=1)
    parts = [butler.get("src", visit=1, detector=d) for d in DETECTORS]
    assert len(agg) == sum(len(p) for p in parts)
    assert list(agg["detector"]) == [d for d, p in zip(DETECTORS, parts) for _ in range(len(p))]
    assert [m.key["detector"] for m in agg.members] == list(DETECTORS)
    for member, part in zip(agg.members, parts):
        assert member.wcs is part.wcs and member.calib is part.calib   # identity holds
    # every row calibrated with its own detector's Calib (they differ)
    assert len({p.calib.zero_point for p in parts}) == len(parts)
    expected = np.concatenate([p.calibrated_flux().to_value(u.nJy) for p in parts])
    np.testing.assert_allclose(agg.calibrated_flux().to_value(u.nJy), expected)
    ra, dec = agg.sky_coordinates()
    np.testing.assert_allclose(ra, np.concatenate([p.sky_coordinates()[0] for p in parts]))
    assert blob_bytes(visit_repo) == before                   # reading adds nothing either


def test_aggregate_columns_and_where_restrict_what_is_read(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    butler.register_aggregate("src_visit", "src", over="detector")
    got = butler.get("src_visit", visit=2,
                     parameters={"columns": ["id", "instflux"], "where": "detector IN (1, 3)"})
    assert got.columns == ("id", "instflux", "detector")
    assert set(got["detector"]) == {1, 3}


def test_aggregate_components_and_conflicting_metadata(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    butler.register_aggregate("src_visit", "src", over=("detector",))
    with pytest.raises(CombineError, match="'wcs' differs between src@"):
        butler.get("src_visit.wcs", visit=1)
    # a band that members must share, stored differently for one detector
    cat = butler.get("src", visit=1, detector=0)
    table = cat.to_table()
    table.meta["band"] = "g"
    other = Butler(visit_repo, run="bands")
    other.put(cat.replace(table=table), "src", visit=1, detector=0)
    table2 = butler.get("src", visit=1, detector=1).to_table()
    table2.meta["band"] = "r"
    other.put(cat.replace(table=table2), "src", visit=1, detector=1)
    with pytest.raises(CombineError, match="'band' must be the same for every member"):
        Butler(visit_repo, collections=["bands"]).get("src_visit", visit=1)


def test_first_collection_wins_per_member(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    butler.register_aggregate("src_visit", "src", over=("detector",))
    cat = butler.get("src", visit=1, detector=2)
    redo = Butler(visit_repo, run="redo")
    redo.put(cat.select_columns(list(cat.columns)).replace(
        table=cat.to_table()[:3], members=()), "src", visit=1, detector=2)
    agg = Butler(visit_repo, collections=["redo", "sfm"]).get("src_visit", visit=1)
    rows = dict(zip(*np.unique(np.asarray(agg["detector"]), return_counts=True)))
    assert rows[2] == 3 and set(rows) == set(DETECTORS)          # detector 2 from redo, once


def test_declarations_are_checked(visit_repo):
    butler = Butler(visit_repo, run="sfm")
    butler.register_aggregate("src_visit", "src", over=("detector",))
    butler.register_aggregate("src_visit", "src", over=("detector",))        # same: no-op
    with pytest.raises(DatasetTypeConflictError, match="defined already"):
        butler.register_aggregate("src_visit", "src", over=("visit",))
    with pytest.raises(DatasetTypeConflictError, match="registered dataset type"):
        butler.register_aggregate("src", "calexp", over=("detector",))
    with pytest.raises(DatasetTypeConflictError, match="defined dataset type"):
        butler.register_dataset_type("src_visit", ("visit",), "SourceCatalog")
    with pytest.raises(DefinitionError, match="not a registered dataset type"):
        butler.register_aggregate("x_visit", "nope", over=("detector",))
    with pytest.raises(DefinitionError, match="no dimension"):
        butler.register_aggregate("x_tract", "src", over=("tract",))
    with pytest.raises(DefinitionError, match="over \\('detector',\\)"):
        butler.register_aggregate("calexp_all", "calexp", over=("visit", "detector"))
    with pytest.raises(DefinitionError, match="put its members"):
        butler.put(butler.get("src", visit=1, detector=0), "src_visit", visit=1)
    with pytest.raises(DataIdError, match="missing visit"):
        butler.get("src_visit")
    with pytest.raises(DatasetNotFoundError, match="no src dataset for src_visit"):
        Butler(visit_repo, collections=["sfm"]).get("src_visit", visit=99)


def test_definitions_are_seen_by_other_butlers_and_processes(visit_repo):
    import subprocess
    import sys

    code = (
        "from compstore import Butler\n"
        f"Butler({str(visit_repo)!r}).register_aggregate('src_visit', 'src', over=('detector',))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert len(Butler(visit_repo, collections=["sfm"]).get("src_visit", visit=1).members) == 4


# -- use case 10: whole-visit exposures ---------------------------------------------
def test_calexp_visit_is_lazy_and_shares_objects(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    butler.register_aggregate("calexp_visit", "calexp", over=("detector",))
    butler.cache.clear()
    visit = butler.get("calexp_visit", visit=1)
    assert isinstance(visit, VisitExposure)
    assert visit.detectors == DETECTORS and visit.loaded == ()
    assert butler.cache.stats()["strong_bytes"] < 64 * 1024        # no pixels read
    exposure = butler.get("calexp", visit=1, detector=2)
    assert visit[2] is exposure and visit.loaded == (2,)
    assert visit.visit_info is exposure.visit_info
    assert butler.get("calexp_visit.visit_info", visit=1) is exposure.visit_info
    wcs = butler.get("calexp_visit.wcs", visit=1)
    assert wcs[2] is exposure.wcs and sorted(wcs) == list(DETECTORS)
    some = butler.get("calexp_visit", visit=1, parameters={"detectors": [1, 3]})
    assert some.detectors == (1, 3)


def test_calexp_visit_summary_reads_no_pixels(visit_repo):
    butler = Butler(visit_repo, collections=["sfm"], run="sfm")
    butler.register_aggregate("calexp_visit", "calexp", over=("detector",))
    butler.cache.clear()
    summary = butler.get("calexp_visit.summary", visit=1)
    assert butler.cache.stats()["strong_bytes"] < 64 * 1024
    assert list(summary["detector"]) == list(DETECTORS)
    exp = butler.get("calexp", visit=1, detector=0)
    ra, dec = exp.wcs.pixel_to_sky(exp.bbox.min[0] + 63.5, exp.bbox.min[1] + 63.5)
    assert summary["ra"].unit == u.deg and summary["ra"][0] == pytest.approx(ra)
    assert summary["dec"][0] == pytest.approx(dec)
    assert summary["zero_point"][0] == pytest.approx(exp.calib.zero_point)
    assert summary["psf_sigma"][0] == pytest.approx(exp.psf.sigma)
    assert summary["ra_corners"].shape == (4, 4)


# -- use case 5: Object tables --------------------------------------------------------
@pytest.fixture
def object_repo(tmp_path):
    root = tmp_path / "objects"
    Butler.create(root)
    butler = Butler(root, run="coadd")
    for name in OBJECT_TABLE_MEMBERS:
        butler.register_dataset_type(name, ("tract", "patch", "band"), "SourceCatalog")
    for patch in (0, 1):
        for name, cat in make_object_tables(9, patch, rows=200).items():
            butler.put(cat, name, tract=9, patch=patch, band="r")
    butler.register_join("objectTable", list(OBJECT_TABLE_MEMBERS), on="id")
    return root


def test_object_table_joins_by_key(object_repo):
    butler = Butler(object_repo, collections=["coadd"])
    obj = butler.get("objectTable", tract=9, patch=1, band="r")
    ref = butler.get("deepCoadd_ref", tract=9, patch=1, band="r")
    forced = butler.get("deepCoadd_forced_src", tract=9, patch=1, band="r")
    assert list(obj["id"]) == list(ref["id"])
    # "band" is in every member: prefixed; the others keep their names
    assert "deepCoadd_ref_band" in obj.columns and "psfFlux" in obj.columns
    # forced rows came in another order: joined by key, not by position
    order = np.argsort(np.asarray(forced["id"]))
    where = order[np.searchsorted(np.asarray(forced["id"])[order], np.asarray(ref["id"]))]
    np.testing.assert_array_equal(obj["forced_psfFlux"], np.asarray(forced["forced_psfFlux"])[where])


def test_object_table_columns_open_only_their_members(object_repo, monkeypatch):
    butler = Butler(object_repo, collections=["coadd"])
    opened = []
    from compstore import datastore as _io  # the I/O engine (was storage_classes._io)

    real = _io.ObjectIO.read

    def spy(self, digest, parameters=None, component=None, **kwargs):
        if component is None:
            opened.append(digest)
        return real(self, digest, parameters, component, **kwargs)

    monkeypatch.setattr(_io.ObjectIO, "read", spy)
    got = butler.get("objectTable", tract=9, patch=0, band="r",
                     parameters={"columns": ["id", "psfFlux", "coord_ra"]})
    assert got.columns == ("id", "psfFlux", "coord_ra")
    manifests = {name: butler.find_dataset(name, tract=9, patch=0, band="r").manifest
                 for name in OBJECT_TABLE_MEMBERS}
    assert manifests["deepCoadd_forced_src"] not in opened
    assert manifests["deepCoadd_meas"] in opened and manifests["deepCoadd_ref"] in opened


def test_misaligned_join_names_the_member_and_row(object_repo):
    butler = Butler(object_repo, run="broken")
    tables = make_object_tables(9, 5, rows=50)
    meas = tables["deepCoadd_meas"]
    tables["deepCoadd_meas"] = meas.replace(table=meas.to_table()[:-1])
    for name, cat in tables.items():
        butler.put(cat, name, tract=9, patch=5, band="r")
    with pytest.raises(CombineError, match="lacks"):
        Butler(object_repo, collections=["broken"]).get("objectTable", tract=9, patch=5, band="r")
    butler.register_dataset_type("v", ("visit",), "SourceCatalog")
    with pytest.raises(DefinitionError, match="same dimensions"):
        butler.register_join("bad", ["deepCoadd_ref", "v"])


def test_cli_register_and_get(visit_repo, capsys):
    from compstore.cli import main

    assert main(["register-aggregate", "--repo", str(visit_repo), "src_visit", "src",
                 "--over", "detector"]) == 0
    assert "src_visit: src over detector" in capsys.readouterr().out
    assert main(["get", "--repo", str(visit_repo), "src_visit", "visit=1",
                 "--collections", "sfm"]) == 0
    assert "members=4" in capsys.readouterr().out

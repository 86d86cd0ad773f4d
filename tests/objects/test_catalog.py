"""SourceCatalog: columns, select, concatenate (merging shared metadata), calibrated flux."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from compstore.errors import ObjectError
from compstore.objects import Calib, SourceCatalog, Wcs

from .conftest import make_sip_wcs


def test_basic_access(catalog):
    assert len(catalog) == 5
    assert catalog.columns == ("id", "x", "y", "instflux", "instflux_err", "flags", "ra", "dec")
    assert catalog["ra"].unit == u.deg and catalog["id"].dtype == np.int64
    assert catalog["x"] is catalog.table["x"]
    assert "dec" in catalog and "mag" not in catalog
    with pytest.raises(ObjectError, match=r"'mag'.*columns: id, x"):
        catalog["mag"]


def test_select_columns_shares_data_and_objects(catalog):
    sub = catalog.select_columns(["ra", "dec", "id"])
    assert sub.columns == ("ra", "dec", "id")
    assert sub.wcs is catalog.wcs and sub.calib is catalog.calib
    assert np.shares_memory(sub["ra"].data, catalog["ra"].data)
    assert sub["ra"].unit == u.deg
    assert catalog.select_columns("x").columns == ("x",)
    with pytest.raises(ObjectError, match="'nope'"):
        catalog.select_columns(["x", "nope"])


def test_calibrated_flux(catalog):
    flux = catalog.calibrated_flux()
    assert flux.unit == u.nJy
    np.testing.assert_allclose(flux.value, catalog["instflux"].data * 2.0)
    np.testing.assert_allclose(catalog.calibrated_flux("instflux_err").value, 20.0)
    with pytest.raises(ObjectError, match="no Calib"):
        catalog.replace(calib=None).calibrated_flux()
    with pytest.raises(ObjectError, match="psfflux"):
        catalog.calibrated_flux("psfflux")


def test_concatenate_keeps_equal_wcs_and_calib(catalog):
    # A second patch with equal-by-value (not identical) Wcs and Calib.
    other = SourceCatalog(catalog.table.copy(), wcs=Wcs(make_sip_wcs()), calib=Calib(2.0, 0.1))
    other.table["id"] += 100
    merged = SourceCatalog.concatenate([catalog, other])
    assert len(merged) == 10
    assert merged.columns == catalog.columns
    assert list(merged["id"]) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    assert merged.wcs is catalog.wcs and merged.calib is catalog.calib
    assert merged["ra"].unit == u.deg


def test_concatenate_drops_differing_wcs_and_calib(catalog):
    other = catalog.replace(calib=Calib(3.0), wcs=Wcs(make_sip_wcs(crval=(10.0, 10.0))))
    merged = SourceCatalog.concatenate([catalog, other])
    assert merged.wcs is None and merged.calib is None
    assert SourceCatalog.concatenate([catalog, catalog.replace(wcs=None)]).wcs is None


def test_concatenate_merges_agreed_table_meta(catalog):
    a = catalog.replace(table=catalog.table.copy())
    b = catalog.replace(table=catalog.table.copy())
    a.table.meta.update({"TRACT": 9813, "PATCH": 1})
    b.table.meta.update({"TRACT": 9813, "PATCH": 2})
    merged = SourceCatalog.concatenate([a, b])
    assert dict(merged.table.meta) == {"TRACT": 9813}


def test_concatenate_checks_schema(catalog):
    with pytest.raises(ObjectError, match="at least one"):
        SourceCatalog.concatenate([])
    with pytest.raises(ObjectError, match="columns"):
        SourceCatalog.concatenate([catalog, catalog.select_columns(["id", "x"])])
    t = catalog.table.copy()
    t["flags"] = t["flags"].astype(bool)
    with pytest.raises(ObjectError, match="dtypes"):
        SourceCatalog.concatenate([catalog, catalog.replace(table=t)])
    t = catalog.table.copy()
    t["ra"].unit = "rad"
    with pytest.raises(ObjectError, match="units"):
        SourceCatalog.concatenate([catalog, catalog.replace(table=t)])
    with pytest.raises(ObjectError, match="SourceCatalog"):
        SourceCatalog.concatenate([catalog, catalog.table])


def test_replace_and_immutability(catalog):
    calib = Calib(9.0)
    new = catalog.replace(calib=calib)
    assert new.calib is calib and new.table is catalog.table and new.wcs is catalog.wcs
    assert catalog.replace().table is catalog.table
    for name in ("wcs", "calib", "table", "_wcs"):
        with pytest.raises(AttributeError):
            setattr(catalog, name, None)
    with pytest.raises(ObjectError, match="wcs"):
        catalog.replace(wcs="x")
    with pytest.raises(TypeError):
        catalog.replace(mask=None)


def test_construction_from_columns():
    cat = SourceCatalog({"id": np.arange(3, dtype=np.int64)})
    assert isinstance(cat.table, Table) and cat.columns == ("id",) and cat.wcs is None
    with pytest.raises(ObjectError, match="calib"):
        SourceCatalog(cat.table, calib=2.0)

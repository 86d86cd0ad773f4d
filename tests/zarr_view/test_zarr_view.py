"""Butler.zarr_store: every dataset opens in zarr, xarray and Dask with the values `get` returns."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from compstore import Background, Butler, SourceCatalog
from compstore.errors import CorruptBlobError, DatasetNotFoundError, EncodingError
from compstore.objects import CoaddInput, CoaddInputs
from compstore.zarr_view import DatasetZarrStore, _view

CALEXP = {"visit": 1, "detector": 0}


@pytest.fixture
def filled(butler, sky):
    exposure, catalog = sky(1, 0)
    butler.put(exposure, "calexp", **CALEXP)
    butler.put(catalog, "src", **CALEXP)
    return Butler(butler.root, collections="sfm")


def _assert_exposure(group, expected):
    np.testing.assert_array_equal(group["image"][:], expected.image)
    np.testing.assert_array_equal(group["mask"][:], expected.mask.array)
    np.testing.assert_array_equal(group["variance"][:], expected.variance)
    assert group["image"].dtype == expected.image.dtype
    assert dict(group["mask"].attrs["planes"]) == dict(expected.mask.planes)
    attrs = group.attrs
    assert attrs["wcs"] == expected.wcs.to_dict()
    assert attrs["calib"] == expected.calib.to_dict()
    assert attrs["visit_info"] == expected.visit_info.to_dict()
    assert attrs["psf"] == expected.psf.to_dict()
    assert list(attrs["xy0"]) == list(expected.xy0)


def test_calexp_opens_in_zarr_xarray_and_dask_with_get_values(filled):
    expected = filled.get("calexp", **CALEXP)
    store = filled.zarr_store("calexp", **CALEXP)
    assert isinstance(store, DatasetZarrStore) and store.read_only
    group = zarr.open_group(store, mode="r")
    assert {"image", "mask", "variance", "x", "y"} <= set(group.keys())
    _assert_exposure(group, expected)
    assert group.attrs["compstore"]["dataset_type"] == "calexp"
    assert group.attrs["compstore"]["run"] == "sfm"

    ds = xr.open_zarr(store)
    assert ds["image"].dims == ("y", "x")
    np.testing.assert_array_equal(ds["image"].values, expected.image)
    np.testing.assert_array_equal(ds["mask"].values, expected.mask.array)
    np.testing.assert_array_equal(ds["x"].values, expected.xy0[0] + np.arange(expected.image.shape[1]))
    assert ds.attrs["calib"] == expected.calib.to_dict()

    variance = da.from_zarr(store, component="variance")
    np.testing.assert_array_equal(variance.compute(), expected.variance)


def test_arrays_cut_into_many_chunks_with_a_short_last_one(filled, monkeypatch):
    monkeypatch.setattr(_view, "CHUNK_BYTES", 10_000)  # 9 rows of 256 float32: 29 chunks
    expected = filled.get("calexp", **CALEXP)
    store = filled.zarr_store("calexp", **CALEXP)
    group = zarr.open_group(store, mode="r")
    assert group["image"].chunks == (9, 256)
    _assert_exposure(group, expected)
    dark = da.from_zarr(store, component="image")
    assert dark.numblocks == (29, 1)
    np.testing.assert_array_equal(dark[100:200, 5:17].compute(), expected.image[100:200, 5:17])


def test_opening_reads_no_pixels_and_damage_is_reported(butler, sky):
    exposure, _ = sky(1, 0, size=1024)  # large enough for folders, not packs
    butler.put(exposure, "calexp", **CALEXP)
    filled = Butler(butler.root, collections="sfm")
    ref = filled.find_dataset("calexp", **CALEXP)
    digest = filled._io.manifest(ref.manifest)["components"]["image"]["array"]
    (filled.blobs.root / filled.blobs.component_path(digest) / "c.0.0").unlink()
    filled.cache.clear()
    reader = Butler(filled.root, collections="sfm")
    store = reader.zarr_store("calexp", **CALEXP)   # the image is not read yet
    group = zarr.open_group(store, mode="r")
    assert group["variance"][:].shape == (1024, 1024)
    with pytest.raises(CorruptBlobError, match=digest):
        group["image"][:]


def test_catalog_opens_as_a_dataset_of_its_columns(filled):
    expected = filled.get("src", **CALEXP)
    ds = xr.open_zarr(filled.zarr_store("src", **CALEXP))
    assert list(ds.data_vars) == list(expected.columns)
    for name in expected.columns:
        assert ds[name].dims == ("row",)
        np.testing.assert_array_equal(ds[name].values, np.asarray(expected[name]))
        assert ds[name].dtype == expected.table[name].dtype
    assert ds.attrs["wcs"] == expected.wcs.to_dict()


def test_strings_masks_times_and_2d_columns(butler, sky):
    _, catalog = sky(1, 0)
    n = len(catalog)
    table = Table(catalog.table, copy=True)
    table["name"] = [f"star-{i}é" for i in range(n)]
    table["code"] = np.array([b"ab", b"c\xff"] * (n // 2), dtype="S2")
    table["flux_m"] = MaskedColumn(np.arange(n, dtype=float), mask=np.arange(n) % 3 == 0)
    table["when"] = Time(60000.0 + np.arange(n) / 7, format="mjd", scale="tai")
    table["vec"] = np.arange(3 * n, dtype=np.int16).reshape(n, 3)
    butler.put(SourceCatalog(table, wcs=catalog.wcs, calib=catalog.calib), "src", **CALEXP)
    got = butler.get("src", **CALEXP).table
    group = zarr.open_group(butler.zarr_store("src", **CALEXP), mode="r")
    assert list(group["name"][:]) == list(got["name"])
    assert [v.encode("latin-1") for v in group["code"][:]] == np.asarray(got["code"]).tolist()
    np.testing.assert_array_equal(group["flux_m.mask"][:], got["flux_m"].mask)
    np.testing.assert_array_equal(group["flux_m"][:][~got["flux_m"].mask],
                                  got["flux_m"].compressed())
    np.testing.assert_allclose(group["when"][:], got["when"].mjd, rtol=0, atol=1e-9)
    assert group["when"].attrs["time_scale"] == "tai"
    np.testing.assert_array_equal(group["vec"][:], got["vec"])
    ds = xr.open_zarr(butler.zarr_store("src", **CALEXP))
    assert ds["vec"].dims == ("row", "vec_dim_1")
    assert list(ds["name"].values) == list(got["name"])


def test_components_open_alone(filled):
    expected = filled.get("calexp", **CALEXP)
    image = zarr.open_group(filled.zarr_store("calexp.image", **CALEXP), mode="r")
    assert list(image.keys()) == ["image"]
    np.testing.assert_array_equal(image["image"][:], expected.image)
    mask = zarr.open_group(filled.zarr_store("calexp.mask", **CALEXP), mode="r")
    np.testing.assert_array_equal(mask["mask"][:], expected.mask.array)
    wcs = zarr.open_group(filled.zarr_store("calexp.wcs", **CALEXP), mode="r")
    assert list(wcs.keys()) == [] and wcs.attrs["wcs"] == expected.wcs.to_dict()
    table = xr.open_zarr(filled.zarr_store("src.table", **CALEXP))
    np.testing.assert_array_equal(table["x"].values, filled.get("src", **CALEXP)["x"])


def test_derived_image_and_mask_are_presented_as_their_final_values(butler, sky):
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    butler.register_dataset_type("deepCoadd_calexp", ("tract", "patch", "band"), "Exposure")
    exposure, _ = sky(1, 0)
    inputs = CoaddInputs([CoaddInput("calexp", CALEXP, wcs=exposure.wcs, weight=2.0)])
    butler.put(exposure, "calexp", **CALEXP)
    butler.put(exposure.replace(coadd_inputs=inputs), "deepCoadd", tract=1, patch=2, band="r")
    stored = butler.get("deepCoadd", tract=1, patch=2, band="r")
    background = Background(np.array([[100.0, 120.0], [140.0, 90.0]]), stored.bbox)
    subtracted = background.subtract_from(stored)
    detected = subtracted.mask.with_plane("DETECTED", subtracted.image > 500)
    butler.put(subtracted.replace(mask=detected), "deepCoadd_calexp", tract=1, patch=2, band="r")
    data_id = {"tract": 1, "patch": 2, "band": "r"}
    manifest = butler._io.manifest(butler.find_dataset("deepCoadd_calexp", **data_id).manifest)
    assert "image_base" in manifest["components"]  # really stored derived
    expected = butler.get("deepCoadd_calexp", **data_id)
    group = zarr.open_group(butler.zarr_store("deepCoadd_calexp", **data_id), mode="r")
    _assert_exposure(group, expected)
    assert "image_base" not in group
    assert group.attrs["background"] == background.to_dict()
    assert group.attrs["coadd_inputs"][0]["weight"] == 2.0
    assert group.attrs["coadd_inputs"][0]["wcs"] == exposure.wcs.to_dict()


def test_defined_types_open_too(butler, sky):
    for detector in (0, 1):
        exposure, catalog = sky(1, detector)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        butler.put(catalog, "src", visit=1, detector=detector)
    butler.register_aggregate("src_visit", "src", over=("detector",))
    butler.register_aggregate("calexp_visit", "calexp", over=("detector",))
    agg = butler.get("src_visit", visit=1)
    ds = xr.open_zarr(butler.zarr_store("src_visit", visit=1))
    assert ds.sizes["row"] == len(agg)
    for name in agg.columns:
        np.testing.assert_array_equal(ds[name].values, np.asarray(agg[name]))
    visit = butler.get("calexp_visit", visit=1)
    store = butler.zarr_store("calexp_visit", visit=1)
    group = zarr.open_group(store, mode="r")
    assert sorted(group.group_keys()) == ["detector_0", "detector_1"]
    for detector in (0, 1):
        _assert_exposure(group[f"detector_{detector}"], visit[detector])
        sub = xr.open_zarr(store, group=f"detector_{detector}")
        np.testing.assert_array_equal(sub["image"].values, visit[detector].image)


@pytest.mark.asyncio
async def test_writes_raise(filled):
    store = filled.zarr_store("calexp", **CALEXP)
    with pytest.raises(ValueError, match="read-only"):
        await store.set("image/zarr.json", zarr.core.buffer.cpu.Buffer.from_bytes(b"{}"))
    with pytest.raises(ValueError, match="read-only"):
        await store.delete("image/zarr.json")
    with pytest.raises(ValueError, match="read-only"):
        DatasetZarrStore(store._view, read_only=False)
    group = zarr.open_group(store, mode="r")
    with pytest.raises(ValueError, match="read-only"):
        group["image"][0, 0] = 1.0
    np.testing.assert_array_equal(group["image"][:], filled.get("calexp.image", **CALEXP))


def test_bad_lookups_and_names_are_compstore_errors(butler, sky):
    with pytest.raises(DatasetNotFoundError):
        butler.zarr_store("calexp", visit=9, detector=9)
    _, catalog = sky(1, 0)
    table = Table(catalog.table, copy=True)
    table["a/b"] = np.zeros(len(table))
    butler.put(SourceCatalog(table), "src", **CALEXP)
    with pytest.raises(EncodingError, match="a/b"):
        butler.zarr_store("src", **CALEXP)

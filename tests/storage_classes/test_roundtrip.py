"""Round trips of every built-in storage class through manifests (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compstore import Background, Box2I, Calib, Exposure, GaussianPsf, ImagePsf, Mask, SourceCatalog, VisitInfo, Wcs
from compstore.cache import ObjectCache
from compstore.cas import MemoryBlobStore
from compstore.errors import EncodingError, ObjectError, StorageClassTypeError
from compstore.storage_classes import ObjectIO, WriteReport, get_storage_class, storage_class_names

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_io() -> ObjectIO:
    return ObjectIO(MemoryBlobStore(), ObjectCache(64 * 1024**2))


def tan_wcs(ra=150.0, dec=2.0, scale=0.2 / 3600, x0=10.0, y0=12.0) -> Wcs:
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [x0 + 1, y0 + 1]
    w.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return Wcs(w)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 9))


@st.composite
def exposures(draw):
    shape = draw(shapes)
    image = draw(hnp.arrays(np.float32, shape, elements=st.floats(-1e6, 1e6, width=32)))
    variance = draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1e6, width=32)))
    bits = draw(hnp.arrays(np.int32, shape, elements=st.integers(-(2**31), 2**31 - 1)))
    planes = {"BAD": 0, "SAT": 1, "EDGE": 4, "DETECTED": 5, "MINE": 31}
    xy0 = (draw(st.integers(-50, 50)), draw(st.integers(-50, 50)))
    wcs = draw(st.none() | st.builds(tan_wcs, st.floats(0, 359), st.floats(-80, 80)))
    calib = draw(st.none() | st.builds(Calib, st.floats(0.01, 100), st.floats(0, 1)))
    psf = draw(st.none() | st.builds(GaussianPsf, st.floats(0.5, 4)))
    metadata = draw(st.dictionaries(st.from_regex(r"[A-Z]{1,8}", fullmatch=True),
                                    st.integers(-5, 5) | st.text(max_size=5) | st.booleans(), max_size=4))
    return Exposure(image, Mask(bits, planes), variance, xy0=xy0, wcs=wcs, calib=calib, psf=psf,
                    metadata=metadata, band=draw(st.none() | st.sampled_from("ugrizy")),
                    detector=draw(st.none() | st.integers(0, 200)))


def assert_same_exposure(a, b):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask.array, b.mask.array)
    assert dict(a.mask.planes) == dict(b.mask.planes)
    np.testing.assert_array_equal(a.variance, b.variance)
    assert a.xy0 == b.xy0 and a.band == b.band and a.detector == b.detector
    assert a.wcs == b.wcs and a.calib == b.calib and a.psf == b.psf
    assert dict(a.metadata) == dict(b.metadata)


@SETTINGS
@given(exposures())
def test_exposure_round_trip(exposure):
    io = make_io()
    digest = io.write(exposure, "Exposure")
    io.cache.clear()
    assert_same_exposure(io.read(digest), exposure)
    # the same content gives the same manifest digest, and costs nothing the second time
    report = WriteReport()
    assert make_io().write(exposure, "Exposure") == digest
    io.write(exposure, "Exposure", report)
    assert report.written == [] and report.arrays_written == report.documents_written == 0


@SETTINGS
@given(exposures(), st.data())
def test_exposure_bbox_equals_subset(exposure, data):
    box = exposure.bbox
    x0 = data.draw(st.integers(box.x0, box.x0 + box.width - 1))
    y0 = data.draw(st.integers(box.y0, box.y0 + box.height - 1))
    w = data.draw(st.integers(1, box.x0 + box.width - x0))
    h = data.draw(st.integers(1, box.y0 + box.height - y0))
    bbox = Box2I((x0, y0), (w, h))
    io = make_io()
    digest = io.write(exposure, "Exposure")
    assert_same_exposure(io.read(digest, {"bbox": bbox}), exposure.subset(bbox))


@SETTINGS
@given(hnp.arrays(np.int32, shapes, elements=st.integers(-(2**31), 2**31 - 1)))
def test_mask_round_trip_keeps_unnamed_bits(bits):
    mask = Mask(bits)
    io = make_io()
    got = io.read(io.write(mask, "Mask"))
    np.testing.assert_array_equal(got.array, mask.array)
    assert dict(got.planes) == dict(mask.planes)


def test_mask_planes_stored_apart():
    bits = np.zeros((64, 64), dtype=np.int32)
    mask = Mask(bits)
    mask.set_plane("SAT", bits == 0)
    io = make_io()
    first = io.write(mask, "Mask")
    detected = np.zeros((64, 64), dtype=bool)
    detected[5:9, 5:9] = True
    report = WriteReport()
    second = io.write(mask.with_plane("DETECTED", detected), "Mask", report)
    assert first != second
    assert report.arrays_written == 1  # the DETECTED plane alone


dtypes = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                          np.uint64, np.float32, np.float64, np.bool_, ">f8", ">i4"])


@SETTINGS
@given(st.lists(dtypes, min_size=1, max_size=5), st.integers(0, 20), st.data())
def test_table_round_trip(column_dtypes, length, data):
    table = Table(meta={"origin": "test", "n": 3})
    for i, dtype in enumerate(column_dtypes):
        values = data.draw(hnp.arrays(np.dtype(dtype), (length,)))
        if i == 0 and length:
            column = MaskedColumn(values, name=f"c{i}", mask=data.draw(hnp.arrays(bool, (length,))))
        else:
            column = Column(values, name=f"c{i}", unit="deg" if i == 1 else None,
                            description="a column" if i == 2 else None)
        table.add_column(column)
    io = make_io()
    got = io.read(io.write(table, "Table"))
    assert got.colnames == table.colnames and dict(got.meta) == dict(table.meta)
    for name in table.colnames:
        assert got[name].dtype == table[name].dtype
        assert got[name].unit == table[name].unit
        assert got[name].description == table[name].description
        np.testing.assert_array_equal(np.ma.getmaskarray(got[name]), np.ma.getmaskarray(table[name]))
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(table[name]))


def test_source_catalog_round_trip_and_columns():
    table = Table({"id": np.arange(5, dtype=np.int64), "ra": np.linspace(10, 11, 5) * u.deg,
                   "instflux": np.full(5, 100.0)})
    cat = SourceCatalog(table, wcs=tan_wcs(), calib=Calib(2.0, 0.1))
    io = make_io()
    digest = io.write(cat, "SourceCatalog")
    got = io.read(digest)
    assert got.columns == cat.columns and got.wcs == cat.wcs and got.calib == cat.calib
    assert got["ra"].unit == u.deg
    sub = io.read(digest, {"columns": ["instflux"]})
    assert sub.columns == ("instflux",)
    assert io.read(digest, component="calib") == cat.calib


@pytest.mark.parametrize(
    "value, storage_class",
    [
        (tan_wcs(), "Wcs"),
        (Calib(1.5, 0.01), "Calib"),
        (GaussianPsf(1.7), "Psf"),
        (ImagePsf(np.outer(np.hanning(7), np.hanning(7)) + 0.01), "Psf"),
        (Background(np.arange(12, dtype=float).reshape(3, 4), Box2I((0, 0), (40, 30))), "Background"),
        (VisitInfo(exposure_time=30.0, date_mjd=60000.5, boresight_ra=150.0, boresight_dec=2.0,
                   rotation_angle=12.0, airmass=1.2), "VisitInfo"),
        (Box2I((1, 2), (3, 4)), "Box2I"),
        ({"EXPTIME": 30.0, "FILTER": "r", "N": 3, "OK": True, "NONE": None}, "Metadata"),
        (np.arange(12, dtype=">i2").reshape(3, 4), "Array"),
    ],
)
def test_leaf_round_trip_and_identity(value, storage_class):
    io = make_io()
    digest = io.write(value, storage_class)
    io.cache.clear()
    got = io.read(digest)
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(got, value)
        assert got.dtype == value.dtype
    elif isinstance(value, dict):
        assert dict(got) == value and list(got) == list(value)
    else:
        assert got == value
    assert io.read(digest) is got


def test_wrong_type_and_bad_metadata_are_refused():
    io = make_io()
    with pytest.raises(StorageClassTypeError, match="Wcs"):
        io.write(Calib(1.0), "Wcs")
    with pytest.raises(EncodingError, match="BAD"):
        io.write({"BAD": [1, 2]}, "Metadata")
    with pytest.raises(EncodingError):
        io.write(np.array([object()]), "Array")


def test_builtin_names():
    assert {"Exposure", "SourceCatalog", "Mask", "Table", "Array", "Wcs", "Calib", "Psf",
            "VisitInfo", "Background", "Box2I", "Metadata"} <= set(storage_class_names())
    assert get_storage_class("Exposure").parameters == frozenset({"bbox"})


def test_a_stored_mask_cannot_gain_a_plane_in_place() -> None:
    # Its planes are part of the stored value: a plane added in place would be
    # lost, since putting the mask again is answered from its remembered digest.
    io = make_io()
    mask = Mask(np.zeros((4, 5), dtype=np.int32), {"BAD": 0})
    digest = io.write(mask, "Mask")
    got = io.read(digest)
    assert got.add_plane("BAD") == 0  # a known plane: nothing changes, allowed
    with pytest.raises(ObjectError, match="read-only"):
        got.add_plane("NEW")
    assert "NEW" not in got.planes
    assert io.write(got.with_plane("NEW", np.ones((4, 5), bool)), "Mask") != digest

"""MaskedImage and Exposure: validation, replace() sharing, subset views, immutability."""

from __future__ import annotations

import numpy as np
import pytest

from compstore.errors import ObjectError
from compstore.objects import (
    Box2I,
    Calib,
    Exposure,
    GaussianPsf,
    Mask,
    MaskedImage,
    ReplaceKeyError,
)

COMPONENTS = ("wcs", "calib", "psf", "visit_info", "background", "metadata", "band", "detector")


def test_masked_image_defaults_and_conversion():
    mi = MaskedImage(np.arange(6, dtype=np.int16).reshape(2, 3))
    assert mi.image.dtype == np.float32 and mi.variance.dtype == np.float32
    assert isinstance(mi.mask, Mask) and not mi.mask.array.any()
    assert not mi.variance.any()  # documented default: zeros, "unknown"
    f32 = np.ones((2, 3), np.float32)
    assert MaskedImage(f32).image is f32  # float32 is shared, not copied


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.ones(3),), "2-D"),
        ((np.ones((2, 2), complex),), "real"),
        ((np.ones((2, 2)), np.zeros((2, 3), np.int32)), "shapes differ"),
        ((np.ones((2, 2)), None, np.ones((3, 2))), "shapes differ"),
        ((np.array([["a", "b"]]),), "real"),
    ],
)
def test_masked_image_errors(args, match):
    with pytest.raises(ObjectError, match=match):
        MaskedImage(*args)


def test_exposure_from_masked_image():
    mi = MaskedImage(np.ones((2, 2), np.float32))
    exp = Exposure(mi, xy0=(3, 4))
    assert exp.masked_image is mi and exp.bbox == Box2I((3, 4), (2, 2))
    with pytest.raises(ObjectError, match="not both"):
        Exposure(mi, np.zeros((2, 2), np.int32))


def test_exposure_accessors(exposure):
    assert exposure.shape == (40, 60)
    assert exposure.bbox == Box2I((100, 200), (60, 40))
    assert exposure.image is exposure.masked_image.image
    assert exposure.metadata["EXPTIME"] == 30.0 and exposure.band == "r"
    assert exposure.detector == 7


def test_metadata_is_copied_and_read_only():
    meta = {"A": 1, "B": np.float64(2.5)}
    exp = Exposure(np.zeros((2, 2)), metadata=meta)
    meta["A"] = 99
    assert exp.metadata["A"] == 1 and type(exp.metadata["B"]) is float
    with pytest.raises(TypeError):
        exp.metadata["A"] = 2  # type: ignore[index]
    with pytest.raises(ObjectError, match="metadata"):
        Exposure(np.zeros((2, 2)), metadata={"A": [1, 2]})
    with pytest.raises(ObjectError, match="keys"):
        Exposure(np.zeros((2, 2)), metadata={1: 2})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wcs": "not a wcs"}, "wcs"),
        ({"calib": 1.0}, "calib"),
        ({"psf": 2.0}, "psf"),
        ({"band": 3}, "band"),
        ({"detector": "a"}, "detector"),
        ({"detector": True}, "detector"),
        ({"xy0": (1.5, 0)}, "xy0"),
    ],
)
def test_exposure_component_types(kwargs, match):
    with pytest.raises(ObjectError, match=match):
        Exposure(np.zeros((2, 2)), **kwargs)


def test_replace_shares_everything_not_replaced(exposure):
    new_calib = Calib(0.7)
    new = exposure.replace(calib=new_calib)
    assert new is not exposure and new.calib is new_calib
    assert new.masked_image is exposure.masked_image
    assert new.image is exposure.image and new.mask is exposure.mask
    assert new.variance is exposure.variance
    for name in COMPONENTS:
        if name != "calib":
            assert getattr(new, name) is getattr(exposure, name), name
    assert new.xy0 is exposure.xy0


def test_replace_one_pixel_plane_keeps_the_others(exposure):
    mask = exposure.mask.with_plane("DETECTED", exposure.image > 105)
    new = exposure.replace(mask=mask)
    assert new.mask is mask
    assert new.image is exposure.image and new.variance is exposure.variance
    for name in COMPONENTS:
        assert getattr(new, name) is getattr(exposure, name)
    with pytest.raises(ObjectError, match="shapes differ"):
        exposure.replace(image=np.zeros((3, 3), np.float32))


def test_replace_masked_image_and_none(exposure):
    mi = MaskedImage(np.zeros(exposure.shape, np.float32))
    assert exposure.replace(masked_image=mi).masked_image is mi
    assert exposure.replace(wcs=None).wcs is None
    with pytest.raises(ObjectError, match="not both"):
        exposure.replace(masked_image=mi, image=mi.image)


def test_replace_unknown_key_is_a_type_error_listing_allowed(exposure):
    with pytest.raises(TypeError, match=r"colour.*allowed:.*visit_info"):
        exposure.replace(colour="red")
    with pytest.raises(ReplaceKeyError):
        exposure.replace(colour="red")
    with pytest.raises(ObjectError):
        exposure.replace(colour="red")


def test_subset_views_and_coordinates(exposure):
    box = Box2I((110, 205), (20, 10))
    sub = exposure.subset(box)
    assert sub.bbox == box and sub.xy0 == (110, 205)
    # Parent pixel (115, 207) is array [7, 15] of the parent and [2, 5] of the subset.
    assert sub.image[2, 5] == exposure.image[7, 15]
    for arr, parent in ((sub.image, exposure.image), (sub.variance, exposure.variance),
                        (sub.mask.array, exposure.mask.array)):
        assert np.shares_memory(arr, parent)
    assert sub.mask.planes == exposure.mask.planes
    for name in COMPONENTS:
        assert getattr(sub, name) is getattr(exposure, name)
    assert exposure[box].bbox == box
    # A subset of a subset stays in parent coordinates.
    inner = sub[Box2I((112, 206), (3, 3))]
    assert inner.image[0, 0] == exposure.image[6, 12]


@pytest.mark.parametrize(
    "box",
    [Box2I((0, 0), (5, 5)), Box2I((150, 230), (20, 20)), Box2I((100, 200), (0, 3))],
)
def test_subset_outside_raises(exposure, box):
    with pytest.raises(ObjectError, match="not inside"):
        exposure.subset(box)


def test_subset_requires_box(exposure):
    with pytest.raises(ObjectError, match="Box2I"):
        exposure.subset((0, 0, 1, 1))


@pytest.mark.parametrize("name", ["image", "wcs", "calib", "band", "xy0", "anything", "_wcs"])
def test_exposure_is_immutable(exposure, name):
    with pytest.raises(AttributeError):
        setattr(exposure, name, None)
    with pytest.raises(AttributeError):
        delattr(exposure, name)


def test_masked_image_is_immutable():
    mi = MaskedImage(np.zeros((2, 2)))
    with pytest.raises(AttributeError, match="MaskedImage is immutable"):
        mi._image = np.ones((2, 2))  # the slot itself, not only the read-only property
    with pytest.raises(AttributeError, match="MaskedImage is immutable"):
        del mi._image


def test_repr(exposure):
    text = repr(exposure)
    assert "Box2I((100, 200), (60, 40))" in text and "band='r'" in text and "wcs" in text
    assert "psf" in repr(Exposure(np.zeros((1, 1)), psf=GaussianPsf(1.0)))


def test_fits_methods_delegate_to_fits_module(monkeypatch, exposure, tmp_path):
    import sys
    import types

    calls = []
    fake = types.ModuleType("compstore.fits._exposure")
    fake.read_exposure = lambda path, hdu=None: calls.append(("read", path)) or exposure
    fake.write_exposure = lambda exp, path: calls.append(("write", exp, path))
    import compstore.fits

    monkeypatch.setitem(sys.modules, "compstore.fits._exposure", fake)
    monkeypatch.setattr(compstore.fits, "_exposure", fake, raising=False)
    path = tmp_path / "x.fits"
    exposure.write_fits(path)
    assert Exposure.read_fits(path) is exposure
    assert calls == [("write", exposure, path), ("read", path)]


def test_subtract_from_records_image_base_lineage():
    from compstore import Background, Box2I, Exposure

    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 5.0, (40, 60)).astype(np.float32)
    exposure = Exposure(image, xy0=(5, 7))
    background = Background(np.array([[90.0, 95.0], [100.0, 105.0]]), exposure.bbox)
    subtracted = background.subtract_from(exposure)
    assert subtracted.image_base is image
    np.testing.assert_array_equal(subtracted.image, image - background.evaluate(exposure.bbox))
    # a mask change keeps the lineage; a new image, background or origin drops it
    assert subtracted.replace(mask=subtracted.mask.copy()).image_base is image
    assert subtracted.replace(image=subtracted.image.copy()).image_base is None
    assert subtracted.replace(background=None).image_base is None
    # a cut-out keeps the matching part of the base
    box = Box2I((10, 12), (20, 10))
    sub = subtracted.subset(box)
    np.testing.assert_array_equal(sub.image_base, exposure.subset(box).image)
    assert exposure.image_base is None


def test_coadd_inputs_are_immutable_values():
    from compstore import Calib, Exposure, GaussianPsf
    from compstore.objects import CoaddInput, CoaddInputs

    one = CoaddInput("calexp", {"visit": 1, "detector": 2}, psf=GaussianPsf(1.5), calib=Calib(2.0), weight=3)
    inputs = CoaddInputs([one])
    assert inputs == CoaddInputs([CoaddInput("calexp", {"detector": 2, "visit": 1}, psf=GaussianPsf(1.5),
                                             calib=Calib(2.0), weight=3.0)])
    assert len(inputs) == 1 and inputs[0] is one and dict(one.data_id) == {"detector": 2, "visit": 1}
    for target in (one, inputs):
        for slot in target.__slots__[:1]:
            with pytest.raises(AttributeError, match="is immutable"):
                setattr(target, slot, 2)
            with pytest.raises(AttributeError, match="is immutable"):
                delattr(target, slot)
    assert one.weight == 3.0 and len(inputs) == 1
    exposure = Exposure(np.zeros((4, 4), np.float32), coadd_inputs=inputs)
    assert exposure.coadd_inputs is inputs
    assert exposure.replace(band="r").coadd_inputs is inputs

"""Every leaf value type: immutable, weak-referenceable, canonical plain-JSON dicts."""

from __future__ import annotations

import dataclasses
import json
import math
import weakref

import numpy as np
import pytest

from compstore.objects import (
    Background,
    Box2I,
    Calib,
    Exposure,
    GaussianPsf,
    ImagePsf,
    MaskedImage,
    Psf,
    SourceCatalog,
    VisitInfo,
    Wcs,
)

from .conftest import make_sip_wcs


def _leaves():
    box = Box2I((1, 2), (30, 40))
    return {
        "box": (box, Box2I.from_dict),
        "wcs": (Wcs(make_sip_wcs()), Wcs.from_dict),
        "calib": (Calib(0.25, 0.001), Calib.from_dict),
        "gaussian": (GaussianPsf(1.25, 15), Psf.from_dict),
        "image_psf": (ImagePsf(np.arange(1.0, 10.0).reshape(3, 3)), Psf.from_dict),
        "background": (Background([[1.0, 2.0], [3.5, -0.0]], box), Background.from_dict),
        "visit": (
            VisitInfo(exposure_time=15.0, date_mjd=60000.0, boresight_ra=1.0, boresight_dec=2.0),
            VisitInfo.from_dict,
        ),
    }


LEAVES = _leaves()


def _plain_json(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


@pytest.mark.parametrize("name", LEAVES)
def test_canonical_dict(name):
    obj, from_dict = LEAVES[name]
    d = obj.to_dict()
    assert _plain_json(d), d
    text = json.dumps(d, sort_keys=True)
    back = from_dict(json.loads(text))
    assert back == obj and hash(back) == hash(obj)
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    # An independently built equal object gives the same dict.
    assert _leaves()[name][0].to_dict() == d


@pytest.mark.parametrize("name", LEAVES)
def test_immutable(name):
    obj, _ = LEAVES[name]
    attributes = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
    for attr in [*attributes, "anything_new", *getattr(type(obj), "__slots__", ())]:
        if attr == "__weakref__":
            continue
        with pytest.raises(AttributeError):
            setattr(obj, attr, 1)
    assert LEAVES[name][0] == _leaves()[name][0]


@pytest.mark.parametrize("name", LEAVES)
def test_weak_references(name):
    obj, _ = LEAVES[name]
    ref = weakref.ref(obj)
    assert ref() is obj


def test_containers_support_weak_references():
    exp = Exposure(np.zeros((2, 2)))
    for obj in (exp, exp.masked_image, exp.mask, SourceCatalog({"id": [1]})):
        assert weakref.ref(obj)() is obj


def test_wcs_cannot_be_changed_through_its_internals():
    wcs = LEAVES["wcs"][0]
    before = wcs.to_dict()
    wcs.to_dict()["header"]["CRVAL1"] = 0.0
    wcs.astropy.wcs.crval = [0.0, 0.0]
    assert wcs.to_dict() == before


def test_arrays_of_leaves_are_read_only():
    assert not LEAVES["image_psf"][0].compute_image().flags.writeable
    assert not LEAVES["gaussian"][0].compute_image().flags.writeable
    assert not LEAVES["background"][0].grid.flags.writeable


def test_masked_image_and_exposure_cannot_gain_attributes():
    mi = MaskedImage(np.zeros((1, 1)))
    with pytest.raises(AttributeError):
        mi.extra = 1


def test_every_value_type_refuses_changes() -> None:
    from compstore.objects._frozen import Immutable

    names = ["Background", "SourceCatalog", "CoaddInput", "CoaddInputs", "MaskedImage", "Exposure", "Psf", "Wcs"]
    import compstore.objects as objects

    for name in names:
        assert issubclass(getattr(objects, name), Immutable), name

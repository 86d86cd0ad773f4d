"""Psf: normalization, sigma, value equality and type-dispatching dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compstore.errors import ObjectError
from compstore.objects import GaussianPsf, ImagePsf, Psf


@given(st.floats(0.5, 5.0), st.sampled_from([15, 25, 41]))
@settings(max_examples=25)
def test_gaussian_normalized_and_centred(sigma, size):
    psf = GaussianPsf(sigma, size)
    image = psf.compute_image()
    assert image.shape == (size, size) and image.dtype == np.float64
    assert image.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(image.argmax(), image.shape) == (size // 2, size // 2)
    assert np.allclose(image, image.T) and np.allclose(image, image[::-1, ::-1])
    assert psf.sigma == sigma
    # The position does not matter for a constant PSF.
    assert psf.compute_image((1000.0, 20.0)) is image


def test_image_psf_normalizes_a_copy_and_measures_sigma():
    kernel = GaussianPsf(2.0, 41).compute_image() * 7.0
    source = kernel.copy()
    psf = ImagePsf(source)
    source[:] = 0
    assert psf.compute_image().sum() == pytest.approx(1.0, abs=1e-12)
    assert psf.sigma == pytest.approx(2.0, rel=1e-6)  # wide kernel: moments are the Gaussian's
    assert not psf.kernel.flags.writeable
    with pytest.raises(ValueError):
        psf.kernel[0, 0] = 1.0


def test_image_psf_elongated_sigma():
    y, x = np.mgrid[-20:21, -20:21]
    kernel = np.exp(-0.5 * ((x / 3.0) ** 2 + (y / 1.0) ** 2))
    assert ImagePsf(kernel).sigma == pytest.approx(np.sqrt((9.0 + 1.0) / 2), rel=1e-6)


@pytest.mark.parametrize(
    "kernel", [np.zeros((3, 3)), -np.ones((3, 3)), np.ones(3), np.full((2, 2), np.nan), [[]]]
)
def test_image_psf_rejects(kernel):
    with pytest.raises(ObjectError):
        ImagePsf(kernel)


@pytest.mark.parametrize(
    ("sigma", "size"), [(0.0, 25), (-1.0, 25), (1.0, 24), (1.0, 0), (1.0, 2.5)]
)
def test_gaussian_rejects(sigma, size):
    with pytest.raises(ObjectError):
        GaussianPsf(sigma, size)


def test_equality_and_dicts():
    g = GaussianPsf(1.5, 21)
    assert g == GaussianPsf(1.5, 21) and hash(g) == hash(GaussianPsf(1.5, 21))
    assert g != GaussianPsf(1.5, 23) and g != ImagePsf(g.compute_image())
    d = g.to_dict()
    assert d == {"type": "gaussian", "sigma": 1.5, "size": 21}
    assert Psf.from_dict(json.loads(json.dumps(d))) == g

    rng = np.random.default_rng(3)
    im = ImagePsf(rng.random((7, 9)))
    d = im.to_dict()
    assert d["type"] == "image"
    back = Psf.from_dict(json.loads(json.dumps(d)))
    assert isinstance(back, ImagePsf) and back == im and hash(back) == hash(im)
    assert back.to_dict() == d
    assert ImagePsf.from_dict(d) == im
    with pytest.raises(ObjectError, match="gaussian"):
        ImagePsf.from_dict(g.to_dict())
    with pytest.raises(ObjectError, match="known"):
        Psf.from_dict({"type": "moffat"})
    with pytest.raises(ObjectError, match="type"):
        Psf.from_dict({"sigma": 1.0})


def test_abstract():
    with pytest.raises(TypeError):
        Psf()  # type: ignore[abstract]

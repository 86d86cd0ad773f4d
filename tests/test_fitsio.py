"""ingest_fits / export_fits: one ingest call is one transaction, re-running it is a no-op."""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from compstore import Butler, Exposure
from compstore.errors import ConflictingDatasetError, DataIdError, FitsFormatError
from compstore.fitsio import export_fits, ingest_fits


def _image(path: Path, value: float, **cards: object) -> Path:
    header = fits.Header(list(cards.items()))
    fits.PrimaryHDU(np.full((8, 9), value, np.float32), header).writeto(path)
    return path


@pytest.fixture
def butler(tmp_path: Path) -> Butler:
    Butler.create(tmp_path / "repo")
    butler = Butler(tmp_path / "repo", run="raw")
    butler.register_dataset_type("raw", ("visit", "detector"), "Exposure")
    return butler


def _add_tract(butler: Butler) -> None:
    # A later stage (jointcal) adds ``tract`` to the type: an optional dimension.
    butler.register_dataset_type("raw", ("visit", "detector", "tract"), "Exposure")
    assert "tract" in butler.registry.get_dataset_type("raw", refresh=True).dimensions


def test_ingest_is_all_or_nothing(butler: Butler, tmp_path: Path) -> None:
    good = [_image(tmp_path / f"d{i}.fits", float(i), DETECTOR=i) for i in range(2)]
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not FITS at all\n" * 200)
    with pytest.raises(FitsFormatError, match="bad.fits"):
        ingest_fits(butler, [*good, bad], "raw", {"visit": 1}, header_keys={"detector": "DETECTOR"})
    # Issue 12: the first two files used to be committed; one ingest is one transaction.
    assert butler.query_datasets("raw") == []
    refs = ingest_fits(butler, good, "raw", {"visit": 1}, header_keys={"detector": "DETECTOR"})
    assert [dict(r.data_id) for r in refs] == [{"visit": 1, "detector": 0}, {"visit": 1, "detector": 1}]


@pytest.mark.parametrize("added_dimension", [False, True])
def test_reingest_is_idempotent(butler: Butler, tmp_path: Path, added_dimension: bool) -> None:
    files = [_image(tmp_path / f"d{i}.fits", float(i), DETECTOR=i) for i in range(3)]
    first = ingest_fits(butler, files, "raw", {"visit": 2}, header_keys={"detector": "DETECTOR"})
    if added_dimension:
        _add_tract(butler)
    # Re-running the same command gives the same datasets, and registers nothing new.
    again = ingest_fits(butler, files, "raw", {"visit": 2}, header_keys={"detector": "DETECTOR"})
    assert [r.id for r in again] == [r.id for r in first]
    assert len(butler.query_datasets("raw")) == 3
    # A file whose content changed under the same data ID is a conflict, and the
    # whole call registers nothing (a new file listed with it is not registered either).
    _image(tmp_path / "changed.fits", 99.0, DETECTOR=0)
    new = _image(tmp_path / "new.fits", 5.0, DETECTOR=5)
    with pytest.raises(ConflictingDatasetError, match="other content"):
        ingest_fits(butler, [new, tmp_path / "changed.fits"], "raw", {"visit": 2},
                    header_keys={"detector": "DETECTOR"})
    assert len(butler.query_datasets("raw")) == 3


@pytest.mark.parametrize("added_dimension", [False, True])
def test_files_with_one_data_id_are_refused_before_anything_is_written(
    butler: Butler, tmp_path: Path, added_dimension: bool
) -> None:
    if added_dimension:
        _add_tract(butler)
    files = [_image(tmp_path / f"d{i}.fits", float(i)) for i in range(2)]
    with pytest.raises(DataIdError, match=r"d0\.fits.*d1\.fits.*same data ID"):
        ingest_fits(butler, files, "raw", {"visit": 3, "detector": 1})
    assert butler.query_datasets("raw") == []


# -- real FITS files shipped inside astropy: nothing of the WCS or the pixels is lost --------
_DATA = Path(astropy.__file__).parent / "wcs" / "tests" / "data"
_HEADERS = sorted(p.name for p in (_DATA / "maps").glob("*.hdr"))
_SIMPLE = [f"maps/{n}" for n in _HEADERS] + [
    "sip.fits", "sip2.fits", "tpvonly.hdr", "siponly.hdr", "irac_sip.hdr", "zpn-hole.hdr",
    "3d_cd.hdr", "spectra/orion-velo-4.hdr", "ie6d07ujq_wcs.fits",
    "dss.14.29.56-62.41.05.fits.gz", "dist_lookup.fits.gz",
]


def _header_of(name: str) -> fits.Header:
    raw = (_DATA / name).read_bytes()
    try:
        return fits.Header.fromstring(raw.decode("ascii"))
    except ValueError:
        return fits.Header.fromstring(raw.decode("ascii"), sep="\n")


def _real_file(name: str, tmp_path: Path) -> tuple[Path, object]:
    """A FITS image file for ``name`` (header-only files get float64 pixels) and its HDU."""
    if name.endswith((".fits", ".fits.gz")):
        with fits.open(_DATA / name) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        if hdul[0].data is not None or any(h.name == "SCI" for h in hdul):
            out = tmp_path / Path(name).name.replace(".gz", "")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdul.writeto(out, output_verify="silentfix")
            return out, ("SCI" if "SCI" in [h.name for h in hdul] else None)
        header = hdul[0].header
        rest = list(hdul[1:])
    else:
        header, rest = _header_of(name), []
    naxis = [int(header.get(f"NAXIS{i}", 1) or 1) for i in range(1, max(2, int(header.get("NAXIS", 2) or 2)) + 1)]
    shape = (min(naxis[1], 64), min(naxis[0], 96)) if name != "spectra/orion-velo-4.hdr" else (1, 256)
    extra = (1,) * max(0, len(naxis) - 2)
    data = np.random.default_rng(7).normal(size=extra + shape)
    hdu = fits.PrimaryHDU(data, header.copy())
    out = tmp_path / (Path(name).name.replace(".hdr", "") + ".fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList([hdu, *rest]).writeto(out, output_verify="silentfix")
    return out, None


def _world(wcs: WCS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pixels = np.zeros((x.size, wcs.pixel_n_dim))
    pixels[:, 0], pixels[:, 1] = x, y
    return wcs.all_pix2world(pixels, 0)


def _astropy(path: Path, which: object) -> tuple[np.ndarray, WCS]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(path)
        hdu = hdul[which] if which is not None else next(
            h for h in hdul if h.data is not None and h.data.ndim >= 2)
        data = np.asarray(hdu.data)
        return data.reshape(data.shape[-2:]), WCS(hdu.header, hdul)


@pytest.fixture(scope="module")
def real_butler(tmp_path_factory: pytest.TempPathFactory) -> Butler:
    root = tmp_path_factory.mktemp("real") / "repo"
    Butler.create(root)
    butler = Butler(root, run="raw", fsync=False)
    butler.register_dataset_type("image", ("exposure",), "Exposure")
    return butler


@pytest.mark.parametrize("name", _SIMPLE)
def test_real_file_round_trips(name: str, real_butler: Butler, tmp_path: Path) -> None:
    path, which = _real_file(name, tmp_path)
    pixels, original = _astropy(path, which)
    number = _SIMPLE.index(name)
    (ref,) = ingest_fits(real_butler, [path], "image", {"exposure": number},
                         **({"hdu": which} if which is not None else {}))
    got = real_butler.get("image", exposure=number)
    expected = pixels.astype(np.float32 if pixels.dtype.itemsize <= 2 or pixels.dtype.kind == "f"
                             and pixels.dtype.itemsize == 4 else np.float64)
    assert got.image.dtype == expected.dtype
    np.testing.assert_array_equal(got.image, expected)
    h, w = got.shape
    y, x = (a.ravel().astype(float) for a in np.meshgrid(np.linspace(0, h - 1, 10),
                                                          np.linspace(0, w - 1, 10), indexing="ij"))
    reference = _world(original, x, y)
    ours = np.stack(got.wcs.pixel_to_world_values(x, y), axis=1)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-9, equal_nan=True)
    # export -> plain astropy reads the exported file to the same world coordinates.
    out = tmp_path / "exported.fits"
    export_fits(real_butler, "image", {"exposure": number}, out)
    exported_pixels, exported = _astropy(out, "IMAGE")
    assert exported_pixels.dtype.newbyteorder("=") == expected.dtype
    np.testing.assert_array_equal(exported_pixels, expected)
    np.testing.assert_allclose(_world(exported, x, y), reference, rtol=1e-12, atol=1e-9,
                               equal_nan=True)
    # and compstore reads it back to the same Wcs.
    assert Exposure.read_fits(out).wcs == got.wcs


def test_multi_extension_file_needs_hdu(real_butler: Butler, tmp_path: Path) -> None:
    path = _DATA / "j94f05bgq_flt.fits"
    with pytest.raises(FitsFormatError, match=r"holds 2 images.*'SCI'.*hdu="):
        ingest_fits(real_butler, [path], "image", {"exposure": 900})
    refs = ingest_fits(real_butler, [path], "image", {"exposure": 901}, hdu=("SCI", 2))
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(real_butler.get(refs[0]).image
                                      if False else real_butler.get("image", exposure=901).image,
                                      hdul["SCI", 2].data)
    with pytest.raises(FitsFormatError, match="no HDU 'NOPE'"):
        ingest_fits(real_butler, [path], "image", {"exposure": 902}, hdu="NOPE")


@pytest.mark.parametrize("name", ["spectra/orion-freq-1.hdr", "tab-time-last-axis.fits"])
def test_unrepresentable_real_files_are_refused(name: str, real_butler: Butler, tmp_path: Path) -> None:
    if name.endswith(".hdr"):
        path = tmp_path / "spectrum.fits"
        fits.PrimaryHDU(np.zeros(64), _header_of(name)).writeto(path, output_verify="silentfix")
    else:
        path = _DATA / name
    with pytest.raises(FitsFormatError, match=Path(path).name.replace(".", r"\.")):
        ingest_fits(real_butler, [path], "image", {"exposure": 950})
    assert real_butler.query_datasets("image", where="exposure = 950") == []

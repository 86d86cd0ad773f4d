"""The canonical cards of a Wcs are compstore's, not astropy's header (issue 15).

A Wcs document's digest is the hash of its cards, so which cards there are must
not change with the astropy version. ``_wcs_cards.canonical_cards`` writes them
from the wcsprm by fixed rules; these tests hold it to the form astropy's header
gave every WCS so far (``astropy_cards``: existing documents keep their digests),
and show that an astropy that writes other cards changes nothing, except where
the rules defer to astropy's header (wcslib's own distortions, uncovered features).
"""

from __future__ import annotations

import copy
import glob
import warnings
from pathlib import Path

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from compstore import Butler
from compstore.cas._encoding import canonical_json, parse_json
from compstore.cas._jcs import jcs
from compstore.objects import Wcs
from compstore.objects._wcs import _celestial
from compstore.objects._wcs_cards import DEFAULT_CARDS, astropy_cards, canonical_cards, uncovered_features
from compstore.storage_classes import get_storage_class
from compstore.testing.repository import copy_repository
from compstore.testing.sky import make_exposure

DATA = Path(__file__).parent.parent / "data"
ASTROPY_DATA = Path(astropy.__path__[0]) / "wcs" / "tests" / "data"


def _headers() -> list[tuple[str, fits.Header, str]]:
    """Every header of astropy's WCS test data: (name, header, path)."""
    found = []
    paths = sorted(ASTROPY_DATA.glob("*.hdr")) + sorted(ASTROPY_DATA.glob("*/*.hdr"))
    paths += sorted(Path(p) for p in glob.glob(str(ASTROPY_DATA / "*.fits*")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            try:
                if path.suffix == ".hdr":
                    headers = [fits.Header.fromfile(path, sep="", endcard=False, padding=False)]
                else:
                    with fits.open(path) as hdul:
                        headers = [hdu.header.copy() for hdu in hdul]
            except Exception:  # a deliberately broken file of astropy's tests
                continue
            found += [(f"{path.name}[{i}]", h, str(path)) for i, h in enumerate(headers)]
    return found


def _kept_wcses() -> list[tuple[str, WCS]]:
    """The WCS a Wcs keeps of each header (celestial part and all axes), set up."""
    kept = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, header, path in _headers():
            try:
                fobj = fits.open(path) if path.endswith((".fits", ".gz")) else None
                whole = WCS(header, fobj=fobj, relax=True)
            except Exception:  # no WCS there
                continue
            for label, take in (("", _celestial), (" all axes", copy.deepcopy)):
                try:
                    wcs = take(whole)
                    Wcs(wcs, all_axes=True)  # one a Wcs keeps (it refuses -TAB, say)
                except Exception:
                    continue
                wcs.wcs.set()
                kept.append((f"{name}{label}", wcs))
    return kept


KEPT = _kept_wcses()


def test_astropys_test_data_gives_many_wcses():
    names = {name.split("[")[0] for name, _ in KEPT}
    assert len(KEPT) > 100 and len(names) > 40
    assert {"irac_sip.hdr", "tpvonly.hdr", "dss.14.29.56-62.41.05.fits.gz", "orion-freq-4.hdr"} <= names


@pytest.mark.parametrize("name,wcs", KEPT, ids=[n for n, _ in KEPT])
def test_compstores_cards_are_astropys_for_every_wcs_of_astropys_test_data(name, wcs):
    # The form every document has had so far: its digest must not move.
    assert canonical_cards(wcs) == astropy_cards(wcs)
    assert uncovered_features(wcs) == []  # so the cards above are compstore's own


@pytest.mark.parametrize("version", (1, 2, 3))
def test_every_wcs_document_of_the_sample_repositories_keeps_its_digest(version, tmp_path):
    root = copy_repository(DATA / f"repo-format-{version}", tmp_path / "repo")
    blobs = Butler(root).blobs
    sc = get_storage_class("Wcs")
    seen = 0
    for digest in blobs.iter_documents():
        data = blobs.get_document(digest)
        document = parse_json(data)
        if not isinstance(document, dict) or document.get("storage_class") != "Wcs":
            continue
        old = Wcs.from_dict(document["value"])
        again = Wcs(old.to_astropy(), all_axes=True)  # cards written by today's code
        value = {**document}
        if jcs(document) == data:
            value["value"] = sc.to_json_exact(again)
            rewritten = jcs(value)
        else:
            assert canonical_json(document) == data
            value["value"] = sc.to_json(again)
            # Formats 1 and 2 were written with the MJD 0 reference astropy spelled
            # out then (DEFAULT_CARDS, left out since): the one difference allowed.
            stored = document["value"]["header"]
            spelled = {k: v for k, v in stored.items() if DEFAULT_CARDS.get(k) == v}
            value["value"]["header"] = {**value["value"]["header"], **spelled}
            rewritten = canonical_json(value)
        assert blobs.digest_algorithm.digest_bytes(rewritten) == digest
        seen += 1
    assert seen >= 3


def _patched_to_header(monkeypatch, change):
    original = WCS.to_header

    def to_header(self, *args, **kwargs):
        return change(original(self, *args, **kwargs))

    monkeypatch.setattr(WCS, "to_header", to_header)


def _another_astropy(header: fits.Header) -> fits.Header:
    """What a later astropy might write: cards added, some dropped, in another order."""
    cards = [(k, v) for k, v in header.items() if k not in ("WCSAXES", "LONPOLE", "CUNIT1", "RADESYS")]
    cards.reverse()
    cards += [("TIMESYS", "UTC"), ("MJDREFI", 51544.0), ("OBSGEO-X", 1.0), ("VELREF", 258)]
    return fits.Header(cards)


def _sample_wcses() -> dict[str, Wcs]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        irac = fits.Header.fromfile(ASTROPY_DATA / "irac_sip.hdr", sep="", endcard=False, padding=False)
        cube = fits.Header.fromfile(
            ASTROPY_DATA / "spectra" / "orion-freq-4.hdr", sep="", endcard=False, padding=False
        )
        return {
            "TAN-SIP (sky)": make_exposure(1, 0, size=32).wcs,
            "IRAC TAN-SIP": Wcs.from_header(irac),
            "spectral cube": Wcs(WCS(cube), all_axes=True),
        }


@pytest.mark.parametrize("kind", ["TAN-SIP (sky)", "IRAC TAN-SIP", "spectral cube"])
def test_an_astropy_that_writes_other_cards_does_not_change_the_document(kind, monkeypatch):
    wcs = _sample_wcses()[kind]
    before = jcs(wcs.to_dict())
    _patched_to_header(monkeypatch, _another_astropy)
    again = Wcs(wcs.to_astropy(), all_axes=kind == "spectral cube")
    assert jcs(again.to_dict()) == before
    # The rules' own cards are there though astropy's header no longer has them.
    dropped = {"WCSAXES", "LONPOLE", "CUNIT1", "RADESYS"} & set(wcs.to_dict()["header"])
    assert {"WCSAXES", "CUNIT1"} <= dropped <= set(again.to_dict()["header"])


_TAN = {
    "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 100.5, "CRPIX2": 200.25,
    "CRVAL1": 150.1234567890123, "CRVAL2": 2.2,
    "CD1_1": -5.5e-05, "CD1_2": 1.1e-06, "CD2_1": 1.2e-06, "CD2_2": 5.5e-05,
}
_OBSGEO = {"OBSGEO-X": 5000000.0, "OBSGEO-Y": 10.0, "OBSGEO-Z": 20.0}


def _header(*cards: dict) -> fits.Header:
    return fits.Header([item for c in cards for item in c.items()])


def test_a_wcs_with_a_feature_no_rule_covers_is_astropys_header():
    # OBSGEO (and DATE-AVG): no rule of compstore's writes them; the Wcs keeps
    # them, as astropy's header gives them (so these documents may move with astropy).
    wcs = WCS(_header(_TAN, _OBSGEO, {"DATE-AVG": "2020-01-02T03:04:05"}))
    wcs.wcs.set()
    assert uncovered_features(wcs) == ["dateavg", "mjdavg", "obsgeo"]
    cards = canonical_cards(wcs)
    assert cards == astropy_cards(wcs)
    assert cards["OBSGEO-X"] == 5000000.0 and cards["DATE-AVG"] == "2020-01-02T03:04:05"


def test_an_uncovered_wcs_follows_astropys_header(monkeypatch):
    wcs = Wcs(WCS(_header(_TAN, _OBSGEO)))
    _patched_to_header(monkeypatch, _another_astropy)
    assert Wcs(wcs.to_astropy()) != wcs  # the documented exception


def test_wcslibs_own_distortions_come_from_astropys_header(monkeypatch):
    # TPV: the PV cards are a distortion wcslib holds apart, which astropy shows only in
    # its header; they (and the -TPV CTYPE) are copied from it, the rest is the rules'.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromfile(ASTROPY_DATA / "tpvonly.hdr", sep="", endcard=False, padding=False)
        wcs = Wcs.from_header(header)
    cards = wcs.to_dict()["header"]
    assert cards["CTYPE1"] == "RA---TPV" and "PV1_10" in cards
    assert wcs._astropy().wcs.get_pv() == []  # not in the wcsprm
    before = jcs(wcs.to_dict())
    _patched_to_header(monkeypatch, _another_astropy)
    assert jcs(Wcs(wcs.to_astropy()).to_dict()) == before  # other cards: still the rules'


def test_a_cd_matrix_is_kept_as_pc_and_cdelt_exactly():
    wcs = WCS(_header(_TAN))
    wcs.wcs.set()
    cards = canonical_cards(wcs)
    assert not any(k.startswith("CD") and k[2].isdigit() for k in cards)
    assert cards["CDELT1"] == 1.0 and cards["PC1_1"] == -5.5e-05 and cards["PC2_1"] == 1.2e-06
    assert cards["CRVAL1"] == 150.1234567890123  # exact, not astropy's 14 digits
    assert np.isclose(cards["LONPOLE"], 180.0) and "WCSAXES" in cards

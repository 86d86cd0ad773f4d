"""ingest_fits / export_fits: one ingest call is one transaction, re-running it is a no-op."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from compstore import Butler
from compstore.errors import ConflictingDatasetError, DataIdError, FitsFormatError
from compstore.fitsio import ingest_fits


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

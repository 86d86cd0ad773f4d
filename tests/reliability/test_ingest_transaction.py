"""One ingest call is one transaction: a bad file anywhere in the list registers nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from compstore import Butler
from compstore.errors import CompstoreError
from compstore.fitsio import ingest_fits


def test_a_bad_file_anywhere_registers_nothing(tmp_path: Path, reliability_scale: int,
                                               reliability_counts) -> None:
    rng = np.random.default_rng(12)
    Butler.create(tmp_path / "repo")
    butler = Butler(tmp_path / "repo", run="raw", fsync=False)
    butler.register_dataset_type("raw", ("visit", "detector"), "Exposure")
    trials = 8 * reliability_scale
    refused = 0
    for trial in range(trials):
        n = int(rng.integers(2, 7))
        files = []
        for d in range(n):
            path = tmp_path / f"t{trial}-d{d}.fits"
            header = fits.Header([("DETECTOR", d)])
            data = rng.normal(size=(6, 7)).astype(rng.choice([np.float32, np.float64]))
            fits.PrimaryHDU(data, header).writeto(path)
            files.append(path)
        bad = int(rng.integers(0, n))
        good_bytes = files[bad].read_bytes()
        # a cut-short file, or not FITS at all
        files[bad].write_bytes(good_bytes[: int(rng.integers(0, 2880))] if trial % 2 else b"x" * 3000)
        try:
            ingest_fits(butler, files, "raw", {"visit": trial}, header_keys={"detector": "DETECTOR"})
        except CompstoreError:
            refused += 1
        assert butler.query_datasets("raw", where=f"visit = {trial}") == []
        files[bad].write_bytes(good_bytes)
        refs = ingest_fits(butler, files, "raw", {"visit": trial}, header_keys={"detector": "DETECTOR"})
        again = ingest_fits(butler, files, "raw", {"visit": trial}, header_keys={"detector": "DETECTOR"})
        assert [r.id for r in again] == [r.id for r in refs] and len(refs) == n
    assert refused == trials
    reliability_counts("ingest transaction", trials=trials, refused_with_nothing_registered=refused)

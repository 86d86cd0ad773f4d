"""A put asks the pack index about each new document once (the put says whether it stored)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from compstore import Butler
from compstore.datastore import WriteReport
from compstore.testing.sky import make_exposure


def test_put_of_an_exposure_asks_once_per_new_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Butler.create(tmp_path / "repo")
    butler = Butler(tmp_path / "repo", run="r")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    index = butler.blobs._index
    if index is None:
        pytest.skip("this repository has no pack index")
    asked: Counter[str] = Counter()
    lookup = index.lookup

    def counting(digest: str) -> object:
        asked[digest] += 1
        return lookup(digest)

    monkeypatch.setattr(index, "lookup", counting)
    report = WriteReport()
    exposure = make_exposure(1, 1, size=64)
    butler.put_many([(exposure, "calexp", {"visit": 1, "detector": 1})], report=report)
    during = Counter(asked)  # what the put asked; the checks below ask too
    arrays = {d for d in report.written if butler.blobs.has_array(d)}
    documents = set(report.written) - arrays
    assert len(documents) == report.documents_written > 0
    assert all(during[d] == 1 for d in documents), during
    # A small new array is looked up before it is encoded, and again under the
    # store's lock as it is handed to the next pack (LocalBlobStore.put_new_array).
    assert all(during[d] <= 2 for d in arrays), during
    assert sum(during.values()) == len(documents) + 2 * len(arrays)  # 14 (was 22)

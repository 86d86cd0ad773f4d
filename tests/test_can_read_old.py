"""Repositories written in each released format stay readable by this compstore.

``tests/data/repo-format-1/``, ``-2/`` and ``-3/`` are small repositories
committed to git, and ``tests/data/repo-format-N.expected.json`` holds fingerprints of
what each dataset read back as when it was written (the SHA-256 of every array's bytes,
each catalog column's, a few Wcs positions, the Calib). The tests read a copy of each
repository with today's code and compare: a change that makes an old repository
unreadable, or read differently, fails here.

Run this file as a script to rebuild the repositories (only when a new format is
released, or the samples must grow: a rebuilt sample no longer proves that an *old*
writer's output is readable)::

    python tests/test_can_read_old.py 3        # the versions to rebuild (default: all)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compstore import Butler
from compstore.objects import CoaddInput, CoaddInputs
from compstore.testing.repository import copy_repository
from compstore.testing.sky import make_catalog, make_exposure

DATA = Path(__file__).parent / "data"
FORMATS = (1, 2, 3)
DATA_IDS = ((1, 0), (1, 1), (2, 0))
#: Pixel positions whose sky positions the fingerprint records.
PIXELS = np.array([[0.0, 0.0], [10.5, 20.25], [47.0, 3.0]])


def _sha(array: Any) -> str:
    array = np.ascontiguousarray(array)
    return f"{array.dtype.str}{list(array.shape)}:" + hashlib.sha256(array.tobytes()).hexdigest()


def _fingerprint(butler: Butler) -> dict[str, Any]:
    """What each dataset of a sample repository reads back as, in plain JSON."""
    out: dict[str, Any] = {}
    for visit, detector in DATA_IDS:
        key = f"{visit},{detector}"
        exp = butler.get("calexp", visit=visit, detector=detector)
        sky = exp.wcs.pixel_to_sky(PIXELS[:, 0], PIXELS[:, 1])
        out[f"calexp/{key}"] = {
            "image": _sha(exp.image),
            "mask": _sha(exp.mask.array),
            "variance": _sha(exp.variance),
            "sky": np.round(np.asarray(sky, dtype=float), 12).tolist(),
            "calib": repr(exp.calib),
        }
        cat = butler.get("src", visit=visit, detector=detector)
        out[f"src/{key}"] = {name: _sha(cat[name]) for name in cat.columns}
    ramp = butler.get("ramp", visit=1)
    out["ramp/1"] = _sha(ramp)
    inputs = butler.get("coadd_inputs", visit=9)
    out["coadd_inputs/9"] = [
        [item.dataset_type, dict(item.data_id), item.weight, repr(item.calib)] for item in inputs
    ]
    return out


def build(version: int, root: Path) -> None:
    """Write the sample repository of format ``version`` at ``root`` (which must not exist)."""
    Butler.create(root)
    if version < 3:  # this compstore still writes formats 1 and 2 when the config says so
        config = root / "compstore.json"
        old = {k: v for k, v in json.loads(config.read_text()).items() if k != "digest"}
        config.write_text(json.dumps({**old, "version": f"{version}.0"}))
    b = Butler(root, run="sfm")
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    b.register_dataset_type("ramp", ("visit",), "Array")
    b.register_dataset_type("coadd_inputs", ("visit",), "CoaddInputs")
    exposures = {}
    for visit, detector in DATA_IDS:
        exp = make_exposure(visit, detector, size=48)
        exposures[visit, detector] = exp
        b.put(exp, "calexp", visit=visit, detector=detector)
        b.put(make_catalog(exp), "src", visit=visit, detector=detector)
    # Large enough (4 MiB) to be stored as its own folder, sharded, with tile sums;
    # smooth, so that it compresses to a few KiB in git.
    b.put(np.add.outer(np.arange(1024.0), np.arange(1024.0)).astype("f4"), "ramp", visit=1)
    inputs = CoaddInputs(
        CoaddInput("calexp", {"visit": v, "detector": d}, weight=1.0 + v, wcs=e.wcs, psf=e.psf, calib=e.calib)
        for (v, d), e in exposures.items()
    )
    b.put(inputs, "coadd_inputs", visit=9)
    b.registry.close()
    # Stored as committed: no write-ahead logs, and the fingerprint as written.
    scratch = root.parent / f"{root.name}.scratch"
    copy_repository(root, scratch)
    shutil.rmtree(root)
    scratch.rename(root)
    expected = _fingerprint(Butler(root, collections="sfm"))
    (root.parent / f"{root.name}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")


@pytest.mark.parametrize("version", FORMATS)
def test_a_released_format_reads_back_as_written(version, tmp_path):
    root = copy_repository(DATA / f"repo-format-{version}", tmp_path / "repo")
    config = json.loads((root / "compstore.json").read_text())
    assert config["version"] == f"{version}.0"
    expected = json.loads((DATA / f"repo-format-{version}.expected.json").read_text())
    butler = Butler(root, collections="sfm")
    assert _fingerprint(butler) == expected
    report = butler.verify(deep=True)
    assert report.ok, report.problems


@pytest.mark.parametrize("version", FORMATS)
def test_a_released_format_shares_components_and_resolves_references(version, tmp_path):
    root = copy_repository(DATA / f"repo-format-{version}", tmp_path / "repo")
    butler = Butler(root, collections="sfm")
    exp = butler.get("calexp", visit=1, detector=0)
    cat = butler.get("src", visit=1, detector=0)
    assert cat.wcs is exp.wcs and cat.calib is exp.calib
    inputs = butler.get("coadd_inputs", visit=9)
    assert inputs[0].wcs is exp.wcs  # a reference to the input's own component


@pytest.mark.parametrize("version", FORMATS)
def test_a_released_format_takes_new_puts(version, tmp_path):
    root = copy_repository(DATA / f"repo-format-{version}", tmp_path / "repo")
    butler = Butler(root, run="more", collections=["more", "sfm"])
    exp = make_exposure(3, 0, size=48)
    butler.put(exp, "calexp", visit=3, detector=0)
    np.testing.assert_array_equal(butler.get("calexp", visit=3, detector=0).image, exp.image)
    assert butler.verify(deep=True).ok


def test_an_upgraded_format_2_sample_reads_back_as_written(tmp_path):
    root = copy_repository(DATA / "repo-format-2", tmp_path / "repo")
    assert Butler.upgrade(root) == ("2.0", "3.0")
    expected = json.loads((DATA / "repo-format-2.expected.json").read_text())
    butler = Butler(root, collections="sfm")
    assert _fingerprint(butler) == expected
    assert butler.verify(deep=True).ok


def test_the_format_3_sample_holds_rfc_8785_documents(tmp_path):
    from compstore.cas import jcs, parse_json

    butler = Butler(copy_repository(DATA / "repo-format-3", tmp_path / "repo"))
    docs = [butler.blobs.get_document(d) for d in butler.blobs.iter_documents()]
    assert docs and all(d == jcs(parse_json(d)) for d in docs)
    assert json.loads((DATA / "repo-format-3" / "compstore.json").read_text())["digest"] == "xxh3-128"


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    for version in [int(v) for v in sys.argv[1:]] or FORMATS:
        target = DATA / f"repo-format-{version}"
        if target.exists():
            shutil.rmtree(target)
        build(version, target)
        print(f"wrote {target}", file=sys.stderr)

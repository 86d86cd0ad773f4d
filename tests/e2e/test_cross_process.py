"""Another process's writes are seen by a process that holds a Butler open (issue 12, item 4).

Every per-process cache (dataset types and their optional dimensions, collections,
the Butler's memo of data IDs, the registry's search paths) is validated by the
registry's change counter, so the next call after another process's commit sees
it. Each writer here is a real OS process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from compstore import Butler
from compstore.errors import MissingCollectionError, MissingDatasetTypeError
from compstore.registry import CollectionType
from compstore.testing.sky import make_catalog, make_exposure


def _in_another_process(root, code: str) -> None:
    """Run ``code`` (with ``root``, ``Butler`` and ``make_exposure`` defined) in a new interpreter."""
    prelude = (
        "import sys\n"
        "from compstore import Butler\n"
        "from compstore.testing.sky import make_exposure\n"
        "root = sys.argv[1]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), str(root)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_writes_of_another_process_are_seen_by_an_open_butler(tmp_path):
    root = tmp_path / "repo"
    Butler.create(root)
    sfm = Butler(root, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure = make_exposure(1, 0, size=32)
    sfm.put(exposure, "calexp", visit=1, detector=0)
    butler = Butler(root, collections=["jointcal", "sfm"])
    registry = butler.registry
    # Fill every cache: the type (without tract), the search path, the memo.
    assert butler.get("calexp.wcs", visit=1, detector=0, collections="sfm") == exposure.wcs
    with pytest.raises(MissingCollectionError):
        butler.get("calexp", visit=1, detector=0)
    with pytest.raises(MissingDatasetTypeError):
        butler.get("bkg", visit=1, detector=0, collections="sfm")

    # a run created, datasets put, a dataset type registered
    _in_another_process(root, """
        other = Butler(root, run="jointcal")
        other.register_dataset_type("bkg", ("visit", "detector"), "Exposure")
        other.put(make_exposure(1, 0, size=32), "bkg", visit=1, detector=0)
        Butler(root, run="sfm").put(make_exposure(1, 1, size=32), "calexp", visit=1, detector=1)
    """)
    assert butler.get("bkg", visit=1, detector=0).bbox.width == 32
    assert butler.find_dataset("calexp", visit=1, detector=1).run == "sfm"

    # an optional dimension added (jointcal's tract) and datasets put with it
    _in_another_process(root, """
        other = Butler(root, run="jointcal")
        other.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
        source = Butler(root, collections=["sfm"])
        for detector in (0, 1):
            exposure = source.get("calexp", visit=1, detector=detector)
            other.put(exposure, "calexp", visit=1, detector=detector, tract=7)
    """)
    assert butler.registry.get_dataset_type("calexp").optional_dimensions == ("tract",)
    for detector in (0, 1):
        strict = butler.find_dataset("calexp:jointcal", visit=1, detector=detector)
        assert dict(strict.data_id) == {"visit": 1, "detector": detector, "tract": 7}
        assert butler.find_dataset("calexp", visit=1, detector=detector) == strict
        # the memo of the sfm-only lookup is not served after another process's commit
        assert butler.find_dataset("calexp", visit=1, detector=detector, collections="sfm").run == "sfm"
    refs = registry.query_datasets("calexp", collections=["jointcal"])
    assert [dict(r.data_id)["tract"] for r in refs] == [7, 7]

    # a chain created, then re-pointed
    _in_another_process(root, """
        Butler(root).collection_chain("latest", ["jointcal", "sfm"])
    """)
    assert registry.collection_type("latest") is CollectionType.CHAINED
    assert butler.find_dataset("calexp", visit=1, detector=0, collections="latest").run == "jointcal"
    _in_another_process(root, """
        Butler(root).collection_chain("latest", ["sfm"])
    """)
    assert butler.find_dataset("calexp", visit=1, detector=0, collections="latest").run == "sfm"


JOINTCAL_YAML = """\
tasks:
  jointcal:
    class: jointcal
    config:
      tract_size: 0.5
      order: 2
      min_sources: 10
"""


def test_a_stage_run_by_the_cli_in_a_subprocess_is_found(tmp_path):
    """The tester's report: create, put, ``compstore run`` in a subprocess, then a new Butler."""
    root = tmp_path / "repo"
    Butler.create(root)
    sfm = Butler(root, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    sfm.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        exposure = make_exposure(visit, 6, size=256, survey="deep")
        sfm.put(exposure, "calexp", visit=visit, detector=6)
        sfm.put(make_catalog(exposure), "src", visit=visit, detector=6)
    (tmp_path / "jointcal.yaml").write_text(JOINTCAL_YAML)
    result = subprocess.run(
        [sys.executable, "-m", "compstore", "run", "--repo", str(root), "-p",
         str(tmp_path / "jointcal.yaml"), "-i", "sfm", "-o", "jointcal"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    butler = Butler(root, collections=["jointcal", "sfm"])
    for visit in (1, 2):
        strict = butler.find_dataset("calexp:jointcal", visit=visit, detector=6)
        assert strict.run == "jointcal" and "tract" in strict.data_id
        assert butler.find_dataset("calexp", visit=visit, detector=6) == strict
        assert butler.get("calexp", visit=visit, detector=6).calib == butler.get(strict).calib

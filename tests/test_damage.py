"""A damaged repository (issue 12, item 2): get names the digest and the dataset,
plain verify names the missing chunk files, never zeros or a traceback."""

from __future__ import annotations

import pytest

from compstore import Butler
from compstore.errors import CorruptBlobError
from compstore.objects import Box2I
from compstore.verify import CORRUPT


@pytest.fixture
def calexp(butler, sky):
    """One 1024x1024 calexp: image and variance raw folders, the mask one shard."""
    exposure, _ = sky(1, 0, size=1024)
    butler.put(exposure, "calexp", visit=1, detector=0)
    manifest = butler._io.manifest(butler.find_dataset("calexp", visit=1, detector=0).manifest)
    mask = butler._io.manifest(manifest["components"]["mask"]["manifest"])
    return butler, exposure.xy0, {
        "image": manifest["components"]["image"]["array"],
        "mask": mask["components"]["bits"]["array"],
    }


@pytest.mark.parametrize("plane", ["image", "mask"])
@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lost_or_cut_data_file_is_named_by_get_and_plain_verify(calexp, plane, damage):
    butler, (x0, y0), digests = calexp
    digest = digests[plane]
    data = butler.blobs.root / butler.blobs.component_path(digest) / "c.0.0"
    if damage == "delete":
        data.unlink()
    else:
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    fresh = Butler(butler.root)
    for parameters in (None, {"bbox": Box2I((x0 + 10, y0 + 20), (30, 40))}):
        fresh.cache.clear()
        with pytest.raises(CorruptBlobError) as info:
            Butler(butler.root).get("calexp", visit=1, detector=0, parameters=parameters)
        message = str(info.value)
        assert digest in message and "calexp" in message and "'detector': 0" in message
        assert "compstore verify" in message
    report = fresh.verify()  # plain: a listing and a stat, no data read
    assert [(p.digest, p.problem) for p in report.problems] == [(digest, CORRUPT)]
    assert report.problems[0].dataset.dataset_type == "calexp"
    assert "c.0.0" in report.problems[0].message or "bytes" in report.problems[0].message

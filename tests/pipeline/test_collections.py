"""CHAINED and TAGGED collections through the Butler, and as pipeline inputs."""

from __future__ import annotations

import pytest
from pipeline_test_tasks import Recalibrate

from compstore import Butler
from compstore.errors import CollectionTypeError
from compstore.pipeline import Pipeline, execute


def test_chain_searches_children_in_order(calexp_repo, exposures):
    butler = Butler(calexp_repo)
    newer = exposures[(1, 0)].replace(calib=exposures[(2, 2)].calib)
    Butler(calexp_repo, run="fixes").put(newer, "calexp", visit=1, detector=0)
    butler.collection_chain("best", ["fixes", "sfm"])
    assert ("best", "CHAINED") in butler.query_collections()
    assert butler.get("calexp.calib", visit=1, detector=0, collections="best") == newer.calib
    assert (
        butler.get("calexp.calib", visit=1, detector=1, collections="best")
        == exposures[(1, 1)].calib
    )
    butler.collection_chain("best", ["sfm"])  # re-pointing a chain
    assert (
        butler.get("calexp.calib", visit=1, detector=0, collections="best")
        == exposures[(1, 0)].calib
    )


def test_tag_a_hand_picked_set(calexp_repo):
    butler = Butler(calexp_repo)
    refs = butler.query_datasets("calexp", where="detector = 2", collections=["sfm"])
    butler.tag("detector2", refs)
    assert butler.query_collections("detector*") == [("detector2", "TAGGED")]
    tagged = butler.query_datasets("calexp", collections=["detector2"])
    assert [r.id for r in tagged] == [r.id for r in refs]
    with pytest.raises(CollectionTypeError):
        butler.tag("sfm", refs)


def test_pipeline_reads_inputs_through_chained_and_tagged(calexp_repo):
    butler = Butler(calexp_repo)
    butler.tag(
        "picked",
        butler.query_datasets("calexp", where="visit = 2 AND detector = 1", collections="sfm"),
    )
    report = execute(
        Pipeline().add_task("recal", Recalibrate),
        Butler(calexp_repo, collections=["picked"], run="from-tag"),
    )
    assert [dict(r.data_id) for r in report.succeeded] == [{"visit": 2, "detector": 1}]
    butler.collection_chain("chain", ["from-tag", "sfm"])
    report = execute(
        Pipeline().add_task("recal", Recalibrate),
        Butler(calexp_repo, collections=["chain"], run="from-chain"),
        where="detector = 1",
    )
    inputs = {
        r.data_id["visit"]: butler.provenance(
            butler.find_dataset("calexp", r.data_id, collections="from-chain")
        )["input_ids"]
        for r in report.succeeded
    }
    # visit 2 came from the first child of the chain (the earlier run), visit 1 from sfm
    assert inputs[2] == [
        butler.find_dataset("calexp", visit=2, detector=1, collections="from-tag").id
    ]
    assert inputs[1] == [butler.find_dataset("calexp", visit=1, detector=1, collections="sfm").id]
    assert butler.query_collections("from-*") == [("from-chain", "RUN"), ("from-tag", "RUN")]

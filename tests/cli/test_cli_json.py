"""``--json``: every command that prints a result prints parseable JSON of the documented shape."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from compstore import Butler
from compstore.cli import main, python_for, to_json
from compstore.errors import EncodingError
from compstore.testing.repository import copy_repository, make_calexp_repository
from compstore.testing.sky import make_catalog, make_exposure

TASKS_DIR = Path(__file__).resolve().parents[1] / "pipeline"
if str(TASKS_DIR) not in sys.path:
    sys.path.insert(0, str(TASKS_DIR))

PIPELINE = "tasks:\n  recal:\n    class: pipeline_test_tasks:Recalibrate\n"


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    exposures = {(1, d): make_exposure(1, d, size=32) for d in (0, 1)}
    root = make_calexp_repository(tmp_path_factory.mktemp("json") / "repo", exposures)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    butler.put(make_catalog(exposures[(1, 0)]), "src", visit=1, detector=0)
    butler.registry.close()
    return root


@pytest.fixture
def repo(tmp_path, _template):
    root = tmp_path / "repo"
    copy_repository(_template, root)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return root


def _json(capsys, argv):
    """Run ``compstore ARGV --json``; return its status and parsed stdout."""
    status = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, (json.loads(captured.out) if captured.out else None)


def test_query_json_lists_refs(repo, capsys):
    status, refs = _json(capsys, ["query", "--repo", str(repo), "calexp", "--where", "detector = 1"])
    assert status == 0
    assert refs == [
        {"id": refs[0]["id"], "dataset_type": "calexp", "data_id": {"visit": 1, "detector": 1},
         "run": "sfm", "manifest": refs[0]["manifest"]}
    ]
    ref = Butler(repo).find_dataset("calexp", visit=1, detector=1)
    assert uuid.UUID(refs[0]["id"]) == ref.id and refs[0]["manifest"] == ref.manifest


def test_get_json_of_small_components(repo, capsys):
    butler = Butler(repo)
    status, calib = _json(capsys, ["get", "--repo", str(repo), "calexp.calib", "visit=1", "detector=0"])
    assert status == 0
    assert calib == json.loads(json.dumps(butler.get("calexp.calib", visit=1, detector=0).to_dict()))
    status, wcs = _json(capsys, ["get", "--repo", str(repo), "calexp.wcs", "visit=1", "detector=0"])
    assert status == 0 and wcs == json.loads(json.dumps(butler.get("calexp.wcs", visit=1, detector=0).to_dict()))


def test_get_json_of_pixels_is_a_clean_refusal(repo, capsys):
    assert main(["get", "--repo", str(repo), "calexp", "visit=1", "detector=0", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert "cannot print a Exposure as JSON" in captured.err and "export" in captured.err


def test_stats_verify_json(repo, capsys):
    status, stats = _json(capsys, ["stats", "--repo", str(repo)])
    assert status == 0 and stats["datasets"] == 3
    status, report = _json(capsys, ["verify", "--repo", str(repo)])
    assert status == 0 and report["ok"] is True and report["datasets"] == 3 and report["problems"] == []


def test_collections_json(repo, capsys):
    r = ["--repo", str(repo)]
    status, chain = _json(capsys, ["collection-chain", *r, "all", "sfm"])
    assert status == 0 and chain == {"name": "all", "children": ["sfm"]}
    status, tagged = _json(capsys, ["tag", *r, "best", "calexp", "--where", "detector = 0",
                                     "--collections", "sfm"])
    assert status == 0 and tagged["tagged"] == "best"
    assert [d["data_id"] for d in tagged["datasets"]] == [{"visit": 1, "detector": 0}]
    status, collections = _json(capsys, ["query-collections", *r])
    assert status == 0
    assert collections == [{"name": "all", "type": "CHAINED"}, {"name": "best", "type": "TAGGED"},
                           {"name": "sfm", "type": "RUN"}]


def test_run_and_provenance_json(repo, capsys):
    argv = ["run", "--repo", str(repo), "-p", str(repo.parent / "pipeline.yaml"), "-i", "sfm",
            "-o", "out", "-c", "recal:fail_detector=1"]
    status, report = _json(capsys, argv)
    assert status == 1  # a unit failed: the status says so, with --json too
    assert report["run"] == "out" and report["exit_status"] == 1 and report["dry_run"] is False
    assert [r["data_id"] for r in report["succeeded"]] == [{"visit": 1, "detector": 0}]
    (failed,) = report["failed"]
    assert failed["status"] == "failed" and "cursed" in failed["reason"]
    status, prov = _json(capsys, ["provenance", "--repo", str(repo), "calexp:out", "visit=1",
                                  "detector=0", "--collections", "out"])
    assert status == 0
    assert prov["dataset"]["run"] == "out" and prov["provenance"]["task_label"] == "recal"
    source = Butler(repo).find_dataset("calexp", visit=1, detector=0, collections="sfm")
    assert prov["provenance"]["input_ids"] == [str(source.id)]
    status, prov = _json(capsys, ["provenance", "--repo", str(repo), "calexp", "visit=1",
                                  "detector=0", "--collections", "sfm"])
    assert status == 0 and prov["provenance"] is None  # not written by a task


def test_create_register_ingest_export_json(tmp_path, capsys):
    root = str(tmp_path / "new")
    status, created = _json(capsys, ["create", "--repo", root])
    assert status == 0 and created == {"root": str(Path(root))}
    status, dtype = _json(capsys, ["register-dataset-type", "--repo", root, "calexp", "visit,detector",
                                   "Exposure"])
    assert status == 0 and dtype["name"] == "calexp" and dtype["dimensions"] == ["visit", "detector"]
    make_exposure(5, 3, size=32).write_fits(tmp_path / "in.fits")
    status, refs = _json(capsys, ["ingest", "--repo", root, "calexp", str(tmp_path / "in.fits"),
                                  "--run", "raw", "--data-id", "visit=5,detector=3"])
    assert status == 0 and [r["data_id"] for r in refs] == [{"visit": 5, "detector": 3}]
    status, wrote = _json(capsys, ["export", "--repo", root, "calexp", "visit=5", "detector=3",
                                   "-o", str(tmp_path / "out.fits")])
    assert status == 0 and Path(wrote["path"]).exists()


def test_register_definitions_json(repo, capsys):
    status, agg = _json(capsys, ["register-aggregate", "--repo", str(repo), "calexp_visit", "calexp",
                                 "--over", "detector"])
    assert status == 0
    assert agg["name"] == "calexp_visit" and agg["kind"] == "aggregate" and agg["over"] == ["detector"]


def test_json_is_the_same_python_as_plain_output_plus_to_json(repo):
    code = python_for(["query", "--repo", str(repo), "calexp", "--json"])
    assert "from compstore.cli import to_json\n" in code and "print(to_json(refs))\n" in code
    assert "to_json" not in python_for(["query", "--repo", str(repo), "calexp"])


def test_to_json_kinds():
    assert json.loads(to_json({"a": (1, 2.5, None, True), "b": np.int16(3), "c": float("nan")})) == {
        "a": [1, 2.5, None, True], "b": 3, "c": None}
    with pytest.raises(EncodingError, match="pixel or column array"):
        to_json({"image": np.zeros((4, 4))})
    with pytest.raises(EncodingError, match="cannot print a object"):
        to_json(object())


def test_demo_json_is_the_stage_figures(tmp_path, capsys):
    argv = ["demo", "--repo", str(tmp_path / "demo"), "--visits", "1", "--detectors", "2",
            "--size", "256"]
    status, figures = _json(capsys, argv)
    assert status == 0
    assert [f["stage"] for f in figures] == ["sfm", "jointcal", "coadd", "detection"]
    assert figures[0]["datasets"] == 4 and figures[0]["added_bytes"] > 0
    assert set(figures[0]) == {"stage", "datasets", "logical_bytes", "added_bytes", "seconds"}

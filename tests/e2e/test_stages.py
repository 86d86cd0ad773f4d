"""End-to-end: the built-in stages on a small deep survey (use cases 1, 4, 7 and 9), bytes on disk."""

from __future__ import annotations


import numpy as np
import pytest

from compstore import Butler
from compstore.errors import AmbiguousDatasetError, DatasetNotFoundError
from compstore.pipeline import Pipeline, execute
from compstore.pipeline.tasks import CoaddTask, DetectionTask, JointcalTask
from compstore.registry import DataId
from compstore.testing.repository import blob_bytes
from compstore.testing.sky import make_catalog, make_exposure

VISITS = (1, 2, 3)
DETECTORS = (6, 7, 11, 12)
SIZE = 256
# jointcal groups by large tracts (every detector in one); coadds use small patches.
JOINTCAL = {"tract_size": 0.5, "order": 2, "min_sources": 10}
SKYMAP = {"tract_size": 0.1, "patches_per_side": 4}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """sfm -> jointcal -> coadd -> detection, with the bytes each stage added."""
    root = tmp_path_factory.mktemp("stages") / "repo"
    Butler.create(root)
    sfm = Butler(root, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    sfm.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in VISITS:
        for detector in DETECTORS:
            exposure = make_exposure(visit, detector, size=SIZE, survey="deep")
            sfm.put(exposure, "calexp", visit=visit, detector=detector)
            sfm.put(make_catalog(exposure), "src", visit=visit, detector=detector)
    added = {"sfm": blob_bytes(root)}
    pipeline = Pipeline.from_dict({"tasks": {"jointcal": {"class": "jointcal", "config": JOINTCAL}}})
    report = execute(pipeline, Butler(root, collections=["sfm"], run="jointcal"))
    assert not report.failed, str(report)
    added["jointcal"] = blob_bytes(root) - added["sfm"]
    before = blob_bytes(root)
    coadd = Pipeline.from_dict({"tasks": {"coadd": {"class": "coadd", "config": SKYMAP}}})
    report = execute(coadd, Butler(root, collections=["jointcal"], run="coadd"))
    assert not report.failed, str(report)
    added["coadd"] = blob_bytes(root) - before
    before = blob_bytes(root)
    detection = Pipeline.from_dict({"tasks": {"detection": {"class": "detection"}}})
    report = execute(detection, Butler(root, collections=["coadd"], run="detection"))
    assert not report.failed, str(report)
    added["detection"] = blob_bytes(root) - before
    return root, added


def test_use_case_1_jointcal_costs_wcs_calib_and_manifests(survey):
    root, added = survey
    assert added["jointcal"] <= 0.01 * added["sfm"], added
    reader = Butler(root)
    refs = reader.query_datasets("calexp:jointcal")
    assert len(refs) == len(VISITS) * len(DETECTORS)
    tract = refs[0].data_id["tract"]
    new = reader.get("calexp:jointcal", visit=1, detector=6, tract=tract)
    old = reader.get("calexp:sfm", visit=1, detector=6)
    assert new.wcs != old.wcs and new.calib != old.calib
    assert abs(new.calib.calibration / old.calib.calibration - 1) < 0.1
    assert new.image is old.image and new.mask is old.mask  # the same pixels, shared
    # the new Wcs maps the catalog's centroids to its positions (a real fit)
    cat = reader.get("src:sfm", visit=1, detector=6)
    ra, dec = new.wcs.pixel_to_sky(np.asarray(cat["x"]), np.asarray(cat["y"]))
    assert np.max(np.abs(ra - np.asarray(cat["ra"])) * np.cos(np.radians(dec))) * 3600 < 0.01
    # leaving out the dimension jointcal added: one match is returned
    assert reader.get("calexp:jointcal", visit=1, detector=6).calib == new.calib


def test_stage_lookup_never_falls_back(survey):
    root, _ = survey
    reader = Butler(root)
    Butler(root, run="sfm").put(make_exposure(9, 6, size=64, survey="deep"), "calexp", visit=9, detector=6)
    with pytest.raises(DatasetNotFoundError, match="jointcal.*'sfm' have one.*never fall back"):
        reader.get("calexp:jointcal", visit=9, detector=6)
    assert reader.get("calexp:sfm", visit=9, detector=6).bbox.width == 64


def test_a_data_id_in_two_tracts_is_ambiguous(survey):
    root, _ = survey
    exposure = Butler(root).get("calexp:sfm", visit=2, detector=7)
    writer = Butler(root, run="jointcal-overlap")
    writer.put(exposure, "calexp", visit=2, detector=7, tract=1)
    writer.put(exposure, "calexp", visit=2, detector=7, tract=2)
    with pytest.raises(AmbiguousDatasetError, match="tract: 1.*tract: 2"):
        Butler(root).get("calexp:jointcal-overlap", visit=2, detector=7)
    got = Butler(root).get("calexp:jointcal-overlap", visit=2, detector=7, tract=2)
    assert got is exposure


def test_use_case_4_detection_costs_background_and_one_plane(survey):
    root, added = survey
    assert added["detection"] <= 0.05 * added["coadd"], added
    reader = Butler(root)
    ref = reader.query_datasets("deepCoadd_calexp:detection")[0]
    calexp = reader.get(ref)
    coadd = reader.get("deepCoadd:coadd", ref.data_id)
    assert calexp.background is not None
    np.testing.assert_array_equal(calexp.image, coadd.image - calexp.background.evaluate(coadd.bbox))
    assert calexp.mask.plane("DETECTED").any()
    np.testing.assert_array_equal(calexp.mask.plane("NO_DATA"), coadd.mask.plane("NO_DATA"))
    assert calexp.variance is coadd.variance


def test_use_case_7_coadd_inputs_are_the_input_objects(survey):
    root, _ = survey
    reader = Butler(root)
    ref = reader.query_datasets("deepCoadd:coadd")[0]
    inputs = reader.get("deepCoadd.coadd_inputs:coadd", ref.data_id)
    assert len(inputs) >= 1
    first = inputs[0]
    calexp = reader.get("calexp:jointcal", first.data_id)
    assert first.wcs is calexp.wcs and first.calib is calexp.calib and first.psf is calexp.psf


def test_use_case_7_cli_prints_the_inputs(survey, capsys):
    from compstore.cli import main

    root, _ = survey
    ref = Butler(root).query_datasets("deepCoadd:coadd")[0]
    inputs = Butler(root).get("deepCoadd.coadd_inputs:coadd", ref.data_id)
    data_id = [f"{k}={v}" for k, v in ref.data_id.items()]
    assert main(["get", "--repo", str(root), "deepCoadd.coadd_inputs:coadd", *data_id]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"CoaddInputs: {len(inputs)} input(s)"
    assert out[1].split() == ["dataset_type", "data_id", "weight"]
    first = inputs[0]
    assert out[2].split() == [
        first.dataset_type, *(f"{k}={v}" for k, v in first.data_id.items()), f"{first.weight:g}"
    ]
    assert len(out) == 2 + len(inputs)


def test_provenance_names_task_config_and_inputs(survey):
    root, _ = survey
    reader = Butler(root)
    ref = reader.query_datasets("calexp:jointcal")[0]
    prov = reader.provenance(ref)
    assert prov["task_label"] == "jointcal"
    assert prov["task_class"].endswith("JointcalTask")
    assert prov["config"]["order"] == 2 and prov["config"]["tract_size"] == JOINTCAL["tract_size"]
    inputs = {reader.registry.get_dataset(i).dataset_type for i in prov["input_ids"]}
    assert inputs == {"calexp", "src"}


def test_rerun_skips_finished_units(survey):
    root, _ = survey
    pipeline = Pipeline.from_dict({"tasks": {"detection": {"class": "detection"}}})
    report = execute(pipeline, Butler(root, collections=["coadd"], run="detection"))
    assert not report.failed and not report.succeeded and report.skipped


def test_builtin_tasks_run_without_a_repository():
    """Task.run works on in-memory objects alone."""
    exposures = {DataId(visit=v, detector=12): make_exposure(v, 12, size=256, survey="deep") for v in (1, 2)}
    catalogs = {k: make_catalog(e) for k, e in exposures.items()}
    out = JointcalTask(config={"order": 2, "min_sources": 10}).run(calexp=exposures, src=catalogs)["calexp"]
    assert set(out) == set(exposures)
    task = CoaddTask(config={"tract_size": 0.1, "patches_per_side": 4})
    overlaps = task.skymap().exposure_overlaps(exposures[DataId(visit=1, detector=12)])
    tract, patches = next(iter(overlaps.items()))
    coadd = task.run(calexp=out, data_id={"tract": tract, "patch": min(patches), "band": "r"})["deepCoadd"]
    assert coadd.coadd_inputs is not None and coadd.wcs is not None
    detected = DetectionTask().run(deepCoadd=coadd)["deepCoadd_calexp"]
    assert detected.image_base is coadd.image and detected.background is not None


def test_one_pipeline_of_all_stages(tmp_path):
    """jointcal, coadd and detection in one pipeline: coadd groups calexps jointcal has yet to write."""
    root = tmp_path / "repo"
    Butler.create(root)
    sfm = Butler(root, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    sfm.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        exposure = make_exposure(visit, 12, size=256, survey="deep")
        sfm.put(exposure, "calexp", visit=visit, detector=12)
        sfm.put(make_catalog(exposure), "src", visit=visit, detector=12)
    pipeline = Pipeline.from_dict({"tasks": {
        "jointcal": {"class": "jointcal", "config": JOINTCAL},
        "coadd": {"class": "coadd", "config": SKYMAP},
        "detection": {"class": "detection"},
    }})
    report = execute(pipeline, Butler(root, collections=["sfm"], run="all"))
    assert not report.failed, str(report)
    refs = Butler(root).query_datasets("deepCoadd_calexp:all")
    assert refs
    inputs = Butler(root).get("deepCoadd.coadd_inputs:all", refs[0].data_id)
    assert {dict(i.data_id).get("tract") is not None for i in inputs} == {True}  # jointcal's calexps


# -- a search path across stages (issue 12, item 1) ------------------------------------------
@pytest.fixture(scope="module")
def after_jointcal(tmp_path_factory):
    """sfm, then jointcal (which adds tract to calexp's data ID), in a repository of its own."""
    root = tmp_path_factory.mktemp("search") / "repo"
    Butler.create(root)
    sfm = Butler(root, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    sfm.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        for detector in (6, 7):
            exposure = make_exposure(visit, detector, size=SIZE, survey="deep")
            sfm.put(exposure, "calexp", visit=visit, detector=detector)
            sfm.put(make_catalog(exposure), "src", visit=visit, detector=detector)
    pipeline = Pipeline.from_dict({"tasks": {"jointcal": {"class": "jointcal", "config": JOINTCAL}}})
    report = execute(pipeline, Butler(root, collections=["sfm"], run="jointcal"))
    assert not report.failed, str(report)
    jointcal = {(r.data_id["visit"], r.data_id["detector"]): r
                for r in Butler(root).query_datasets("calexp:jointcal")}
    assert len(jointcal) == 4 and all("tract" in r.data_id for r in jointcal.values())
    return root, jointcal


def test_a_search_path_takes_each_exposure_from_its_latest_stage(after_jointcal):
    """sfm's calexp (no tract) is shadowed by jointcal's (with tract), not a second candidate."""
    root, jointcal = after_jointcal
    butler = Butler(root, collections=["jointcal", "sfm"])
    for (visit, detector), ref in jointcal.items():
        assert butler.find_dataset("calexp", visit=visit, detector=detector) == ref
        assert butler.get("calexp", visit=visit, detector=detector).wcs is butler.get(ref).wcs
    found = butler.query_datasets("calexp", collections=["jointcal", "sfm"])
    assert sorted(r.id for r in butler.registry.query_datasets(
        "calexp", collections=["jointcal", "sfm"], find_first=True)) == sorted(
        r.id for r in jointcal.values())
    assert len(found) == 8  # query_datasets without find_first lists both stages
    # sfm first: sfm's versions win, as the order says
    sfm_first = Butler(root, collections=["sfm", "jointcal"])
    assert sfm_first.find_dataset("calexp", visit=1, detector=6).run == "sfm"


def _coadd_inputs(root, run):
    reader = Butler(root)
    refs = reader.query_datasets(f"deepCoadd:{run}")
    assert refs
    return [reader.get(f"deepCoadd.coadd_inputs:{run}", ref.data_id) for ref in refs]


def _assert_each_exposure_once_from_jointcal(root, run, jointcal):
    reader = Butler(root)
    for inputs in _coadd_inputs(root, run):
        exposures = [(i.data_id["visit"], i.data_id["detector"]) for i in inputs]
        assert len(exposures) == len(set(exposures)), exposures  # never stacked twice
        for member in inputs:
            ref = jointcal[member.data_id["visit"], member.data_id["detector"]]
            assert dict(member.data_id) == dict(ref.data_id)  # the jointcal version
            assert member.wcs is reader.get(ref).wcs
    assert {(i.data_id["visit"], i.data_id["detector"])
            for inputs in _coadd_inputs(root, run) for i in inputs} == set(jointcal)


def test_coadd_from_jointcal_then_sfm_stacks_each_exposure_once(after_jointcal):
    root, jointcal = after_jointcal
    coadd = Pipeline.from_dict({"tasks": {"coadd": {"class": "coadd", "config": SKYMAP}}})
    report = execute(coadd, Butler(root, collections=["jointcal", "sfm"], run="coadd-py"))
    assert not report.failed, str(report)
    _assert_each_exposure_once_from_jointcal(root, "coadd-py", jointcal)


def test_cli_run_from_jointcal_then_sfm_stacks_each_exposure_once(after_jointcal, tmp_path):
    from compstore.cli import main

    root, jointcal = after_jointcal
    pipeline = tmp_path / "coadd.yaml"
    pipeline.write_text(
        "tasks:\n  coadd:\n    class: coadd\n    config:\n"
        + "".join(f"      {k}: {v}\n" for k, v in SKYMAP.items())
    )
    status = main(["run", "--repo", str(root), "-p", str(pipeline), "-i", "jointcal,sfm",
                   "-o", "coadd-cli"])
    assert status == 0
    _assert_each_exposure_once_from_jointcal(root, "coadd-cli", jointcal)

"""Executing pipelines: outputs and provenance, failures, re-runs, dry runs, process pools."""

from __future__ import annotations

import re

import pytest
from pipeline_test_tasks import BadOutputs, Recalibrate, SplitCalibs, VisitSummary

from compstore import Butler
from compstore.errors import PipelineError
from compstore.pipeline import Input, Output, Pipeline, Task, execute
from compstore.registry import Registry


def _pipeline(**recal_config):
    return (
        Pipeline()
        .add_task("recal", Recalibrate, recal_config)
        .add_task("summary", VisitSummary)
        .add_task("split", SplitCalibs)
    )


def _calexp_ids(butler, run):
    return {
        (r.data_id["visit"], r.data_id["detector"])
        for r in butler.registry.query_datasets("calexp", collections=[run])
    }


def test_serial_execution_writes_outputs_with_provenance(calexp_repo, exposures):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    report = execute(_pipeline(factor=2.0), butler, where="visit = 1")
    assert not report.failed and report.exit_status == 0 and report
    assert len(report.succeeded) == 5 and set(report.task_seconds) == {"recal", "summary", "split"}
    reader = Butler(calexp_repo, collections=["recal"])
    for detector in range(3):
        got = reader.get("calexp", visit=1, detector=detector)
        assert got.calib.calibration == pytest.approx(
            2 * exposures[(1, detector)].calib.calibration
        )
    summary = reader.get("visitSummary", visit=1)
    assert summary["detectors"] == "0,1,2"
    assert reader.get("calibOnly", visit=1, detector=2) == reader.get(
        "calexp.calib", visit=1, detector=2
    )
    assert _calexp_ids(butler, "recal") == {(1, 0), (1, 1), (1, 2)}

    # provenance: task label and class, the config, the UUIDs of the inputs
    ref = reader.find_dataset("calexp", visit=1, detector=1)
    source = Butler(calexp_repo, collections=["sfm"]).find_dataset("calexp", visit=1, detector=1)
    prov = butler.provenance(ref)
    assert prov["task_label"] == "recal"
    assert prov["task_class"] == "pipeline_test_tasks:Recalibrate"
    assert prov["config"] == {"factor": 2.0, "fail_detector": -1}
    assert prov["input_ids"] == [source.id]
    summary_prov = butler.provenance(reader.find_dataset("visitSummary", visit=1))
    assert summary_prov["task_label"] == "summary"
    assert summary_prov["input_ids"] == [
        reader.find_dataset("calexp", visit=1, detector=d).id for d in range(3)
    ]


def test_failed_unit_is_reported_and_leaves_nothing(calexp_repo):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    report = execute(_pipeline(fail_detector=1), butler)
    assert report.failed and report.exit_status == 1 and not report
    assert [(r.task_label, dict(r.data_id)) for r in report.failed] == [
        ("recal", {"visit": 1, "detector": 1}),
        ("recal", {"visit": 2, "detector": 1}),
    ]
    failed = report.failed[0]
    assert "RuntimeError: detector 1 is cursed" in failed.reason and "Traceback" in failed.traceback
    # the other units of the task ran; the units reading the failed one's output were skipped
    assert len([r for r in report.succeeded if r.task_label == "recal"]) == 4
    assert _calexp_ids(butler, "recal") == {(1, 0), (1, 2), (2, 0), (2, 2)}
    skipped = {(r.task_label, r.data_id["visit"]) for r in report.skipped}
    assert skipped == {("summary", 1), ("split", 1), ("summary", 2), ("split", 2)}
    assert all("which failed" in r.reason for r in report.skipped)
    text = str(report)
    assert "FAILED recal {detector: 1, visit: 1}: RuntimeError: detector 1 is cursed" in text
    assert "SKIPPED summary {visit: 1}" in text
    assert "pipeline_test_tasks.py" in text  # the traceback


def test_rerun_skips_finished_units_and_runs_the_rest(calexp_repo):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    first = execute(_pipeline(fail_detector=1), butler, where="visit = 1")
    assert len(first.failed) == 1
    # the "fix": the same pipeline without the failure; finished units are skipped
    second = execute(_pipeline(), butler, where="visit = 1")
    assert [dict(r.data_id) for r in second.succeeded if r.task_label == "recal"] == [
        {"visit": 1, "detector": 1}
    ]
    assert {r.task_label for r in second.succeeded} == {"recal", "summary", "split"}
    assert sum("outputs exist" in r.reason for r in second.skipped) == 2
    third = execute(_pipeline(), butler, where="visit = 1")
    assert not third.succeeded and not third.failed and len(third.skipped) == 5


def test_without_skip_existing_a_rerun_conflicts(calexp_repo):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    execute(Pipeline().add_task("recal", Recalibrate), butler, where="visit = 1 AND detector = 0")
    report = execute(
        Pipeline().add_task("recal", Recalibrate),
        butler,
        where="visit = 1 AND detector = 0",
        skip_existing=False,
    )
    (failed,) = report.failed
    assert "ConflictingDatasetError" in failed.reason and "already" in failed.reason


def test_dry_run_writes_nothing(calexp_repo):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    report = execute(_pipeline(), butler, where="visit = 2", dry_run=True)
    assert report.dry_run and len(report.pending) == 5 and not report.succeeded
    assert "dry run: 5 unit(s) would run" in str(report) and "QuantumGraph" in str(report)
    assert _calexp_ids(butler, "recal") == set()
    assert "visitSummary" not in {t.name for t in butler.registry.dataset_types()}


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("wrong-type", "output 'calexp' .* must be a Exposure, got builtins.int"),
        ("missing", "returned outputs with missing calexp"),
        ("extra", "unexpected other"),
        ("list", "run\\(\\) returned list; it must return a dict"),
    ],
)
def test_bad_outputs_fail_the_unit_clearly(calexp_repo, mode, message):
    butler = Butler(calexp_repo, collections=["sfm"], run="bad")
    pipeline = Pipeline().add_task("bad", BadOutputs, {"mode": mode})
    report = execute(pipeline, butler, where="visit = 1 AND detector = 0")
    (failed,) = report.failed
    assert failed.reason.startswith("TaskError: task 'bad' (BadOutputs) on {detector: 0, visit: 1}")
    assert re.search(message, failed.reason), failed.reason
    assert _calexp_ids(butler, "bad") == set()


def test_unit_outputs_are_all_or_nothing(calexp_repo, monkeypatch):
    class TwoOutputs(Task):
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
        outputs = {
            "calib": Output("calibOnly", ("visit", "detector"), "Calib"),
            "wcs": Output("wcsOnly", ("visit", "detector"), "Wcs"),
        }

        def run(self, calexp):
            return {"calib": calexp.calib, "wcs": calexp.wcs}

    # The registry fails on the unit's second row, after its first was inserted:
    # the unit's transaction must take the first back too.
    inserted = []
    real_insert = Registry.insert_dataset

    def failing_insert(self, dataset_type, *args, **kwargs):
        inserted.append(dataset_type)
        if dataset_type == "wcsOnly":
            raise RuntimeError("registry down (test)")
        return real_insert(self, dataset_type, *args, **kwargs)

    monkeypatch.setattr(Registry, "insert_dataset", failing_insert)
    butler = Butler(calexp_repo, collections=["sfm"], run="two")
    report = execute(
        Pipeline().add_task("two", TwoOutputs), butler, where="visit = 1 AND detector = 0"
    )
    (failed,) = report.failed
    assert "registry down (test)" in failed.reason
    assert inserted == ["calibOnly", "wcsOnly"]  # the first row did go in, then was undone
    assert butler.registry.query_datasets("calibOnly", collections=["two"]) == []
    monkeypatch.undo()  # with the registry working, the unit runs whole
    report = execute(
        Pipeline().add_task("two", TwoOutputs), butler, where="visit = 1 AND detector = 0"
    )
    assert not report.failed
    assert len(butler.registry.query_datasets("calibOnly", collections=["two"])) == 1


def test_execute_argument_errors(calexp_repo):
    butler = Butler(calexp_repo, collections=["sfm"], run="recal")
    with pytest.raises(PipelineError, match="jobs must be a positive integer"):
        execute(_pipeline(), butler, jobs=0)

    class Local(Recalibrate):
        pass

    with pytest.raises(PipelineError, match="defined inside a function.*jobs=1"):
        execute(Pipeline().add_task("local", Local), butler, jobs=2)


@pytest.mark.slow
def test_process_pool_gives_the_same_outputs_as_serial(calexp_repo):
    serial = execute(
        _pipeline(factor=1.25, fail_detector=2),
        Butler(calexp_repo, collections=["sfm"], run="serial"),
    )
    parallel = execute(
        _pipeline(factor=1.25, fail_detector=2),
        Butler(calexp_repo, collections=["sfm"], run="parallel"),
        jobs=2,
    )

    def outcome(report):
        return {
            (r.status, r.task_label, r.data_id)
            for r in report.succeeded + report.failed + report.skipped
        }

    assert {(s, t, d) for s, t, d in outcome(serial)} == outcome(parallel)
    assert "RuntimeError: detector 2 is cursed" in parallel.failed[0].reason
    reader = Butler(calexp_repo)
    for dataset_type in ("calexp", "visitSummary", "calibOnly"):
        a = {
            r.data_id: r.manifest
            for r in reader.registry.query_datasets(dataset_type, collections=["serial"])
        }
        b = {
            r.data_id: r.manifest
            for r in reader.registry.query_datasets(dataset_type, collections=["parallel"])
        }
        assert a == b  # content-addressed: identical outputs have identical manifests
        assert a or dataset_type != "calexp"
    ref = reader.find_dataset("calexp", visit=2, detector=0, collections=["parallel"])
    assert reader.provenance(ref)["config"]["factor"] == 1.25

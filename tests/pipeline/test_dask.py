"""Pipelines on Dask (issue 16), on a real `distributed.LocalCluster` of two worker processes.

Also: the process pool and Dask start each unit as soon as its inputs exist
(no barrier between tasks).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest

from compstore import Butler
from compstore.cli import main
from compstore.errors import PipelineError
from compstore.pipeline import ExecutionReport, Pipeline, execute
from compstore.testing.repository import copy_repository
from compstore.testing.sky import make_catalog, make_exposure
from pipeline_test_tasks import Recalibrate, SlowOne, VisitSummary

distributed = pytest.importorskip("distributed")

# The built-in stages on a small deep survey, as in tests/e2e/test_stages.py.
JOINTCAL = {"tract_size": 0.5, "order": 2, "min_sources": 10}
SKYMAP = {"tract_size": 0.1, "patches_per_side": 4}


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes, shared by the tests that pass its address."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=40,
    ) as local:
        yield local


def _outcome(report: ExecutionReport) -> list[tuple[str, str, dict, str]]:
    return [
        (r.status, r.task_label, dict(r.data_id), r.reason)
        for r in report.succeeded + report.failed + report.skipped
    ]


def _two_step(**recal: object) -> Pipeline:
    return Pipeline().add_task("recal", Recalibrate, recal).add_task("summary", VisitSummary)


def _outputs(root: Path, run: str, dataset_types: set[str]) -> dict[tuple[str, object], tuple]:
    registry = Butler(root).registry
    return {
        (dataset_type, ref.data_id): (ref.id, ref.manifest)
        for dataset_type in sorted(dataset_types)
        for ref in registry.query_datasets(dataset_type, collections=[run])
    }


@pytest.mark.slow
def test_builtin_pipeline_gives_identical_outputs_serial_pool_and_dask(tmp_path):
    source = tmp_path / "source"
    Butler.create(source)
    sfm = Butler(source, run="sfm")
    sfm.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    sfm.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        for detector in (6, 12):
            exposure = make_exposure(visit, detector, size=256, survey="deep")
            sfm.put(exposure, "calexp", visit=visit, detector=detector)
            sfm.put(make_catalog(exposure), "src", visit=visit, detector=detector)
    pipeline = Pipeline.from_dict({"tasks": {
        "jointcal": {"class": "jointcal", "config": JOINTCAL},
        "coadd": {"class": "coadd", "config": SKYMAP},
        "detection": {"class": "detection"},
    }})
    outputs = {
        spec.dataset_type for t in pipeline for spec in pipeline.make_task(t.label).outputs.values()
    }
    # Each executor runs on its own copy of the same inputs, into a run of the same
    # name: what it writes must be the very same datasets (IDs derived from their
    # provenance) with the very same bytes (manifest digests), coadds included,
    # whose manifests name their inputs by dataset ID.
    roots = {name: copy_repository(source, tmp_path / name) for name in ("serial", "pool", "dask")}
    children_before = set(multiprocessing.active_children())
    reports = {
        "serial": execute(pipeline, Butler(roots["serial"], collections=["sfm"], run="out")),
        "pool": execute(
            pipeline, Butler(roots["pool"], collections=["sfm"], run="out"), jobs=2
        ),
        # No scheduler: execute starts a LocalCluster of 2 worker processes, and stops it.
        "dask": execute(
            pipeline,
            Butler(roots["dask"], collections=["sfm"], run="out"),
            jobs=2,
            executor="dask",
        ),
    }
    assert set(multiprocessing.active_children()) <= children_before, "a worker outlived its run"
    for report in reports.values():
        assert not report.failed, str(report)
        assert _outcome(report) == _outcome(reports["serial"])
    expected = _outputs(roots["serial"], "out", outputs)
    assert {k[0] for k in expected} == outputs  # every stage wrote something
    for name in ("pool", "dask"):
        got = _outputs(roots[name], "out", outputs)
        assert got.keys() == expected.keys(), name
        for key, (dataset_id, manifest) in expected.items():
            # Content-addressed: the same manifest digest means the same bytes.
            assert got[key] == (dataset_id, manifest), (name, key)
    butler = Butler(roots["dask"])
    detected = [data_id for dataset_type, data_id in expected if dataset_type == "deepCoadd_calexp"]
    ref = butler.find_dataset("deepCoadd_calexp", detected[0], collections=["out"])
    provenance = butler.provenance(ref)
    assert provenance["task_label"] == "detection" and provenance["input_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["process", "dask"])
def test_a_unit_starts_when_its_inputs_exist_not_when_the_task_ends(
    calexp_repo, cluster, executor
):
    """Visit 1's summary runs while recal of visit 2 detector 0 is still sleeping."""
    pipeline = Pipeline().add_task(
        "recal", SlowOne, {"slow_visit": 2, "slow_detector": 0, "delay": 4.0}
    ).add_task("summary", VisitSummary)
    options = {"scheduler": cluster.scheduler_address} if executor == "dask" else {}
    report = execute(
        pipeline,
        Butler(calexp_repo, collections=["sfm"], run="eager"),
        jobs=2,
        executor=executor,
        **options,
    )
    assert report.exit_status == 0, str(report)
    units = {(r.task_label, r.data_id.get("visit"), r.data_id.get("detector")): r
             for r in report.succeeded}
    slow = units[("recal", 2, 0)]
    slow_end = slow.started + slow.seconds
    # With a barrier between tasks, every summary would start after the slow unit ended.
    first = units[("summary", 1, None)]
    assert first.started + first.seconds < slow_end
    assert units[("summary", 2, None)].started >= slow_end  # it reads the slow unit's output
    # A task's wall time spans its units; here the two tasks overlap.
    assert report.task_seconds["recal"] >= 4.0


@pytest.mark.slow
def test_dask_failures_are_reported_like_the_serial_executor(calexp_repo, cluster):
    serial = execute(_two_step(fail_detector=2), Butler(calexp_repo, collections=["sfm"], run="s"))
    butler = Butler(calexp_repo, collections=["sfm"], run="d")
    report = execute(
        _two_step(fail_detector=2), butler, executor="dask", scheduler=cluster.scheduler_address
    )
    assert report.exit_status == 1
    # Same statuses, data IDs and reasons, in the same order (graph order).
    assert _outcome(report) == [(s, t, d, r.replace("'s'", "'d'")) for s, t, d, r in _outcome(serial)]
    assert [dict(r.data_id) for r in report.failed] == [
        {"visit": 1, "detector": 2}, {"visit": 2, "detector": 2}
    ]
    assert "RuntimeError: detector 2 is cursed" in report.failed[0].reason
    assert "Traceback" in report.failed[0].traceback and "cursed" in report.failed[0].traceback
    assert len(report.succeeded) == 4  # the other units completed
    assert [r.reason for r in report.skipped] == [
        "an input comes from recal {detector: 2, visit: 1}, which failed",
        "an input comes from recal {detector: 2, visit: 2}, which failed",
    ]
    assert not butler.exists("calexp", visit=1, detector=2, collections=["d"])
    assert "FAILED recal {detector: 2, visit: 1}" in str(report)


@pytest.mark.slow
def test_dask_rerun_skips_existing_outputs(calexp_repo, cluster):
    butler = Butler(calexp_repo, collections=["sfm"], run="again")
    first = execute(
        _two_step(fail_detector=2), butler, executor="dask", scheduler=cluster.scheduler_address
    )
    assert len(first.failed) == 2
    second = execute(_two_step(), butler, executor="dask", scheduler=cluster.scheduler_address)
    assert second.exit_status == 0
    ran = sorted((r.task_label, tuple(sorted(r.data_id.items()))) for r in second.succeeded)
    assert ran == [
        ("recal", (("detector", 2), ("visit", 1))),
        ("recal", (("detector", 2), ("visit", 2))),
        ("summary", (("visit", 1),)),
        ("summary", (("visit", 2),)),
    ]
    assert [r.reason for r in second.skipped] == ["outputs exist in run 'again'"] * 4
    assert Butler(calexp_repo, collections=["again"]).get("visitSummary", visit=2)["detectors"] == "0,1,2"
    # Everything exists: decided here, nothing is sent to the cluster.
    third = execute(_two_step(), butler, executor="dask", scheduler="tcp://127.0.0.1:9")
    assert len(third.skipped) == 8 and not third.succeeded


@pytest.mark.slow
def test_units_run_on_the_workers_of_the_scheduler_given(calexp_repo, cluster, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    pipeline = Pipeline().add_task("recal", SlowOne, {"pid_dir": str(pids)})
    report = execute(
        pipeline,
        Butler(calexp_repo, collections=["sfm"], run="remote"),
        executor="dask",
        scheduler=cluster.scheduler_address,
    )
    assert report.exit_status == 0 and len(report.succeeded) == 6
    with distributed.Client(cluster.scheduler_address) as client:
        worker_pids = set(client.run(os.getpid).values())
    ran_in = {int(p.name) for p in pids.iterdir()}
    assert ran_in and ran_in <= worker_pids and os.getpid() not in ran_in


def test_dask_argument_errors(calexp_repo, monkeypatch):
    butler = Butler(calexp_repo, collections=["sfm"], run="x")
    with pytest.raises(PipelineError, match="unknown executor 'threads'"):
        execute(_two_step(), butler, executor="threads")
    with pytest.raises(PipelineError, match="pass executor='dask' with it"):
        execute(_two_step(), butler, scheduler="tcp://127.0.0.1:8786")

    class Local(Recalibrate):
        pass

    with pytest.raises(PipelineError, match="defined inside a function"):
        execute(Pipeline().add_task("local", Local), butler, executor="dask")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(PipelineError, match="needs the 'distributed' package.*pip install"):
        execute(_two_step(), butler, executor="dask")
    assert not Butler(calexp_repo).registry.query_datasets("calexp", collections=["x"])


def test_an_unreachable_scheduler_is_a_clear_error(calexp_repo):
    import dask

    butler = Butler(calexp_repo, collections=["sfm"], run="nowhere")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(PipelineError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
            execute(_two_step(), butler, executor="dask", scheduler="tcp://127.0.0.1:9")
    assert not butler.registry.query_datasets("calexp", collections=["nowhere"])


@pytest.mark.slow
def test_cli_run_on_a_dask_scheduler(calexp_repo, cluster, tmp_path, capsys):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "tasks:\n  recal:\n    class: pipeline_test_tasks:Recalibrate\n"
        "  summary:\n    class: pipeline_test_tasks:VisitSummary\n"
    )
    args = ["run", "--repo", str(calexp_repo), "-p", str(path), "-i", "sfm", "-o", "cli",
            "--executor", "dask", "--scheduler", cluster.scheduler_address]
    assert main([*args, "--python"]) == 0
    assert f"executor='dask', scheduler={cluster.scheduler_address!r}" in capsys.readouterr().out
    assert main([*args, "-c", "recal:fail_detector=1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED recal {detector: 1, visit: 1}" in out and "4 succeeded, 2 failed" in out
    assert main(["run", "--repo", str(calexp_repo), "-p", str(path), "-i", "sfm", "-o", "cli",
                 "--scheduler", "tcp://127.0.0.1:9"]) == 1
    assert "pass executor='dask' with it" in capsys.readouterr().err


def test_a_local_cluster_is_closed_when_its_client_cannot_start():
    """If Client() fails, the LocalCluster just started is closed, not left running."""
    import types

    from compstore.pipeline._dask import _client

    closed = []

    class Cluster:
        def __init__(self, **kwargs):
            pass

        def close(self):
            closed.append(True)

    def client(_cluster):
        raise OSError("no port")

    fake = types.SimpleNamespace(LocalCluster=Cluster, Client=client)
    with pytest.raises(OSError, match="no port"):
        _client(fake, 1, None)  # type: ignore[arg-type]
    assert closed == [True]

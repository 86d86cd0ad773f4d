"""The pipeline and collection commands: run, provenance, collection-chain, tag, query-collections."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from compstore import Butler
from compstore.cli import main, python_for
from compstore.testing.repository import copy_repository, make_calexp_repository
from compstore.testing.sky import make_exposure

# The test tasks live with the pipeline tests; pipeline files name them by module path.
TASKS_DIR = Path(__file__).resolve().parents[1] / "pipeline"
if str(TASKS_DIR) not in sys.path:
    sys.path.insert(0, str(TASKS_DIR))

PIPELINE = """\
tasks:
  recal:
    class: pipeline_test_tasks:Recalibrate
  summary:
    class: pipeline_test_tasks:VisitSummary
"""


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    exposures = {(v, d): make_exposure(v, d, size=64) for v in (1, 2) for d in (0, 1)}
    return make_calexp_repository(tmp_path_factory.mktemp("cli") / "repo", exposures)


@pytest.fixture
def repo(tmp_path, _template):
    root = tmp_path / "repo"
    copy_repository(_template, root)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return root


def _run_argv(repo: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--repo",
        str(repo),
        "-p",
        str(repo.parent / "pipeline.yaml"),
        "-i",
        "sfm",
        *extra,
    ]


def test_run_python_is_exactly_the_api_calls(repo):
    argv = _run_argv(
        repo,
        "-o",
        "out",
        "--where",
        "visit = 1",
        "-c",
        "recal:factor=1.5",
        "-c",
        "recal:fail_detector=7",
        "-j",
        "2",
    )
    assert python_for(argv) == (
        "import sys\n"
        "from compstore import Butler\n"
        "from compstore.pipeline import Pipeline, execute\n"
        f"butler = Butler({str(repo)!r}, collections=['sfm'], run='out')\n"
        f"pipeline = Pipeline.from_file({str(repo.parent / 'pipeline.yaml')!r})\n"
        "pipeline.add_config_override('recal', 'factor', 1.5)\n"
        "pipeline.add_config_override('recal', 'fail_detector', 7)\n"
        "report = execute(pipeline, butler, where='visit = 1', jobs=2, progress=True)\n"
        "print(report)\n"
        "exit_status = report.exit_status\n"
        "if exit_status:\n"
        "    sys.exit(exit_status)\n"
    )


def test_run_and_its_python_do_the_same(repo, capsys):
    assert main(_run_argv(repo, "-o", "by-cli", "-d", "visit = 1", "-c", "recal:factor=2")) == 0
    assert "3 succeeded, 0 failed" in capsys.readouterr().out
    code = python_for(_run_argv(repo, "-o", "by-python", "-d", "visit = 1", "-c", "recal:factor=2"))
    namespace: dict = {}
    exec(compile(code, "<run --python>", "exec"), namespace)
    assert namespace["exit_status"] == 0
    reader = Butler(repo)

    def manifests(run):
        return {
            (r.dataset_type, r.data_id): r.manifest
            for t in ("calexp", "visitSummary")
            for r in reader.registry.query_datasets(t, collections=[run])
        }

    assert manifests("by-cli") == manifests("by-python") and len(manifests("by-cli")) == 3


def test_failed_unit_exits_1_and_is_named(repo, capsys):
    status = main(_run_argv(repo, "-o", "out", "-c", "recal:fail_detector=1"))
    assert status == 1
    out = capsys.readouterr().out
    assert "FAILED recal {detector: 1, visit: 1}: RuntimeError: detector 1 is cursed" in out
    assert "FAILED recal {detector: 1, visit: 2}" in out
    assert "SKIPPED summary {visit: 1}" in out
    refs = Butler(repo).registry.query_datasets("calexp", collections=["out"])
    assert sorted((r.data_id["visit"], r.data_id["detector"]) for r in refs) == [(1, 0), (2, 0)]
    # the re-run without the failure finishes the job and skips what is done
    assert main(_run_argv(repo, "-o", "out")) == 0
    out = capsys.readouterr().out
    assert "4 succeeded, 0 failed, 2 skipped" in out


def test_dry_run_prints_the_graph_and_writes_nothing(repo, capsys):
    argv = _run_argv(repo, "-o", "out", "--where", "visit = 2", "--dry-run")
    assert "dry_run=True" in python_for(argv)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "task 'recal' (pipeline_test_tasks:Recalibrate): 2 unit(s)" in out
    assert "out summary: visitSummary@{visit: 2}" in out
    assert "dry run: 3 unit(s) would run" in out
    assert Butler(repo).registry.query_datasets("calexp", collections=["out"]) == []


def test_run_errors_are_one_line(repo, capsys):
    assert main(_run_argv(repo, "-o", "out", "-c", "jointcal:order=3")) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "compstore run: error: pipeline has no task labelled 'jointcal'; labels: recal, summary"
    )
    assert main(_run_argv(repo, "-o", "out", "-d", "tract = 1")) == 1
    assert "tract" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(_run_argv(repo, "-o", "out", "-c", "recal-factor"))
    assert info.value.code == 2
    assert "expected -c LABEL:KEY=VALUE" in capsys.readouterr().err


def test_config_values_are_yaml_scalars():
    from compstore.cli._pipeline_commands import parse_config_override

    assert parse_config_override("a:b=3") == ("a", "b", 3)
    assert parse_config_override("a:b=0.5") == ("a", "b", 0.5)
    assert parse_config_override("a:b=true") == ("a", "b", True)
    assert parse_config_override("a:b=null") == ("a", "b", None)
    assert parse_config_override("a:b=MEDIAN_PER_ROW") == ("a", "b", "MEDIAN_PER_ROW")
    assert parse_config_override("a:b='3'") == ("a", "b", "3")
    assert parse_config_override("a:b=x=y") == ("a", "b", "x=y")


def test_provenance_command(repo, capsys):
    assert main(_run_argv(repo, "-o", "out", "-d", "visit = 1", "-c", "recal:factor=3")) == 0
    capsys.readouterr()
    assert main(["provenance", "--repo", str(repo), "calexp:out", "visit=1", "detector=0"]) == 0
    out = capsys.readouterr().out
    source = Butler(repo, collections="sfm").find_dataset("calexp", visit=1, detector=0)
    assert "task: recal (pipeline_test_tasks:Recalibrate)" in out
    assert "'factor': 3.0" in out
    assert f"input: {source}" in out
    assert main(["provenance", "--repo", str(repo), "calexp:sfm", "visit=1", "detector=0"]) == 0
    assert "no provenance recorded" in capsys.readouterr().out


def test_collection_commands(repo, capsys):
    r = ["--repo", str(repo)]
    assert main(["collection-chain", *r, "all", "out,sfm"]) == 3  # 'out' does not exist yet: not found
    capsys.readouterr()
    assert (
        main(["tag", *r, "picked", "calexp", "--where", "detector = 1", "--collections", "sfm"])
        == 0
    )
    assert "tagged 2 datasets into picked" in capsys.readouterr().out
    assert main(["collection-chain", *r, "all", "picked,sfm"]) == 0
    assert "all -> picked, sfm" in capsys.readouterr().out
    assert main(["query-collections", *r]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["CHAINED  all", "TAGGED   picked", "RUN      sfm"]
    assert main(["query-collections", *r, "p*"]) == 0
    assert capsys.readouterr().out.splitlines() == ["TAGGED   picked"]
    # a pipeline reads through the chain
    assert main(["run", *r, "-p", str(repo.parent / "pipeline.yaml"), "-i", "all", "-o", "o2"]) == 0


@pytest.mark.parametrize(
    "command",
    [
        "collection-chain --repo store all jointcal,sfm",
        "tag --repo store best calexp --where 'visit = 1' --collections sfm",
        "query-collections --repo store 'u/*'",
        "provenance --repo store calexp:jointcal visit=1 detector=2",
    ],
)
def test_python_of_collection_commands_compiles(command):
    compile(python_for(shlex.split(command)), command, "exec")

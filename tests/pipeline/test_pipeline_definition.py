"""Pipelines: YAML files and dicts, config overrides, the task name registry, consistency checks."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from pipeline_test_tasks import Recalibrate, VisitSummary

from compstore.errors import PipelineDefinitionError
from compstore.pipeline import (
    Input,
    Output,
    Pipeline,
    Task,
    _registry,
    get_task_class,
    register_task,
)

YAML = """\
description: recalibrate, then summarise each visit
tasks:
  recal:
    class: pipeline_test_tasks:Recalibrate
    config:
      factor: 2
  summary:
    class: pipeline_test_tasks:VisitSummary
"""


def test_from_file_and_back(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(YAML)
    pipeline = Pipeline.from_file(path)
    assert pipeline.labels == ["recal", "summary"]
    assert pipeline["recal"].task_class is Recalibrate
    assert pipeline.make_task("recal").config["factor"] == 2.0
    assert pipeline.to_dict() == {
        "description": "recalibrate, then summarise each visit",
        "tasks": {
            "recal": {"class": "pipeline_test_tasks:Recalibrate", "config": {"factor": 2.0}},
            "summary": {"class": "pipeline_test_tasks:VisitSummary"},
        },
    }
    again = tmp_path / "again.yaml"
    again.write_text(pipeline.to_yaml())
    assert Pipeline.from_file(again).to_dict() == pipeline.to_dict()


def test_built_in_python():
    pipeline = (
        Pipeline().add_task("recal", Recalibrate, {"factor": 1.5}).add_task("summary", VisitSummary)
    )
    assert pipeline.to_dict()["tasks"]["recal"] == {
        "class": "pipeline_test_tasks:Recalibrate",
        "config": {"factor": 1.5},
    }
    assert Pipeline.from_task(Recalibrate).labels == ["Recalibrate"]


def test_add_config_override():
    pipeline = Pipeline.from_dict(
        {"tasks": {"recal": {"class": "pipeline_test_tasks:Recalibrate"}}}
    )
    pipeline.add_config_override("recal", "factor", 3)
    assert pipeline.make_task("recal").config["factor"] == 3.0
    assert pipeline.to_dict()["tasks"]["recal"]["config"] == {"factor": 3.0}
    with pytest.raises(PipelineDefinitionError, match="no task labelled 'jointcal'; labels: recal"):
        pipeline.add_config_override("jointcal", "order", 3)
    with pytest.raises(
        PipelineDefinitionError, match="unknown config key 'order'.*valid keys: factor"
    ):
        pipeline.add_config_override("recal", "order", 3)
    with pytest.raises(PipelineDefinitionError, match="takes float"):
        pipeline.add_config_override("recal", "factor", "big")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [a, b", "not valid YAML"),
        ("- a\n- b\n", "a pipeline is a mapping"),
        ("tasks: {}\n", "'tasks' must be a non-empty mapping"),
        ("tasks: {recal: {class: x}}\nextra: 1\n", "unknown top-level key"),
        ("tasks:\n  recal: pipeline_test_tasks:Recalibrate\n", "task 'recal': expected a mapping"),
        ("tasks:\n  recal: {config: {factor: 2}}\n", "task 'recal': 'class' is missing"),
        (
            "tasks:\n  recal: {class: nosuchtask}\n",
            "task 'recal': unknown task 'nosuchtask': known names",
        ),
        (
            "tasks:\n  recal: {class: 'no_such_module:Thing'}\n",
            "task 'recal': cannot import module",
        ),
        ("tasks:\n  recal: {class: 'pipeline_test_tasks:Nope'}\n", "has no 'Nope'"),
        (
            "tasks:\n  recal: {class: 'pipeline_test_tasks:Input'}\n",
            "not a compstore.pipeline.Task",
        ),
        ("tasks:\n  recal: {class: 'pipeline_test_tasks:Recalibrate', clas: x}\n", "unknown key"),
        (
            "tasks:\n  recal:\n    class: pipeline_test_tasks:Recalibrate\n    config: {factr: 2}\n",
            "task 'recal': unknown config key 'factr'",
        ),
        (
            "tasks:\n  recal:\n    class: pipeline_test_tasks:Recalibrate\n    config: {factor: abc}\n",
            "task 'recal': .*takes float",
        ),
        (
            "tasks:\n  'bad label': {class: 'pipeline_test_tasks:Recalibrate'}\n",
            "invalid task label",
        ),
    ],
)
def test_malformed_files_name_file_label_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PipelineDefinitionError, match=message) as info:
        Pipeline.from_file(path)
    assert str(path) in str(info.value)


def test_missing_file_and_unsafe_yaml(tmp_path):
    with pytest.raises(PipelineDefinitionError, match="cannot read pipeline file"):
        Pipeline.from_file(tmp_path / "nope.yaml")
    path = tmp_path / "evil.yaml"
    path.write_text("tasks: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(PipelineDefinitionError, match="not valid YAML"):
        Pipeline.from_file(path)


def test_duplicate_label():
    pipeline = Pipeline().add_task("recal", Recalibrate)
    with pytest.raises(PipelineDefinitionError, match="used twice"):
        pipeline.add_task("recal", Recalibrate)


# -- the task name registry ---------------------------------------------------------------------
def test_register_task_name():
    register_task("test-recalibrate", Recalibrate)
    register_task("test-recalibrate", Recalibrate)  # same class again: fine
    pipeline = Pipeline.from_dict({"tasks": {"recal": {"class": "test-recalibrate"}}})
    assert pipeline["recal"].task_class is Recalibrate
    assert pipeline.to_dict()["tasks"]["recal"]["class"] == "test-recalibrate"
    with pytest.raises(PipelineDefinitionError, match="registered already, for .*Recalibrate; pick another"):
        register_task("test-recalibrate", VisitSummary)
    with pytest.raises(PipelineDefinitionError, match="not a Task subclass"):
        register_task("test-int", int)  # type: ignore[arg-type]


def test_a_builtin_task_name_is_rebound_only_with_replace(monkeypatch):
    from compstore.pipeline import _registry

    # The built-in's module is not imported to compare: its path is compared.
    builtins = {**_registry._tasks.builtins(), "test-builtin": "no_such_module:Task"}
    monkeypatch.setattr(_registry._tasks, "_builtins", builtins)
    with pytest.raises(PipelineDefinitionError, match="registered already, for no_such_module:Task"):
        register_task("test-builtin", Recalibrate)
    register_task("test-builtin", Recalibrate, replace=True)
    try:
        assert get_task_class("test-builtin") is Recalibrate
    finally:
        _registry._tasks.forget("test-builtin")


def test_entry_point_names(monkeypatch):
    ep = importlib.metadata.EntryPoint(
        "ep-recalibrate", "pipeline_test_tasks:Recalibrate", "compstore.tasks"
    )
    monkeypatch.setattr(_registry._tasks, "entry_points", lambda: [ep])
    assert "ep-recalibrate" in _registry.registered_tasks()  # listed before it is loaded
    try:
        assert get_task_class("ep-recalibrate") is Recalibrate
    finally:
        _registry._tasks.forget("ep-recalibrate")


def test_builtin_names_are_known_and_imported_lazily():
    assert {"jointcal", "coadd", "detection"} <= set(_registry.registered_tasks())
    code = (
        "import sys, compstore.pipeline\n"
        "assert 'compstore.pipeline.tasks' not in sys.modules, 'built-in tasks imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builtin_names_resolve_to_the_task_classes():
    try:
        cls = get_task_class("coadd")
    except PipelineDefinitionError as err:  # before compstore.pipeline.tasks exists
        assert "built-in task 'coadd'" in str(err)
    else:
        assert cls.__name__ == "CoaddTask" and issubclass(cls, Task)


# -- consistency of a whole pipeline -------------------------------------------------------------
class _WritesSummary(Task):
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
    outputs = {"summary": Output("visitSummary", ("visit",), "Metadata")}
    dimensions = ("visit", "detector")


class _ReadsSummaryWrongly(Task):
    inputs = {"summary": Input("visitSummary", ("visit",), "Exposure")}
    outputs = {"x": Output("x", ("visit",), "Metadata")}


def test_check_two_writers():
    pipeline = Pipeline().add_task("a", VisitSummary).add_task("b", _WritesSummary)
    with pytest.raises(PipelineDefinitionError, match="'a' and 'b' both write visitSummary"):
        pipeline.check()


def test_check_order_and_declarations():
    pipeline = Pipeline().add_task("summary", VisitSummary).add_task("recal", Recalibrate)
    with pytest.raises(PipelineDefinitionError, match="reads calexp, which the later task 'recal'"):
        pipeline.check()
    pipeline = Pipeline().add_task("summary", VisitSummary).add_task("bad", _ReadsSummaryWrongly)
    with pytest.raises(PipelineDefinitionError, match="declares visitSummary as .* Exposure"):
        pipeline.check()

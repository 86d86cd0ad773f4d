"""Tasks: run() on in-memory objects without a repository, config checks, the default grouping."""

from __future__ import annotations

import uuid

import pytest
from pipeline_test_tasks import Recalibrate, SplitCalibs, VisitSummary

from compstore.errors import PipelineDefinitionError
from compstore.pipeline import Input, Output, PredictedRef, Quantum, Task
from compstore.registry import DataId, DatasetRef


def _ref(dataset_type: str, **data_id: int) -> DatasetRef:
    return DatasetRef(uuid.uuid4(), dataset_type, DataId(data_id), "sfm", "0" * 32)


# -- run() with plain objects ---------------------------------------------------------------
def test_run_needs_no_repository(exposures):
    exposure = exposures[(1, 0)]
    out = Recalibrate(config={"factor": 2.0}).run(calexp=exposure)
    assert set(out) == {"calexp"}
    assert out["calexp"].calib.calibration == pytest.approx(2 * exposure.calib.calibration)
    assert out["calexp"].wcs is exposure.wcs  # only the Calib is replaced


def test_multiple_input_is_a_dict_of_data_ids(exposures):
    calexps = {DataId(visit=1, detector=d): exposures[(1, d)] for d in (0, 1)}
    out = VisitSummary().run(calexp=calexps)
    assert out["summary"]["detectors"] == "0,1"
    split = SplitCalibs().run(calexp=calexps)["calib"]
    assert split[DataId(visit=1, detector=1)] is exposures[(1, 1)].calib


# -- config ------------------------------------------------------------------------------
def test_config_defaults_and_overrides():
    task = Recalibrate()
    assert dict(task.config) == {"factor": 1.0, "fail_detector": -1}
    task = Recalibrate(config={"factor": 3}, label="recal")
    assert task.config["factor"] == 3.0 and isinstance(task.config["factor"], float)
    assert task.config.factor == 3.0
    assert task.label == "recal"


def test_config_is_read_only():
    task = Recalibrate()
    with pytest.raises(TypeError):
        task.config["factor"] = 2.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        task.config.factor = 2.0
    with pytest.raises(AttributeError):
        task.config = {}  # type: ignore[misc]


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(
        PipelineDefinitionError,
        match="unknown config key 'factr'.*valid keys: factor, fail_detector",
    ):
        Recalibrate(config={"factr": 2.0})


@pytest.mark.parametrize("value", ["2", None, [1.0], True])
def test_config_type_must_match_default(value):
    with pytest.raises(PipelineDefinitionError, match="config 'factor'.*takes float"):
        Recalibrate(config={"factor": value})


def test_bool_is_not_an_int_and_nan_is_refused():
    with pytest.raises(PipelineDefinitionError, match="takes int"):
        Recalibrate(config={"fail_detector": True})
    with pytest.raises(PipelineDefinitionError, match="NaN"):
        Recalibrate(config={"factor": float("nan")})


def test_config_copies_nested_values():
    class Listy(Task):
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
        outputs = {"out": Output("x", ("visit", "detector"), "Metadata")}
        config_defaults = {"planes": ["BAD"]}

    planes = ["SAT"]
    task = Listy(config={"planes": planes})
    planes.append("CR")
    assert task.config["planes"] == ["SAT"]


# -- declarations ------------------------------------------------------------------------
def test_quantum_dimensions_default_to_first_input():
    class NoDims(Task):
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
        outputs = {"out": Output("x", ("visit",), "Metadata")}

    assert NoDims.quantum_dimensions() == ("visit", "detector")
    assert VisitSummary.quantum_dimensions() == ("visit",)


def test_bad_declarations_are_refused():
    class NoOutputs(Task):
        inputs = {"calexp": Input("calexp", ("visit",), "Exposure")}

    with pytest.raises(PipelineDefinitionError, match="declares no outputs"):
        NoOutputs()

    class OutputAsInput(Task):
        inputs = {"calexp": Output("calexp", ("visit",), "Exposure")}
        outputs = {"x": Output("x", ("visit",), "Metadata")}

    with pytest.raises(PipelineDefinitionError, match=r"inputs\['calexp'\] must be a Input"):
        OutputAsInput()


# -- the default grouping into units of work ----------------------------------------------------
def test_default_build_quanta_per_visit_detector():
    refs = [_ref("calexp", visit=v, detector=d) for v in (1, 2) for d in (0, 1)]
    task = Recalibrate(label="recal")
    quanta = task.build_quanta({"calexp": refs}, butler=None)  # type: ignore[arg-type]
    assert [dict(q.data_id) for q in quanta] == [
        {"visit": 1, "detector": 0},
        {"visit": 1, "detector": 1},
        {"visit": 2, "detector": 0},
        {"visit": 2, "detector": 1},
    ]
    first = quanta[0]
    assert first.task_label == "recal"
    assert first.inputs == {"calexp": [refs[0]]}
    assert first.outputs == {"calexp": [DataId(visit=1, detector=0)]}


def test_default_build_quanta_groups_multiple_inputs():
    refs = [PredictedRef("calexp", DataId(visit=v, detector=d)) for v in (1, 2) for d in (0, 1, 2)]
    quanta = VisitSummary(label="summary").build_quanta({"calexp": refs}, butler=None)  # type: ignore[arg-type]
    assert [q.data_id for q in quanta] == [DataId(visit=1), DataId(visit=2)]
    assert len(quanta[1].inputs["calexp"]) == 3
    assert quanta[1].outputs == {"summary": [DataId(visit=2)]}
    split = SplitCalibs(label="split").build_quanta({"calexp": refs}, butler=None)  # type: ignore[arg-type]
    assert split[0].outputs["calib"] == [DataId(visit=1, detector=d) for d in (0, 1, 2)]


def test_single_input_matching_several_datasets_is_an_error():
    class PerVisit(Task):
        dimensions = ("visit",)
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
        outputs = {"x": Output("x", ("visit",), "Metadata")}

    refs = [_ref("calexp", visit=1, detector=d) for d in (0, 1)]
    with pytest.raises(PipelineDefinitionError, match="not multiple.*multiple=True"):
        PerVisit().build_quanta({"calexp": refs}, butler=None)  # type: ignore[arg-type]


def test_output_dimensions_the_unit_lacks_ask_for_build_quanta():
    class AddsTract(Task):
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
        outputs = {"x": Output("x", ("visit", "detector", "tract"), "Metadata")}

    with pytest.raises(PipelineDefinitionError, match="tract.*override build_quanta"):
        AddsTract().build_quanta({"calexp": [_ref("calexp", visit=1, detector=0)]}, butler=None)  # type: ignore[arg-type]


def test_override_build_quanta_is_plain():
    # A spatial grouping in miniature: every detector of every visit into one "tract" unit.
    class PerTract(Task):
        dimensions = ("tract",)
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True)}
        outputs = {"x": Output("x", ("tract",), "Metadata")}

        def build_quanta(self, inputs, butler):
            return [
                Quantum(
                    self.label,
                    DataId(tract=0),
                    {"calexp": inputs["calexp"]},
                    {"x": [DataId(tract=0)]},
                )
            ]

    refs = [_ref("calexp", visit=1, detector=d) for d in (0, 1)]
    (quantum,) = PerTract(label="t").build_quanta({"calexp": refs}, butler=None)
    assert quantum.data_id == {"tract": 0} and quantum.inputs["calexp"] == refs

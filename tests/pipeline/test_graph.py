"""Quantum graphs: registry queries with where, predicted inputs, printing, plain-data round trips."""

from __future__ import annotations

import json

import pytest
from pipeline_test_tasks import Recalibrate, SplitCalibs, VisitSummary

from compstore import Butler
from compstore.errors import (
    AmbiguousDatasetError,
    MissingDatasetTypeError,
    PipelineDefinitionError,
    PipelineError,
    QueryError,
    QuerySyntaxError,
)
from compstore.pipeline import Input, Output, Pipeline, PredictedRef, Task, build_graph
from compstore.pipeline._graph import matches, quantum_from_dict, quantum_to_dict, restrict_where
from compstore.registry import DataId, DatasetRef, parse_where


@pytest.fixture
def pipeline():
    return (
        Pipeline()
        .add_task("recal", Recalibrate)
        .add_task("summary", VisitSummary)
        .add_task("split", SplitCalibs)
    )


def test_graph_with_where(calexp_repo, pipeline):
    butler = Butler(calexp_repo, collections=["sfm"], run="out")
    graph = build_graph(pipeline, butler, where="visit = 1 AND detector IN (0, 2)")
    recal = graph.for_task("recal")
    assert [dict(q.data_id) for q in recal] == [
        {"visit": 1, "detector": 0},
        {"visit": 1, "detector": 2},
    ]
    assert all(
        isinstance(r, DatasetRef) and r.run == "sfm" for q in recal for r in q.inputs["calexp"]
    )
    (summary,) = graph.for_task("summary")
    assert summary.data_id == {"visit": 1}
    assert summary.inputs["calexp"] == [
        PredictedRef("calexp", DataId(visit=1, detector=d)) for d in (0, 2)
    ]
    assert graph.dependencies(graph.quanta.index(summary)) == [0, 1]
    assert len(graph) == 4


def test_graph_without_where_covers_everything(calexp_repo, pipeline):
    graph = build_graph(pipeline, Butler(calexp_repo, collections=["sfm"], run="out"))
    assert len(graph.for_task("recal")) == 6 and len(graph.for_task("summary")) == 2


def test_graph_prints_label_data_id_inputs_outputs(calexp_repo, pipeline):
    graph = build_graph(
        pipeline, Butler(calexp_repo, collections=["sfm"], run="out"), where="visit = 2"
    )
    text = str(graph)
    assert "task 'recal' (pipeline_test_tasks:Recalibrate): 3 unit(s)" in text
    assert "{detector: 1, visit: 2}" in text
    assert "in  calexp: calexp@{detector: 1, visit: 2} in 'sfm'" in text
    assert "out summary: visitSummary@{visit: 2}" in text
    assert "calexp@{detector: 0, visit: 2} (predicted)" in text


def test_where_terms_apply_only_where_their_dimensions_are(calexp_repo):
    class PerTract(Task):
        dimensions = ("visit", "tract")
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True)}
        outputs = {"x": Output("tractSummary", ("visit", "tract"), "Metadata")}

        def build_quanta(self, inputs, butler):
            from compstore.pipeline import Quantum

            by_visit = {}
            for ref in inputs["calexp"]:
                by_visit.setdefault(ref.data_id["visit"], []).append(ref)
            return [
                Quantum(
                    self.label,
                    DataId(visit=v, tract=t),
                    {"calexp": refs},
                    {"x": [DataId(visit=v, tract=t)]},
                )
                for v, refs in sorted(by_visit.items())
                for t in (0, 1)
            ]

    pipeline = Pipeline().add_task("tracts", PerTract)
    graph = build_graph(
        pipeline,
        Butler(calexp_repo, collections=["sfm"], run="out"),
        where="visit = 1 AND tract = 1",
    )
    assert [dict(q.data_id) for q in graph] == [{"visit": 1, "tract": 1}]
    assert len(graph.quanta[0].inputs["calexp"]) == 3


def test_where_errors(calexp_repo, pipeline):
    butler = Butler(calexp_repo, collections=["sfm"], run="out")
    with pytest.raises(QueryError, match="names dimension.* patch .*they have: detector, visit"):
        build_graph(pipeline, butler, where="patch = 3")
    with pytest.raises(QuerySyntaxError, match="column"):
        build_graph(pipeline, butler, where="visit = = 1")


def test_butler_needs_run_and_collections(calexp_repo, pipeline):
    with pytest.raises(PipelineError, match="no output run"):
        build_graph(pipeline, Butler(calexp_repo, collections=["sfm"]))


def test_input_declaration_must_match_registry(calexp_repo):
    class WrongClass(Task):
        inputs = {"calexp": Input("calexp", ("visit", "detector"), "SourceCatalog")}
        outputs = {"x": Output("x", ("visit", "detector"), "Metadata")}

    with pytest.raises(PipelineDefinitionError, match="the repository has calexp"):
        build_graph(
            Pipeline().add_task("w", WrongClass), Butler(calexp_repo, collections=["sfm"], run="o")
        )

    class Unregistered(Task):
        inputs = {"src": Input("src", ("visit", "detector"), "SourceCatalog")}
        outputs = {"x": Output("x", ("visit", "detector"), "Metadata")}

    with pytest.raises(MissingDatasetTypeError):
        build_graph(
            Pipeline().add_task("u", Unregistered),
            Butler(calexp_repo, collections=["sfm"], run="o"),
        )


def test_inputs_found_first_in_search_order(calexp_repo, exposures):
    writer = Butler(calexp_repo, run="newer")
    writer.put(exposures[(1, 0)], "calexp", visit=1, detector=0)
    graph = build_graph(
        Pipeline().add_task("recal", Recalibrate),
        Butler(calexp_repo, collections=["newer", "sfm"], run="out"),
        where="visit = 1",
    )
    runs = {q.data_id["detector"]: q.inputs["calexp"][0].run for q in graph}
    assert runs == {0: "newer", 1: "sfm", 2: "sfm"}


def test_quantum_plain_data_round_trip(calexp_repo, pipeline):
    graph = build_graph(
        pipeline, Butler(calexp_repo, collections=["sfm"], run="out"), where="visit = 1"
    )
    for quantum in graph:
        data = quantum_to_dict(quantum)
        assert json.loads(json.dumps(data)) == data  # only str, int, lists and dicts
        assert quantum_from_dict(data) == quantum


@pytest.mark.parametrize(
    ("where", "dims", "expected"),
    [
        ("visit = 1 AND tract = 2", ("visit", "detector"), "(visit = 1)"),
        ("visit = 1 OR tract = 2", ("visit", "detector"), None),
        (
            "band = 'r''s' AND NOT (detector IN (1, 2))",
            ("band", "detector"),
            "(band = 'r''s') AND (NOT (detector IN (1, 2)))",
        ),
        (
            "detector NOT IN (3) AND 2 < visit",
            ("visit", "detector"),
            "(detector NOT IN (3)) AND (2 < visit)",
        ),
    ],
)
def test_restrict_where(where, dims, expected):
    restricted = restrict_where(parse_where(where), dims)
    assert restricted == expected
    if restricted is not None:
        parse_where(restricted)  # what it writes parses back


def test_matches_evaluates_terms_the_data_id_has():
    node = parse_where("visit IN (1, 2) AND tract = 3 AND NOT (band = 'g')")
    assert matches(node, {"visit": 1, "detector": 5})
    assert not matches(node, {"visit": 3})
    assert not matches(node, {"visit": 1, "tract": 4})
    assert matches(node, {"visit": 2, "tract": 3, "band": "r"})
    assert not matches(node, {"band": "g"})


def test_graph_takes_each_input_once_across_stages(calexp_repo, exposures):
    """A later stage's calexp (with tract) shadows the earlier one's in the graph's inputs."""
    butler = Butler(calexp_repo, run="jointcal")
    butler.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    later = {d: butler.put(exposures[(1, d)], "calexp", visit=1, detector=d, tract=5) for d in (0, 1)}
    graph = build_graph(
        Pipeline().add_task("summary", VisitSummary),
        Butler(calexp_repo, collections=["jointcal", "sfm"], run="out"),
    )
    (visit1,) = [q for q in graph.for_task("summary") if q.data_id["visit"] == 1]
    inputs = visit1.inputs["calexp"]
    assert sorted((r.data_id["detector"], r.run) for r in inputs) == [
        (0, "jointcal"), (1, "jointcal"), (2, "sfm")
    ]
    assert {r.id for r in inputs} >= {later[0].id, later[1].id}


def test_one_exposure_twice_in_one_collection_is_refused_with_advice_that_works(calexp_repo, exposures):
    """Two tracts of one exposure in jointcal: a task declaring (visit, detector) would read it twice."""
    butler = Butler(calexp_repo, run="jointcal")
    butler.register_dataset_type("calexp", ("visit", "detector", "tract"), "Exposure")
    for tract in (5, 6):
        butler.put(exposures[(1, 0)], "calexp", visit=1, detector=0, tract=tract)
    pipeline = Pipeline().add_task("summary", VisitSummary)
    with pytest.raises(AmbiguousDatasetError) as info:
        build_graph(pipeline, Butler(calexp_repo, collections=["jointcal", "sfm"], run="out"))
    message = str(info.value)
    assert "tract: 5" in message and "tract: 6" in message and "twice" in message
    assert "--where \"tract = 5\" --collections jointcal" in message
    assert "-i picked,jointcal,sfm" in message
    # following the advice
    butler.tag("picked", butler.query_datasets("calexp", where="tract = 5", collections="jointcal"))
    graph = build_graph(pipeline, Butler(calexp_repo, collections=["picked", "jointcal", "sfm"], run="out"))
    (visit1,) = [q for q in graph.for_task("summary") if q.data_id["visit"] == 1]
    assert sorted(
        (r.data_id["detector"], r.data_id.to_dict().get("tract"), r.run) for r in visit1.inputs["calexp"]
    ) == [(0, 5, "jointcal"), (1, None, "sfm"), (2, None, "sfm")]

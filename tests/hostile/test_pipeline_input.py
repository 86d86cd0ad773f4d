"""Hostile pipeline files and -c overrides: a clean message and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from compstore.cli import main
from compstore.errors import PipelineDefinitionError
from compstore.pipeline import Pipeline


@pytest.mark.parametrize(
    "value", ["2020-01-01", ".nan", ".inf", "-.inf", "2020-01-01T10:00:00", "!!binary aGk=",
              "9" * 5000, "[" * 5000, "{1: 2}"]
)
def test_a_config_override_yaml_reads_as_no_plain_value_is_refused_cleanly(tmp_path, capsys, value):
    argv = ["run", "--repo", str(tmp_path / "repo"), "-p", str(tmp_path / "p.yaml"), "-i", "in",
            "-o", "out", "-c", f"jointcal:order={value}"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "compstore: error:" in err and "-c" in err and "Traceback" not in err


def test_plain_override_values_still_pass(tmp_path):
    from compstore.cli import python_for

    code = python_for(["run", "-p", "p.yaml", "-i", "in", "-o", "out",
                       "-c", "a:b='2020-01-01'", "-c", "a:c=[1, {x: 2.5}]", "-c", "a:d=null"])
    assert "'2020-01-01'" in code and "[1, {'x': 2.5}]" in code and "None" in code


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x00garbage", b"tasks:\n  a: " + b"[" * 3000, b"tasks: " + b"9" * 5000,
                b"x: 1\n" * 300_000]
)
def test_a_hostile_pipeline_file_is_a_pipeline_definition_error(tmp_path, content):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(PipelineDefinitionError, match="p.yaml"):
        Pipeline.from_file(path)

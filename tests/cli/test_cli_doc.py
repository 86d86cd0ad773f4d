"""docs/cli-and-python.md shows each command beside the Python it runs, and that Python runs."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from astropy.io import fits

from compstore import Butler
from compstore.cli import COMMANDS_DOCUMENTED
from compstore.testing.sky import make_exposure

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli-and-python.md"


def test_doc_matches_the_cli():
    gen = runpy.run_path(str(ROOT / "tools" / "gen_cli_doc.py"))
    text = DOC.read_text()
    assert gen["render"](text) == text, "run `python tools/gen_cli_doc.py` to regenerate the doc"


def test_every_command_is_documented():
    text = DOC.read_text()
    for name in COMMANDS_DOCUMENTED:
        assert f"$ compstore {name} " in text, name


def test_doc_python_blocks_run_in_order(tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    for name, (visit, detector) in {"exp-1-2.fits": (1, 2), "a.fits": (2, 0), "b.fits": (2, 1)}.items():
        make_exposure(visit, detector, size=64).write_fits(tmp_path / name)
        with fits.open(tmp_path / name, mode="update") as hdus:
            hdus[0].header["VISIT"] = visit
            hdus[0].header["DETECTOR"] = detector
    # a multi-extension file: two SCI images (the ingest example picks one with --hdu)
    sci = [fits.ImageHDU(make_exposure(3, 0, size=32).image, name="SCI", ver=v) for v in (1, 2)]
    fits.HDUList([fits.PrimaryHDU(), *sci]).writeto(tmp_path / "mef.fits")
    # `run` reads pipeline.yaml (shown in the doc), whose task lives in mytasks.py.
    (tmp_path / "mytasks.py").write_text(MYTASKS)
    (tmp_path / "pipeline.yaml").write_text(re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[1])
    monkeypatch.syspath_prepend(str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        if "run_demo" in code:
            code = code.replace("size=1024", "size=256")
        staged = None
        if "postgresql://postgres@127.0.0.1:5432/survey" in code:
            # `create --registry`: the doc's URL stands for the test session's own server.
            url = request.getfixturevalue("postgres_url")
            code = code.replace("postgresql://postgres@127.0.0.1:5432/survey", url)
        if "s3://my-bucket" in code and "s3" not in namespace:
            # A repository on object storage: the session's S3 server stands for AWS.
            server = request.getfixturevalue("s3_server")
            for key, value in server.environment().items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("HOME", str(tmp_path))  # the CLI's default cache: ~/.cache
            server.new_bucket("my-bucket")
            namespace["s3"] = server
        if "calexp:jointcal" in code:
            # the stage this block reads must exist: a jointcal run with one calexp
            exp = Butler("store", collections="raw").get("calexp", visit=1, detector=2)
            staged = Butler("store", run="jointcal").put(exp, "calexp", visit=1, detector=2)
        exec(compile(code, f"cli-and-python block {i}", "exec"), namespace)
        if staged is not None:
            # Gone again: the later blocks search every run (no collections), where the
            # same data ID in two runs is rightly ambiguous.
            Butler("store").remove(staged)
    assert (tmp_path / "calexp-1-2.fits").exists()
    assert namespace["exit_status"] == 0  # the `run` block ran every unit


MYTASKS = """
from compstore import Calib
from compstore.pipeline import Input, Output, Task


class Recalibrate(Task):
    dimensions = ("visit", "detector")
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
    outputs = {"calexp": Output("calexp", ("visit", "detector"), "Exposure")}
    config_defaults = {"factor": 1.0}

    def run(self, calexp):
        calib = Calib(calexp.calib.calibration * self.config["factor"], calexp.calib.calibration_err)
        return {"calexp": calexp.replace(calib=calib)}
"""

"""The command line: each command runs, --python prints what it runs, errors are one clean line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compstore import Butler
from compstore.cli import main, python_for
from compstore.testing.sky import make_catalog, make_exposure


@pytest.fixture
def filled(tmp_path):
    root = tmp_path / "repo"
    Butler.create(root)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for detector in range(2):
        exposure = make_exposure(1, detector, size=64)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        butler.put(make_catalog(exposure), "src", visit=1, detector=detector)
    return root


def test_create_and_register(tmp_path, capsys):
    root = str(tmp_path / "new")
    assert main(["create", "--repo", root]) == 0
    assert main(["register-dataset-type", "--repo", root, "calexp", "visit,detector", "Exposure"]) == 0
    assert Butler(root).registry.get_dataset_type("calexp").dimensions == ("visit", "detector")
    assert main(["create", "--repo", root]) == 1
    assert "already" in capsys.readouterr().err


def test_repo_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPSTORE_REPO", str(tmp_path / "env-repo"))
    assert "Butler.create(" + repr(str(tmp_path / "env-repo")) in python_for(["create"])


def test_query_get_export_stats(filled, tmp_path, capsys):
    repo = ["--repo", str(filled)]
    assert main(["query", *repo, "calexp", "--where", "detector = 1"]) == 0
    out = capsys.readouterr().out
    assert "1 datasets" in out and "'detector': 1" in out
    assert main(["get", *repo, "calexp.calib", "visit=1", "detector=0"]) == 0
    assert "Calib(" in capsys.readouterr().out
    target = tmp_path / "x.fits"
    assert main(["export", *repo, "calexp", "visit=1", "detector=0", "-o", str(target)]) == 0
    assert target.exists() and "wrote" in capsys.readouterr().out
    from compstore import Exposure

    assert Exposure.read_fits(target).wcs == Butler(filled).get("calexp.wcs", visit=1, detector=0)
    assert main(["stats", *repo, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["datasets"] == 4


def test_ingest_round_trip(filled, tmp_path, capsys):
    path = tmp_path / "in.fits"
    exposure = make_exposure(5, 3, size=64)
    exposure.write_fits(path)
    repo = ["--repo", str(filled)]
    assert main(["ingest", *repo, "calexp", str(path), "--run", "raw", "--data-id", "visit=5,detector=3",
                 "--no-progress"]) == 0
    got = Butler(filled, collections="raw").get("calexp", visit=5, detector=3)
    assert got.wcs == exposure.wcs and (got.image == exposure.image).all()


def test_ingest_hdu_option_and_clean_refusal(filled, tmp_path, capsys):
    from astropy.io import fits

    images = [make_exposure(6, d, size=16).image for d in (0, 1)]
    sci = [fits.ImageHDU(images[v - 1], name="SCI", ver=v) for v in (1, 2)]
    fits.HDUList([fits.PrimaryHDU(), *sci]).writeto(tmp_path / "mef.fits")
    repo = ["--repo", str(filled)]
    args = ["ingest", *repo, "calexp", str(tmp_path / "mef.fits"), "--run", "raw",
            "--data-id", "visit=6,detector=0", "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "holds 2 images" in err and "--hdu" in err and "Traceback" not in err
    assert main([*args, "--hdu", "SCI,2"]) == 0
    got = Butler(filled, collections="raw").get("calexp", visit=6, detector=0)
    assert (got.image == images[1]).all()
    assert main([*args, "--hdu", "SCI,2"]) == 0  # the same command again: a no-op


def test_errors_are_one_line_without_traceback(filled, capsys):
    repo = ["--repo", str(filled)]
    assert main(["get", *repo, "calexp", "visit=1", "detector=7"]) == 3  # not found
    err = capsys.readouterr().err
    assert err.startswith("compstore get: error: no calexp dataset") and "Traceback" not in err
    assert main(["query", *repo, "calexp", "--where", "visit = = 1"]) == 1
    err = capsys.readouterr().err
    assert "column 9" in err and "^" in err
    assert main(["get", "--repo", str(filled) + "-missing", "calexp"]) == 3  # not found
    assert "no compstore repository" in capsys.readouterr().err


def test_python_flag_prints_and_does_not_run(tmp_path, capsys):
    root = str(tmp_path / "never")
    assert main(["create", "--repo", root, "--python"]) == 0
    assert "Butler.create(" in capsys.readouterr().out
    assert not (tmp_path / "never").exists()


def test_user_values_are_literals_not_code(tmp_path, capsys):
    evil = "x'); import os; os.system('touch pwned'); ('"
    code = python_for(["get", "--repo", str(tmp_path), evil, "visit=1"])
    compile(code, "<test>", "exec")  # still valid Python, and the value is one literal
    assert repr(evil) in code


def test_console_script_runs_in_a_fresh_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "compstore", "create", "--repo", str(tmp_path / "p")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p" / "compstore.json").exists()


def test_demo_runs_twice(tmp_path, capsys):
    root = str(tmp_path / "demo")
    argv = ["demo", "--repo", root, "--visits", "2", "--detectors", "2", "--size", "256"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "share the exposures' Wcs and Calib objects: True" in first
    assert "the same pixel arrays as calexp:sfm: True" in first
    for stage in ("sfm", "jointcal", "coadd", "detection"):
        assert f"\n{stage} " in first
    assert main(argv) == 0  # again: nothing is put twice, finished stages are skipped
    again = capsys.readouterr().out
    assert "FAILED" not in again and "failed" not in again
    for stage in ("sfm", "jointcal", "coadd", "detection"):
        (row,) = [line for line in again.splitlines() if line.startswith(f"{stage} ")]
        assert row.split()[4:6] == ["0.00", "MiB"], row  # "added on disk": nothing
    assert first.splitlines()[-6:] == again.splitlines()[-6:]  # the same repository totals

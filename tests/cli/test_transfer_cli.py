"""compstore subset / transfer: run, --python prints the call, errors are one clean line."""

from __future__ import annotations

import json

from compstore import Butler
from compstore.cli import main, python_for
from compstore.testing.repository import blob_bytes
from compstore.testing.sky import make_catalog, make_exposure


def _filled(root):
    Butler.create(root)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        exposure = make_exposure(visit, 0, size=64)
        butler.put(exposure, "calexp", visit=visit, detector=0)
        butler.put(make_catalog(exposure), "src", visit=visit, detector=0)
    return butler


def test_subset_command(tmp_path, capsys):
    source = _filled(tmp_path / "repo")
    dest = str(tmp_path / "cats")
    argv = ["subset", "--repo", str(source.root), dest, "--dataset-type", "src", "--where", "visit = 1"]
    code = python_for(argv)
    assert f"butler.subset({dest!r}, dataset_types=['src'], where='visit = 1', progress=True)" in code
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "datasets           1" in out and "stored bytes" in out and "unique components" in out
    cats = Butler(dest)
    assert [r.id for r in cats.query_datasets("src")] == [r.id for r in source.query_datasets("src", "visit = 1")]
    # again into the same folder: refused with one clean line, nothing changed
    before = blob_bytes(dest)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("compstore subset: error:") and "already" in err and "Traceback" not in err
    assert blob_bytes(dest) == before
    assert main(["subset", "--repo", str(source.root), str(tmp_path / "x"), "--dataset-type", "nope"]) == 3  # not found
    assert "nope" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_transfer_command(tmp_path, capsys):
    source = _filled(tmp_path / "repo")
    dest = Butler.create(tmp_path / "dest")
    argv = ["transfer", "--repo", str(dest.root), "--from", str(source.root),
            "--dataset-type", "src", "--dataset-type", "calexp", "--collections", "sfm"]
    assert "butler.transfer_from(source, refs, progress=True)" in python_for(argv)
    assert main(argv) == 0
    assert "datasets    4 added" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "datasets    0 added" in out and "bytes       0 written" in out
    assert main([*argv, "--json", "-q"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["datasets"] == 0 and again["bytes_written"] == 0 and len(again["refs"]) == 4
    assert Butler(dest.root).verify(deep=True).ok
    assert main(["transfer", "--repo", str(dest.root), "--from", str(tmp_path / "nowhere"),
                 "--dataset-type", "src"]) == 3  # not found
    assert "Traceback" not in capsys.readouterr().err

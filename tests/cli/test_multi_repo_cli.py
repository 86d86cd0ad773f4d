"""The CLI over several repositories: --repo given more than once, or a ':'-separated $COMPSTORE_REPO."""

from __future__ import annotations

import pytest

from compstore import Butler
from compstore.cli import main, python_for
from compstore.testing.sky import make_catalog, make_exposure


@pytest.fixture
def pair(tmp_path):
    """A catalogs-only repository (src) and an archive (calexp and src), same data IDs."""
    catalogs, archive = tmp_path / "catalogs", tmp_path / "archive"
    for root in (catalogs, archive):
        Butler.create(root)
    exposure = make_exposure(1, 0, size=64)
    cats = Butler(catalogs, run="sfm", fsync=False)
    cats.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    cats.put(make_catalog(exposure), "src", visit=1, detector=0)
    arch = Butler(archive, run="sfm", fsync=False)
    arch.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    arch.put(exposure, "calexp", visit=1, detector=0)
    return str(catalogs), str(archive)


def test_repo_given_twice_prints_the_list_form(pair):
    catalogs, archive = pair
    code = python_for(["get", "--repo", catalogs, "--repo", archive, "calexp.wcs", "visit=1",
                       "detector=0"])
    assert f"butler = Butler({[catalogs, archive]!r})" in code
    # one --repo keeps the plain form
    assert f"butler = Butler({catalogs!r})" in python_for(["query", "--repo", catalogs, "src"])


def test_environment_may_list_several_repositories(pair, monkeypatch):
    catalogs, archive = pair
    monkeypatch.setenv("COMPSTORE_REPO", f"{catalogs}:{archive}")
    assert f"Butler({[catalogs, archive]!r})" in python_for(["query", "calexp"])
    monkeypatch.setenv("COMPSTORE_REPO", catalogs)
    assert f"Butler({catalogs!r})" in python_for(["query", "calexp"])
    # --repo wins over the environment
    assert f"Butler({archive!r})" in python_for(["query", "--repo", archive, "calexp"])


def test_commands_read_through_the_chain(pair, capsys):
    catalogs, archive = pair
    repos = ["--repo", catalogs, "--repo", archive]
    assert main(["query", *repos, "calexp"]) == 0
    assert "1 datasets" in capsys.readouterr().out  # only the archive has calexp
    assert main(["get", *repos, "src.wcs", "visit=1", "detector=0"]) == 0
    assert "Wcs" in capsys.readouterr().out
    assert main(["get", *repos, "calexp", "visit=5", "detector=0"]) == 3  # not found
    err = capsys.readouterr().err
    assert "error:" in err and catalogs in err and archive in err and "Traceback" not in err


def test_create_with_several_repositories_is_a_clean_error(tmp_path, capsys):
    repos = ["--repo", str(tmp_path / "a"), "--repo", str(tmp_path / "b")]
    assert main(["create", *repos]) == 1
    err = capsys.readouterr().err
    assert "one repository" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()

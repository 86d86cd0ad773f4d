"""The package's public surface is exactly ``__all__``, and every name imports."""

from __future__ import annotations

import compstore

EXPECTED = {
    "Background", "Box2I", "Butler", "Calib", "CatalogMember", "CoaddInput", "CoaddInputs",
    "CompstoreError", "VisitExposure",
    "DatasetRef", "DatasetType",
    "Exposure", "GaussianPsf", "ImagePsf", "Mask", "MaskedImage", "Psf", "SourceCatalog",
    "VisitInfo", "Wcs", "__version__",
    "PutResult", "RepositoryStats", "VerifyProblem", "VerifyReport",
}


def test_all_is_pinned():
    assert set(compstore.__all__) == EXPECTED


def test_all_names_exactly_the_lazy_exports():
    assert set(compstore.__all__) == {*compstore._EXPORTS, "__version__"}
    assert len(compstore.__all__) == len(set(compstore.__all__))


def test_the_package_says_it_is_typed():
    from importlib.resources import files

    assert files("compstore").joinpath("py.typed").is_file()


def test_every_name_resolves():
    for name in compstore.__all__:
        assert getattr(compstore, name) is not None


def test_design_import_line():
    from compstore import Butler, Calib, Exposure, Mask, SourceCatalog, Wcs  # noqa: F401

"""compstore.objects exports exactly its documented names, and nothing imports storage."""

from __future__ import annotations

import ast
from pathlib import Path

import compstore.objects

EXPECTED = {
    "Background", "Box2I", "Calib", "CoaddInput", "CoaddInputs", "DEFAULT_MASK_PLANES", "Exposure", "GaussianPsf",
    "ImagePsf", "Mask", "MaskedImage", "Psf", "ReplaceKeyError", "SourceCatalog",
    "CatalogMember", "VisitExposure",
    "VisitInfo", "Wcs",
}


def test_all_is_pinned():
    assert set(compstore.objects.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(compstore.objects, name) is not None


def test_only_numpy_astropy_and_errors():
    # The object model has no storage code: the only compstore import is compstore.errors.
    # compstore.fits sits above the object model: the FITS and astropy methods import it
    # inside their bodies, never at module level.
    package = Path(compstore.objects.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # Relative imports count too: "from ..cas import x" is compstore.cas.
                base = "compstore.objects".split(".")[: 2 - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if module.startswith("compstore") and not module.startswith("compstore.objects"):
                    lazy_fits = id(node) not in top_level and (
                        module == "compstore.fits" or module.startswith("compstore.fits.")
                    )
                    assert module == "compstore.errors" or lazy_fits, (path, module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("compstore."), path
                    root = alias.name.split(".")[0]
                    assert root not in ("zarr", "sqlalchemy", "scipy", "pickle"), path

"""compstore: a caching, content-addressed object store for astronomical composite datasets.

The public surface is exactly ``__all__``; everything else is an implementation
detail. Names load lazily so that ``import compstore`` (and so the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time names load on first use
    from .butler import Butler, PutResult, RepositoryStats
    from .butler.verify import VerifyProblem, VerifyReport
    from .errors import CompstoreError
    from .objects import (
        Background,
        Box2I,
        Calib,
        CatalogMember,
        CoaddInput,
        CoaddInputs,
        Exposure,
        GaussianPsf,
        ImagePsf,
        Mask,
        MaskedImage,
        Psf,
        SourceCatalog,
        VisitExposure,
        VisitInfo,
        Wcs,
    )
    from .registry import DatasetRef, DatasetType

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Butler": "compstore.butler",
    "DatasetRef": "compstore.registry",
    "DatasetType": "compstore.registry",
    "Box2I": "compstore.objects",
    "Mask": "compstore.objects",
    "MaskedImage": "compstore.objects",
    "Exposure": "compstore.objects",
    "Wcs": "compstore.objects",
    "Calib": "compstore.objects",
    "Psf": "compstore.objects",
    "GaussianPsf": "compstore.objects",
    "ImagePsf": "compstore.objects",
    "Background": "compstore.objects",
    "VisitInfo": "compstore.objects",
    "SourceCatalog": "compstore.objects",
    "VisitExposure": "compstore.objects",
    "CatalogMember": "compstore.objects",
    "CoaddInput": "compstore.objects",
    "CoaddInputs": "compstore.objects",
    "CompstoreError": "compstore.errors",
    # What users receive back: put_many's results, stats() and verify() reports.
    "PutResult": "compstore.butler",
    "RepositoryStats": "compstore.butler",
    "VerifyReport": "compstore.butler.verify",
    "VerifyProblem": "compstore.butler.verify",
}

# Literal, so that type checkers and IDEs know the public names (a test keeps it in
# step with _EXPORTS).
__all__ = [
    "Background",
    "Box2I",
    "Butler",
    "Calib",
    "CatalogMember",
    "CoaddInput",
    "CoaddInputs",
    "CompstoreError",
    "DatasetRef",
    "DatasetType",
    "Exposure",
    "GaussianPsf",
    "ImagePsf",
    "Mask",
    "MaskedImage",
    "PutResult",
    "Psf",
    "RepositoryStats",
    "SourceCatalog",
    "VerifyProblem",
    "VerifyReport",
    "VisitExposure",
    "VisitInfo",
    "Wcs",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'compstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

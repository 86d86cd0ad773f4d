"""The astronomy object model: Exposure, its pieces, and SourceCatalog.

Pure numpy + astropy; nothing here knows about storage. Implementation modules
start with ``_``; the public surface is exactly ``__all__``.
"""

from __future__ import annotations

from compstore.errors import ReplaceKeyError

from ._background import Background
from ._box import Box2I
from ._calib import Calib
from ._catalog import CatalogMember, SourceCatalog
from ._coadd_inputs import CoaddInput, CoaddInputs
from ._image import Exposure, MaskedImage
from ._mask import DEFAULT_MASK_PLANES, Mask
from ._psf import GaussianPsf, ImagePsf, Psf
from ._visit import VisitInfo
from ._visit_exposure import VisitExposure
from ._wcs import Wcs

__all__ = [
    "DEFAULT_MASK_PLANES",
    "Background",
    "Box2I",
    "Calib",
    "CoaddInput",
    "CoaddInputs",
    "Exposure",
    "GaussianPsf",
    "ImagePsf",
    "Mask",
    "MaskedImage",
    "Psf",
    "ReplaceKeyError",
    "SourceCatalog",
    "CatalogMember",
    "VisitExposure",
    "VisitInfo",
    "Wcs",
]

"""The old import path of `compstore.butler.verify` (repository checks), kept working."""

from __future__ import annotations

from .butler.verify import (
    CORRUPT,
    DANGLING,
    DUPLICATE,
    MISSING,
    UNREADABLE,
    VerifyProblem,
    VerifyReport,
    verify_repository,
)

__all__ = [
    "CORRUPT",
    "DANGLING",
    "DUPLICATE",
    "MISSING",
    "UNREADABLE",
    "VerifyProblem",
    "VerifyReport",
    "verify_repository",
]

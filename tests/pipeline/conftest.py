"""Fixtures of the pipeline tests: a repository with a few calexps, and the test tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compstore.testing.repository import copy_repository, make_calexp_repository
from compstore.testing.sky import make_exposure

HERE = Path(__file__).resolve().parent
# The test tasks must be importable by module path, here and in spawned workers
# (which inherit sys.path); importlib mode does not put test folders on it.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SIZE = 64
VISITS = (1, 2)
DETECTORS = (0, 1, 2)


@pytest.fixture(scope="session")
def exposures():
    """Small synthetic calexps, keyed by (visit, detector)."""
    return {(v, d): make_exposure(v, d, size=SIZE) for v in VISITS for d in DETECTORS}


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory, exposures):
    return make_calexp_repository(tmp_path_factory.mktemp("template") / "repo", exposures)


@pytest.fixture
def calexp_repo(tmp_path, _template_repo):
    """A repository whose run ``sfm`` holds calexp for visits 1-2, detectors 0-2."""
    # Copying a finished repository is ten times faster than filling a new one.
    root = tmp_path / "repo"
    copy_repository(_template_repo, root)
    return root

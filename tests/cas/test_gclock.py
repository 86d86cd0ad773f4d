"""The gc lock: a put holds ``gc.lock`` shared, reentrant per repository, never across repositories."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from compstore.cas._gclock import GC_LOCK, sweep_guard, writer_guard


def _exclusive_free(root: Path) -> bool:
    """Whether another open file could take ``root``'s gc lock exclusive now."""
    fd = os.open(root / GC_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_writer_guard_holds_the_lock_shared(tmp_path: Path) -> None:
    with writer_guard(str(tmp_path)):
        assert not _exclusive_free(tmp_path)
    assert _exclusive_free(tmp_path)


def test_nested_guard_of_the_same_repository_is_reentrant(tmp_path: Path) -> None:
    with writer_guard(str(tmp_path)):
        with writer_guard(str(tmp_path)):
            assert not _exclusive_free(tmp_path)
        assert not _exclusive_free(tmp_path)  # the outer guard still holds it
    assert _exclusive_free(tmp_path)


def test_nested_guard_of_another_repository_takes_that_lock(tmp_path: Path) -> None:
    """A put into B inside a put into A (a transfer, a chain) must hold B's lock too."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with writer_guard(str(a)):
        with writer_guard(str(b)):
            assert not _exclusive_free(b)
        assert _exclusive_free(b)
        assert not _exclusive_free(a)
    assert _exclusive_free(a)


def test_the_same_folder_by_another_name_is_one_repository(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "r")
    with writer_guard(str(tmp_path / "r")) as g1:
        with writer_guard(str(tmp_path / "link")) as g2:  # reentrant: no second lock
            assert g1 == g2


def test_sweep_bumps_the_generation_seen_by_the_next_put(tmp_path: Path) -> None:
    with writer_guard(str(tmp_path)) as before:
        pass
    with sweep_guard(str(tmp_path), bump=True):
        pass
    with writer_guard(str(tmp_path)) as after:
        assert after != before


def test_the_guard_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with writer_guard(str(tmp_path)):
            raise RuntimeError("boom")
    assert _exclusive_free(tmp_path)
    with writer_guard(str(tmp_path)):
        assert not _exclusive_free(tmp_path)

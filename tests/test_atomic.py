"""compstore._atomic: a write that raises or is killed mid-way leaves the old file or nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compstore import _atomic
from compstore._atomic import partial_name, replace_atomically, write_atomic
from compstore.cas import _atomic as cas_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_cas_uses_the_one_helper() -> None:
    assert cas_atomic.write_atomic is _atomic.write_atomic
    assert cas_atomic.partial_name is _atomic.partial_name
    assert cas_atomic.fsync_dir is _atomic.fsync_dir


@pytest.mark.parametrize("fsync", [False, True])
@pytest.mark.parametrize("partial", [None, "fixed"])
def test_write_atomic_replaces(tmp_path: Path, fsync: bool, partial: str | None) -> None:
    target = tmp_path / "f"
    fixed = None if partial is None else str(target) + ".partial"
    write_atomic(target, b"old", fsync=fsync, sync_dir=fsync, partial=fixed)
    write_atomic(str(target), b"new", fsync=fsync, sync_dir=fsync, partial=fixed)
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_a_fixed_partial_left_by_a_killed_writer_is_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    (tmp_path / "config.json.partial").write_bytes(b"half")
    write_atomic(target, b"whole", partial=str(target) + ".partial")
    assert target.read_bytes() == b"whole" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("old", [b"old", None])
def test_a_raising_write_leaves_the_old_file_or_nothing(
    tmp_path: Path, exc: type[BaseException], old: bytes | None
) -> None:
    target = tmp_path / "f"
    if old is not None:
        target.write_bytes(old)
    with pytest.raises(exc), replace_atomically(target, fsync=True) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half of the ")
        raise exc
    assert (target.read_bytes() if target.exists() else None) == old
    assert _leftovers(tmp_path) == []


def test_a_failing_rename_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()
    (target / "x").write_bytes(b"")  # os.replace of a file onto a non-empty folder fails
    with pytest.raises(OSError):
        write_atomic(target, b"data")
    assert target.is_dir() and _leftovers(tmp_path) == []


def test_partial_names_are_unique_and_swept_by_their_pattern(tmp_path: Path) -> None:
    from compstore.cas._sweep import _PARTIAL

    names = {partial_name(str(tmp_path / "f")) for _ in range(100)}
    assert len(names) == 100
    assert all(_PARTIAL.search(name) for name in names)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("old", [b"old content", None])
def test_a_writer_killed_mid_write_leaves_the_old_file_or_nothing(
    tmp_path: Path, old: bytes | None
) -> None:
    target = tmp_path / "f"
    if old is not None:
        target.write_bytes(old)
    code = f"""
        import os, signal
        from compstore._atomic import replace_atomically
        with replace_atomically({str(target)!r}, fsync=True) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x" * 100_000)
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (target.read_bytes() if target.exists() else None) == old
    # The killed writer's temporary stays (gc sweeps it); the final name never holds it.
    assert len(_leftovers(tmp_path)) == 1


def test_a_fits_write_that_fails_mid_way_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from astropy.io import fits

    from compstore import Exposure

    path = tmp_path / "exp.fits"
    old = Exposure(np.ones((4, 5), dtype=np.float32))
    old.write_fits(path)
    before = path.read_bytes()

    def half(self: fits.HDUList, name: str, **kwargs: object) -> None:
        Path(name).write_bytes(before[: len(before) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", half)
    with pytest.raises(OSError, match="disk full"):
        Exposure(np.zeros((4, 5), dtype=np.float32)).write_fits(path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []

"""Writers' leftovers: staging folders and orphan packs are cleaned, a live writer's never; one copy per digest."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np

from compstore.cas import LocalBlobStore, digest_bytes


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def _sessions(root: pathlib.Path) -> list[str]:
    return sorted(p.name for p in (root / "staging").iterdir())


def _pack_members(root: pathlib.Path) -> list[str]:
    names: list[str] = []
    for pack in sorted((root / "packs").glob("*/*.zip")):
        with zipfile.ZipFile(pack) as z:
            names += z.namelist()
    return names


def test_a_writer_that_exits_without_close_leaves_no_staging_folder(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "blobs"
    done = _run(
        f"""
        from compstore.cas import LocalBlobStore
        store = LocalBlobStore({str(root)!r}, packs=True)
        store.put_document(b"[1]")
        store.sync()
        print(len(list(store.iter_documents())))
        """
    )
    assert done.returncode == 0, done.stderr
    assert _sessions(root) == []


def test_a_dead_writers_folder_and_orphan_pack_are_swept_by_the_next_writer(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "blobs"
    LocalBlobStore(root, packs=True).close()
    # A writer killed between renaming its pack into place and indexing it.
    killed = _run(
        f"""
        import os, signal
        from compstore.cas import LocalBlobStore
        store = LocalBlobStore({str(root)!r}, packs=True)
        store.put_document(b"[1]")
        store._index.add = lambda rows: os.kill(os.getpid(), signal.SIGKILL)
        store.sync()
        """
    )
    assert killed.returncode == -signal.SIGKILL
    [dead] = _sessions(root)
    assert len(list((root / "packs").glob("*/*.zip"))) == 1  # an orphan: no row names it
    live = LocalBlobStore(root, packs=True)
    live.put_document(b"[2]")
    live.sync()  # its first write to disk (the pack) sweeps
    assert dead not in _sessions(root) and len(_sessions(root)) == 1
    assert _pack_members(root) == [f"documents/{digest_bytes(b'[2]')}.json"]
    assert sorted(live.iter_documents()) == [digest_bytes(b"[2]")]
    live.close()
    assert _sessions(root) == []


def test_a_live_writers_folder_is_never_swept(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "blobs"
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from compstore.cas import LocalBlobStore
                store = LocalBlobStore({str(root)!r}, packs=True)
                store.put_array(__import__("numpy").zeros(300000, "<f8"))  # staged: a folder
                print("ready", flush=True)
                sys.stdin.readline()
                store.sync()
                print(len(list(store.iter_arrays())), flush=True)
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "ready"
        [theirs] = _sessions(root)
        mine = LocalBlobStore(root, packs=True)
        assert mine.sweep_leftovers() == (0, 0)
        mine.put_document(b"[3]")
        mine.sync()
        assert theirs in _sessions(root) and len(_sessions(root)) == 2
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "1"  # its staged array was still there
    finally:
        other.wait(timeout=60)
    mine.close()
    assert _sessions(root) == []


def test_two_writers_of_one_component_store_it_once(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "blobs"
    one, two = LocalBlobStore(root, packs=True), LocalBlobStore(root, packs=True)
    shared = np.arange(50, dtype="<i4")
    for store in (one, two):  # both before either syncs: both keep it for their pack
        store.put_array(shared)
        store.put_document(f"own {id(store)}".encode())
    one.sync()
    two.sync()
    members = _pack_members(root)
    assert len(members) == len(set(members)) == 4  # zarr.json + data once, two documents


def test_a_component_indexed_during_a_pack_write_is_not_kept_twice(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "blobs"
    one, two = LocalBlobStore(root, packs=True), LocalBlobStore(root, packs=True)
    for store in (one, two):
        store.put_document(b"shared")
    two.put_document(b"only two")
    assert two._index is not None
    real = two._index.existing
    calls = []

    def late(digests):  # two looked before one indexed: it writes a pack holding both
        calls.append(1)
        if len(calls) == 1:
            one.sync()
            return {}
        return real(digests)

    two._index.existing = late  # type: ignore[method-assign]
    two.sync()
    members = _pack_members(root)
    assert sorted(members) == sorted(
        f"documents/{digest_bytes(d)}.json" for d in (b"shared", b"only two")
    )
    assert len(list((root / "packs").glob("*/*.zip"))) == 2  # the first pack of two removed
    fresh = LocalBlobStore(root, packs=True)
    assert fresh.get_document(digest_bytes(b"only two")) == b"only two"
    assert fresh.get_document(digest_bytes(b"shared")) == b"shared"
    assert os.path.isdir(root / "staging")

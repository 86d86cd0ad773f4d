"""The garbage-collection lock: puts in flight hold it shared, a gc sweep holds it exclusive.

A put decides which components it needs to write by asking whether they are
stored already (deduplication), and only commits the registry row that
makes them referenced later. A gc that marked the live components before that
commit would see them as garbage. So (``docs/format.md``, "Garbage
collection"):

- a put holds a *shared* ``flock`` on ``blobs/gc.lock`` from before its first
  existence check until its registry row is committed (`writer_guard`);
- gc's sweep holds it *exclusive* (`sweep_guard`): no put is in flight, so
  every component a put reused or wrote is named by a committed row, which
  gc reads again under the lock before it deletes anything.

Linux ``flock`` does not queue a waiting exclusive lock ahead of new shared
ones, so a steady stream of overlapping puts could starve gc. A second file,
``blobs/gc.gate``, is the queue: a put takes it shared only for the moment it
needs to take ``gc.lock``; gc takes it exclusive first (new puts wait at the
gate), then waits for the puts in flight to finish.

The *generation* is a counter in ``gc.lock`` that gc increments, under the
exclusive lock, before it deletes anything. A process that remembers digests
of objects it read earlier (the identity cache's reverse map) compares the
generation at each put and forgets them when it changed: a remembered digest
may name a component a sweep has deleted since.

Locks are per open file description, so every guard opens its own: two
threads of one process lock independently, as two processes do.

`GcLock` is what the garbage collector and the writers need of a gc lock;
`FolderGcLock` is this ``flock`` one, `compstore.cas._gclock_pg.PgGcLock` the
PostgreSQL one of a repository on object storage shared by hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

__all__ = [
    "GC_GATE",
    "GC_LOCK",
    "Execute",
    "FolderGcLock",
    "GcLock",
    "read_generation",
    "sweep_guard",
    "writer_guard",
]

#: Runs one statement inside the registry transaction about to commit (``Registry.execute_in_transaction``).
Execute = Callable[[str, Mapping[str, Any]], list[tuple[Any, ...]]]

GC_LOCK: Final = "gc.lock"
GC_GATE: Final = "gc.gate"

# Per thread: the repositories (by real path) whose lock a writer guard holds,
# and the generation the outermost guard read. A put nested in a put of the same
# repository takes no second lock; one of another repository (a transfer, a
# chain writing to its first member) takes that repository's own.
_held = threading.local()


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _generation(fd: int) -> bytes:
    return os.pread(fd, 64, 0)


def read_generation(root: str) -> bytes:
    """The generation recorded in ``<root>/gc.lock`` (``b""`` before the first sweep)."""
    try:
        with open(os.path.join(root, GC_LOCK), "rb") as f:
            return f.read(64)
    except FileNotFoundError:
        return b""


@contextlib.contextmanager
def writer_guard(root: str) -> Iterator[bytes]:
    """Hold ``<root>/gc.lock`` shared for the block (a put in flight); yield the generation.

    Reentrant within a thread for one repository: a put nested in a put of the
    same repository (however its folder is named) does not take it again (it
    would deadlock behind a gc waiting at the gate); a put into another
    repository nested inside takes that repository's lock.

    Raises
    ------
    OSError
        If the lock files cannot be created or locked.
    """
    key = os.path.realpath(root)
    held: dict[str, bytes] | None = getattr(_held, "roots", None)
    if held is None:
        held = _held.roots = {}
    if key in held:  # the outer guard of this repository holds the lock until it exits
        yield held[key]
        return
    gate = _open(os.path.join(root, GC_GATE))
    try:
        fcntl.flock(gate, fcntl.LOCK_SH)
        fd = _open(os.path.join(root, GC_LOCK))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.close(gate)  # past the gate: a gc waiting there waits for this put now
    try:
        generation = _generation(fd)
        held[key] = generation
        try:
            yield generation
        finally:
            del held[key]
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def sweep_guard(root: str, *, bump: bool) -> Iterator[None]:
    """Hold ``<root>/gc.lock`` exclusive for the block (no put in flight); new puts wait.

    With ``bump``, the generation is incremented (and, being written before
    anything is deleted, seen by every later put) on entry.

    Raises
    ------
    OSError
        If the lock files cannot be created, locked or written.
    """
    gate = _open(os.path.join(root, GC_GATE))
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fd = _open(os.path.join(root, GC_LOCK))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if bump:
                raw = _generation(fd)
                try:
                    current = int(raw.decode("ascii").strip() or 0)
                except (UnicodeDecodeError, ValueError):
                    current = 0  # damaged: any new value differs from what puts saw
                # Fixed width, one pwrite, no truncate: never an empty (initial) value.
                os.pwrite(fd, f"{current + 1:020d}\n".encode("ascii"), 0)
            yield
        finally:
            os.close(fd)
    finally:
        os.close(gate)


class GcLock(Protocol):
    """What gc and the writers of one repository need of its gc lock (see the module docstring)."""

    @property
    def key(self) -> str:
        """Names the lock (and its generation) among the repositories a process uses."""

    def writer(self) -> AbstractContextManager[bytes]:
        """Hold the lock shared (a put in flight, reentrant per thread); yield the generation."""

    def confirm(self, generation: bytes, execute: Execute) -> None:
        """Check, last in the put's registry transaction, that the lock held since ``generation``."""

    def sweep(self, *, bump: bool) -> AbstractContextManager[Callable[[], None]]:
        """Hold the lock exclusive (new writers wait); yield a check that it is still held."""

    def read_generation(self) -> bytes:
        """The generation, read without the lock."""


def _held_still() -> None:
    """An ``flock`` is held as long as its file is open: nothing to check."""


class FolderGcLock:
    """The ``flock`` gc lock in a local folder (`writer_guard`, `sweep_guard`), as a `GcLock`."""

    def __init__(self, root: str) -> None:
        self.root = root

    @property
    def key(self) -> str:
        return self.root

    def writer(self) -> AbstractContextManager[bytes]:
        return writer_guard(self.root)

    def confirm(self, generation: bytes, execute: Execute) -> None:
        """Nothing to check: an ``flock`` is held until the writer lets it go."""

    @contextlib.contextmanager
    def sweep(self, *, bump: bool) -> Iterator[Callable[[], None]]:
        with sweep_guard(self.root, bump=bump):
            yield _held_still

    def read_generation(self) -> bytes:
        return read_generation(self.root)

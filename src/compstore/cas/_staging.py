"""Writers' staging folders and the pack lock: what belongs to a live writer, and what is garbage.

Each `LocalBlobStore` that writes owns one folder ``staging/<pid>-<random>/``
and holds an exclusive ``flock`` on that folder (on the directory itself)
for as long as it lives: the kernel drops the lock when the process dies,
however it dies. So a folder whose lock can be taken belongs to no live
writer, and whoever takes the lock may remove it (`sweep_staging`). The lock
is taken before the folder gets its final name (it is made as
``.new-<pid>-<random>`` and renamed), so no cleaner ever sees an unlocked
folder of a live writer.

A folder is removed only if its lock can be taken *and* its pid is not alive
on this host: the pid check keeps the folders of writers that do not lock
(compstore before this rule), at the price of keeping a dead writer's folder
while its pid is reused. A ``.new-`` folder (its writer died before renaming
it) is removed when its pid is not alive.

Packs: a writer renames its pack into ``packs/`` and then indexes it. Both
that check-and-index step and the removal of packs no index row names
(`LocalBlobStore.sweep_leftovers`) run under an exclusive ``flock`` of
``blobs/packs.lock`` (`pack_lock`), so a sweeper never removes a pack that a
writer is about to index: the writer checks under the lock that its pack is
still there (and writes it again if not) before committing its rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["SessionFolder", "StagingSweep", "pack_lock", "pid_alive", "sweep_staging"]

_SESSION: Final = re.compile(r"([0-9]+)-[0-9a-f]{12}")
_NEW: Final = re.compile(r"\.new-([0-9]+)-[0-9a-f]{12}")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class SessionFolder:
    """One writer's staging folder, locked (``flock``) until :meth:`remove` or process exit."""

    def __init__(self, staging_dir: str) -> None:
        token = f"{os.getpid()}-{secrets.token_hex(6)}"
        new = os.path.join(staging_dir, f".new-{token}")
        os.mkdir(new)
        fd = -1
        try:
            fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else has it
            self.path = os.path.join(staging_dir, token)
            os.rename(new, self.path)  # the lock follows the folder: it is on its inode
        except BaseException:
            if fd >= 0:
                os.close(fd)
            shutil.rmtree(new, ignore_errors=True)
            raise
        self._fd = fd
        self._pid = os.getpid()

    def remove(self) -> None:
        """Remove the folder and everything in it, then let go of the lock (idempotent).

        Does nothing in a forked child: the folder is its parent's.
        """
        if self._fd < 0 or os.getpid() != self._pid:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = -1


@dataclass
class StagingSweep:
    """What `sweep_staging` found: folders removed, and whether an unlocked live writer exists."""

    removed: int = 0
    unlocked_live: bool = False


def sweep_staging(staging_dir: str, own: str | None) -> StagingSweep:
    """Remove the staging folders of writers that are gone (``own`` is never touched).

    A locked folder is removed only by whoever takes its lock (then no live
    writer holds it); an unlocked one (older compstore, or a ``.new-``
    folder) only if its pid is dead here. ``unlocked_live`` tells the caller
    that a writer that does not take the pack lock may be running.
    """
    found = StagingSweep()
    try:
        entries = list(os.scandir(staging_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.path == own:
            continue
        locked, new = _SESSION.fullmatch(entry.name), _NEW.fullmatch(entry.name)
        if new is not None:
            if pid_alive(int(new.group(1))):
                found.unlocked_live = True
            else:
                shutil.rmtree(entry.path, ignore_errors=True)
                found.removed += 1
            continue
        if locked is None:
            continue  # not a writer's folder: not ours to judge
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed meanwhile by another sweeper
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live writer's
            continue
        try:
            if pid_alive(int(locked.group(1))):
                # Unlocked yet its pid runs: a compstore that does not lock its folder
                # (or a reused pid). Kept: it may be a live writer.
                found.unlocked_live = True
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            found.removed += 1
        finally:
            os.close(fd)
    return found


@contextlib.contextmanager
def pack_lock(path: str) -> Iterator[None]:
    """Hold the exclusive lock of ``packs.lock`` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock

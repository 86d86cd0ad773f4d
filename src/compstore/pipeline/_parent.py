"""Worker processes die with their parent: a killed ``compstore run`` leaves nothing writing.

A worker of the process pool blocks on the pool's queue, and a parent killed
with SIGKILL never tells it to stop: it would finish its unit and the ones
already queued, writing datasets nobody waits for. So each worker, as it
starts, asks Linux to SIGKILL it when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and also runs a watchdog thread that kills it
once its parent pid changes (the portable fallback, within `WATCH_SECONDS`).
A worker killed mid-put is no worse than any killed writer: the put's order
(components, manifest, registry row) leaves no half-visible dataset.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Final

__all__ = ["WATCH_SECONDS", "die_with_parent"]

WATCH_SECONDS: Final = 0.2
"""How often the watchdog thread looks at the parent pid."""

_PR_SET_PDEATHSIG: Final = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process die (SIGKILL) when ``parent_pid``, its parent, dies.

    Called first thing in a pool worker (the pool's ``initializer``).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still stops it
    _kill_if_orphaned(parent_pid)  # the parent may have died before prctl
    threading.Thread(
        target=_watch, args=(parent_pid,), name="compstore-parent-watch", daemon=True
    ).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        _kill_if_orphaned(parent_pid)


def _kill_if_orphaned(parent_pid: int) -> None:
    if os.getppid() != parent_pid:
        # SIGKILL, not sys.exit: no atexit work, no unit finished for a dead run.
        os.kill(os.getpid(), signal.SIGKILL)

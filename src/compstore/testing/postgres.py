"""A throw-away PostgreSQL server on loopback, for tests and benchmarks.

``PostgresServer(folder).start()`` runs ``initdb`` and ``pg_ctl`` on a new data
folder and listens on a free port of 127.0.0.1 with ``trust`` authentication;
:meth:`PostgresServer.new_database` returns the URL of a new, empty database
(one per test). The binaries come from the ``pgserver`` wheel (a pip-installed
PostgreSQL, so a fresh machine needs no system package and no root) or, failing
that, from a system PostgreSQL (``/usr/lib/postgresql/*/bin``, Debian's
``postgresql`` package). PostgreSQL refuses to run as root: as root the server
runs as the user ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_postgres_bin"]


def find_postgres_bin() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, or None if none is installed.

    ``$COMPSTORE_PG_BIN`` first, then the ``pgserver`` wheel, then the newest
    ``/usr/lib/postgresql/*/bin``, then ``initdb`` on ``$PATH``.
    """
    candidates: list[Path] = []
    if os.environ.get("COMPSTORE_PG_BIN"):
        candidates.append(Path(os.environ["COMPSTORE_PG_BIN"]))
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server of its own in ``folder`` (created), on 127.0.0.1.

    Parameters
    ----------
    folder : `str` or `os.PathLike`, optional
        Where the data folder goes; a new temporary folder if omitted.
    durable : `bool`, optional
        With False (tests), ``fsync=off``: a commit does not wait for the disk.
        Benchmarks keep the default (True), PostgreSQL's own settings.

    Raises
    ------
    RuntimeError
        From :meth:`start`, if no PostgreSQL is installed or it does not start.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, durable: bool = True) -> None:
        self._own_folder = folder is None
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="compstore-pg-"))
        self.durable = durable
        self.port = 0
        self.user = "postgres"
        self._bin: Path | None = None
        self._names = itertools.count()
        self._running = False

    # -- running as a non-root user ----------------------------------------------
    def _run(self, exe: str, *args: str) -> None:
        assert self._bin is not None
        # PostgreSQL refuses to run as root: drop to `nobody` then.
        root = os.geteuid() == 0
        done = subprocess.run(
            [str(self._bin / exe), *args], capture_output=True, text=True, cwd="/",
            user="nobody" if root else None,
            group=("nogroup" if _has_group("nogroup") else "nobody") if root else None,
        )
        if done.returncode:
            raise RuntimeError(f"{exe} {' '.join(args)} failed: {done.stderr or done.stdout}")

    def start(self) -> PostgresServer:
        """Create the data folder, start the server and wait until it accepts connections."""
        self._bin = find_postgres_bin()
        if self._bin is None:
            raise RuntimeError(
                "no PostgreSQL found: `pip install pgserver` (or `apt-get install postgresql`)"
            )
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # The server's user must reach the binaries and own its folder.
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, "nobody")
            if not _world_reachable(self._bin):
                # A venv under a folder only root may enter (a CI clone in /root):
                # the server runs a copy of the installation inside its own folder.
                # Two levels up: the wheel's binaries find their libraries at
                # $ORIGIN/../../../pgserver.libs, a sibling of the package.
                top = self._bin.parent.parent
                copy = self.folder / "install"
                shutil.copytree(top, copy / top.name, symlinks=True)
                libs = top.parent / "pgserver.libs"
                if libs.is_dir():
                    shutil.copytree(libs, copy / libs.name, symlinks=True)
                self._bin = copy / top.name / self._bin.parent.name / self._bin.name
        self._run("initdb", "-D", str(data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self.port = _free_port()
        options = [
            "-c listen_addresses=127.0.0.1", f"-p {self.port}",
            f"-c unix_socket_directories={data}", "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "log"), "-w", "-t", "60",
                  "-o", " ".join(options), "start")
        self._running = True
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server (no password: trust authentication)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create a new, empty database and return its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove a folder this object made."""
        if self._running:
            self._running = False
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _world_reachable(folder: Path) -> bool:
    """Whether any user may enter ``folder`` and every folder above it."""
    import stat

    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [folder, *folder.parents])


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True

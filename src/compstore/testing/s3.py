"""A throw-away S3-compatible server on loopback, for tests and benchmarks.

``S3Server().start()`` serves moto's S3 (``moto[server]``: a real HTTP server
speaking the S3 protocol, not a mock of a client) on a free port of
127.0.0.1 in a thread of this process; :meth:`S3Server.new_bucket` creates an
empty bucket. Every request is counted (:attr:`S3Server.requests`: method,
path, query, and the bytes of each request and response body), so tests can
say what an operation costs on the wire.

Credentials are not checked by moto; :meth:`S3Server.store_options` returns
the endpoint and dummy keys a client needs.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.request import Request, urlopen

__all__ = ["S3Request", "S3Server"]


@dataclass(frozen=True)
class S3Request:
    """One request the server answered.

    Attributes
    ----------
    method
        ``GET``, ``PUT``, ``HEAD``, ``DELETE``, ``POST``.
    path
        The URL path: ``/<bucket>/<key>``.
    query
        The query string (``list-type=2&prefix=...`` for a listing).
    range
        The ``Range`` header of a GET (``bytes=0-99``), or ``""``.
    sent
        Bytes of the response body.
    received
        Bytes of the request body (``Content-Length``).
    """

    method: str
    path: str
    query: str
    range: str
    sent: int
    received: int


class _Counting:
    """WSGI middleware recording each request as an `S3Request`."""

    def __init__(self, app: Any, log: list[S3Request], lock: threading.Lock) -> None:
        self._app = app
        self._log = log
        self._lock = lock

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = self._app(environ, start_response)
        chunks = list(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        request = S3Request(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_RANGE", ""),
            sum(len(c) for c in chunks),
            int(environ.get("CONTENT_LENGTH") or 0),
        )
        with self._lock:
            self._log.append(request)
        return chunks


class S3Server:
    """moto's S3 server in a thread of this process, on ``127.0.0.1`` and a free port."""

    def __init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log: list[S3Request] = []
        self._names = itertools.count()

    def start(self) -> S3Server:
        """Start serving; returns ``self``.

        Raises
        ------
        ImportError
            If ``moto[server]`` is not installed.
        """
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = _Counting(DomainDispatcherApplication(create_backend_app), self._log, self._lock)
        # Port 0: the kernel picks a free port, with no race against other processes.
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (everything stored is lost)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("the S3 server is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def new_bucket(self, name: str | None = None) -> str:
        """Create a new, empty bucket (named ``name``, else a new name) and return its name."""
        # (moto keeps buckets per process, not per server: names are unique per process)
        name = name or f"compstore-test-{next(self._names)}-{uuid.uuid4().hex[:8]}"
        with urlopen(Request(f"{self.endpoint}/{name}", method="PUT")) as response:
            response.read()
        return name

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments of `compstore.cas.S3BlobStore` for a bucket of this server."""
        return {
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
        }

    def environment(self) -> dict[str, str]:
        """The standard ``AWS_*`` variables that point a client at this server.

        How a repository on object storage (``s3://``) finds its endpoint and
        credentials: set them in ``os.environ`` (``monkeypatch.setenv`` in a test).
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    @property
    def requests(self) -> list[S3Request]:
        """Every request answered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self._log.clear()

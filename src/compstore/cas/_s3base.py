"""The object access of `S3BlobStore`: a client, errors mapped, reading ahead, the local cache.

`S3Base` holds what every part of the store shares: the obstore client and
the GET/HEAD/PUT/LIST/DELETE calls with their errors mapped to
`BlobStoreError`, the local read-through cache (`compstore.cas._objcache`),
and `prefetch`, which fetches the objects a reader will need next in
parallel. Every read of an object goes through `S3Base._get_object`, which
the pack layer (`compstore.cas._s3packs`) overrides to serve packed
components from their pack. The store itself is `compstore.cas._s3`.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from compstore.cas._digest import XXH3_128, DigestAlgorithm, is_digest
from compstore.cas._gclock import FolderGcLock, GcLock
from compstore.cas._objcache import ObjectCache
from compstore.cas._pack import PackedMember, PackIndex
from compstore.cas._pack_pg import PgPackIndex
from compstore.cas._packwrite import Pending
from compstore.cas._store import ARRAYS_GROUP, BlobStore
from compstore.cas._sums import Sums
from compstore.cas._zarrfmt import ArrayMeta, chunk_key
from compstore.errors import BlobStoreError, CompstoreError

__all__ = ["DOCUMENTS", "TO_DO", "S3Base", "first_line"]

_AHEAD_BYTES: Final = 512 << 20  # what prefetch holds for the reads that follow, at most
_AHEAD_WORKERS: Final = 16  # concurrent GETs of one prefetch
DOCUMENTS: Final = "documents"
TO_DO: Final = "check the endpoint, bucket, prefix and credentials (AWS_* variables)"

#: Where packed components are indexed: an SQLite file, or a PostgreSQL database.
PackIndexLike = PackIndex | PgPackIndex

#: One task of a prefetch: fetches some objects, returns (key, bytes or None) for each.
AheadJob = Callable[[], list[tuple[str, "memoryview | None"]]]


class S3Base(BlobStore):
    """The object access shared by the parts of `S3BlobStore` (see there for the parameters)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        cache: str | os.PathLike[str] | None = None,
        cache_bytes: int = 1 << 30,
        pack_index: PackIndexLike | None = None,
        gc_lock: str | os.PathLike[str] | GcLock | None = None,
        digest_algorithm: DigestAlgorithm = XXH3_128,
        compare_on_hit: bool = False,
    ) -> None:
        self.digest_algorithm = digest_algorithm
        self._compare_on_hit = compare_on_hit
        try:
            import obstore
            from obstore.store import S3Store
        except ImportError as exc:
            raise BlobStoreError("S3BlobStore needs obstore: pip install 'compstore[s3]'") from exc
        self._obs: Any = obstore
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        config = {
            key: value
            for key, value in {
                "endpoint": endpoint,
                "region": region,
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
                "session_token": session_token,
            }.items()
            if value is not None
        }
        url = endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
        client_options = {"allow_http": True} if url.startswith("http://") else None
        try:
            self._client: Any = S3Store(
                bucket,
                prefix=self._prefix or None,
                config=config,  # type: ignore[arg-type]
                client_options=client_options,  # type: ignore[arg-type]
            )
        except Exception as exc:  # obstore raises its own errors for bad settings
            raise BlobStoreError(
                f"cannot open s3://{bucket}/{self._prefix}: {first_line(exc)}"
            ) from exc
        self._lock = threading.Lock()
        self._meta: dict[str, ArrayMeta] = {}
        self._sums: dict[str, Sums | None] = {}
        self._tails: dict[str, tuple[bytes, int]] = {}
        self._groups: set[str] = set()
        self._ahead: dict[str, memoryview] = {}  # key -> bytes fetched by prefetch, read once
        self._ahead_bytes = 0
        self._direct = threading.local()  # .on: read from the server only (verify)
        self._cache = ObjectCache(cache, cache_bytes) if cache is not None else None
        # Packs (compstore.cas._s3packs): small components wait here for `sync`.
        self._index = pack_index
        self._pending: dict[str, Pending] = {}
        self._pending_bytes = 0
        self._located: dict[str, PackedMember | None] = {}  # digest -> place (None: unpacked)
        self._pack_lock = threading.Lock()  # one pack written at a time
        #: The gc lock of this store's repository (None: no gc), and its local folder
        #: if it is an ``flock`` one (None otherwise).
        self.gc_lock_folder: str | None = None
        self.gc_lock: GcLock | None = None
        if isinstance(gc_lock, (str, os.PathLike)):
            self.gc_lock_folder = os.fspath(gc_lock)
            self.gc_lock = FolderGcLock(self.gc_lock_folder)
        elif gc_lock is not None:
            self.gc_lock = gc_lock

    @property
    def url(self) -> str:
        """``s3://<bucket>/<prefix>``."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def durable(self) -> bool:
        """True: an object is stored durably once its PUT has returned."""
        return True

    @property
    def location(self) -> str:
        """The store's `url`."""
        return self.url

    @property
    def compare_on_hit(self) -> bool:
        """As `BlobStore.compare_on_hit`: whether the store was opened with ``compare_on_hit=True``."""
        return self._compare_on_hit

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"


    # -- objects beside the layout (a repository's config) -----------------------
    def read_object(self, key: str) -> bytes | None:
        """The bytes of the object ``key`` under the prefix (not cached); None if absent.

        For objects of fixed names beside the store's own (a repository's
        config); never a name from user input.

        Raises
        ------
        BlobStoreError
            If the bucket cannot be read.
        """
        return self._fetch(key, key)

    def create_object(self, key: str, data: bytes) -> bool:
        """Write the object ``key`` under the prefix only if it is absent; False if it was there.

        Raises
        ------
        BlobStoreError
            If the bucket cannot be written.
        """
        return self._put(key, data, key, create=True)

    def read_tagged_object(self, key: str) -> tuple[bytes, str | None] | None:
        """The bytes of the object ``key`` (as `read_object`) and its ETag; None if absent.

        The ETag is what `replace_object` is given, to replace this version
        and no other (None if the server sent none).

        Raises
        ------
        BlobStoreError
            If the bucket cannot be read.
        """
        meta: dict[str, Any] = {}

        def get(name: str) -> Any:
            got = self._obs.get(self._client, name)
            meta.update(got.meta)
            return got.bytes()

        data = self._fetch(key, key, get)
        return None if data is None else (data, meta.get("e_tag"))

    def replace_object(self, key: str, data: bytes, e_tag: str) -> bool:
        """Overwrite the object ``key`` only if it is still the version ``e_tag``; False if not.

        One conditional PUT (``If-Match``): atomic, and refused (412) when
        another writer replaced or deleted the object since it was read.

        Raises
        ------
        BlobStoreError
            If the bucket cannot be written.
        """
        return self._put(key, data, key, create=False, e_tag=e_tag)

    def is_empty(self) -> bool:
        """Whether no object exists under the prefix.

        Raises
        ------
        BlobStoreError
            If the bucket cannot be listed.
        """
        for _ in self._list("", "objects"):
            return False
        return True

    def _meta_of(self, digest: str) -> ArrayMeta:
        """The array's parsed ``zarr.json`` (`S3BlobStore`)."""
        raise NotImplementedError

    # -- reading ahead ----------------------------------------------------------
    def prefetch(self, documents: Iterable[str] = (), arrays: Iterable[str] = ()) -> None:
        """Fetch these components concurrently, for the reads that follow.

        A read of an exposure meets ten or so components: one after the other,
        each is a round trip to the server. Given them at once (the manifest
        names them), this issues the GETs in parallel -- ``zarr.json`` of
        arrays not yet known first, then documents and whole data files -- and
        keeps the bytes for `get_document`/`get_array` to take (once), which
        check them as they check what they fetch; at most 512 MiB are held,
        the oldest dropped first (what a failed read left is not kept long).
        What is in the local cache is not fetched. Best effort: a failed GET
        is left for the read itself to meet and report.
        """
        self._prefetch(list(documents), list(arrays), [])

    def _prefetch(self, documents: list[str], arrays: list[str], also: list[str]) -> None:
        """`prefetch`, with the keys ``also`` fetched in its first round."""
        local = self._cache

        def cached(key: str) -> bool:
            return local is not None and local.path(key) is not None

        arrays = [a for a in arrays if is_digest(a)]

        def data_keys(digests: list[str]) -> list[str]:
            keys = []
            for digest in digests:
                try:
                    meta = self._meta_of(digest)
                except CompstoreError:
                    continue  # the read reports it
                if math.prod(meta.shape):
                    keys.append(self._data_key(digest, meta))
            return keys

        # One round: documents, the zarr.json of arrays not known yet, and the data
        # files of those known; a second only for the data files of the others.
        unknown = [a for a in arrays if a not in self._meta]
        first = also + [self._document_key(d) for d in documents if is_digest(d)]
        first += [self._array_key(a, "zarr.json") for a in unknown]
        first += data_keys([a for a in arrays if a in self._meta])
        self._fetch_ahead([k for k in first if not cached(k)])
        self._fetch_ahead([k for k in data_keys(unknown) if not cached(k)])

    def _fetch_ahead(self, keys: list[str]) -> None:
        keys = [k for k in dict.fromkeys(keys) if k not in self._ahead]
        if not keys:
            return
        jobs = self._ahead_jobs(keys)
        if len(jobs) == 1:
            got = jobs[0]()
        else:
            with ThreadPoolExecutor(min(_AHEAD_WORKERS, len(jobs))) as pool:
                got = [pair for done in pool.map(lambda job: job(), jobs) for pair in done]
        with self._lock:
            for key, data in got:
                if data is None or len(data) > _AHEAD_BYTES:
                    continue
                self._ahead[key] = data
                self._ahead_bytes += len(data)
                while self._ahead_bytes > _AHEAD_BYTES:  # the oldest go first
                    self._ahead_bytes -= len(self._ahead.pop(next(iter(self._ahead))))

    def _ahead_jobs(self, keys: list[str]) -> list[AheadJob]:
        """The requests fetching ``keys``: one GET each (packs: one per pack)."""

        def one(key: str) -> list[tuple[str, memoryview | None]]:
            try:
                return [(key, self._get_object(key))]
            except Exception:  # noqa: BLE001 - the read that follows meets and reports it
                return [(key, None)]

        return [functools.partial(one, key) for key in keys]

    def _get_object(self, key: str) -> memoryview:
        """GET the object ``key``: every read of an object of the layout comes here.

        obstore's Bytes is a buffer: a view, not a copy. Raises obstore's
        errors (`FileNotFoundError` if it does not exist).
        """
        return memoryview(self._obs.get(self._client, key).bytes())

    def _take_ahead(self, key: str) -> memoryview | None:
        """The bytes prefetch fetched for ``key``, handed over once; None if none."""
        if not self._ahead:
            return None
        with self._lock:
            data = self._ahead.pop(key, None)
            if data is not None:
                self._ahead_bytes -= len(data)
        return data

    def _get(self, key: str, what: str) -> bytes | None:
        """The object ``key``'s bytes (from the cache if there); None if it does not exist."""
        if getattr(self._direct, "on", False):
            return self._fetch(key, what)
        ahead = self._take_ahead(key)
        if ahead is not None:
            if self._cache is not None:
                self._cache.put(key, ahead)
            return bytes(ahead)
        if self._cache is not None:
            data = self._cache.get(key)
            if data is not None:
                return data
        data = self._fetch(key, what)
        if data is not None and self._cache is not None:
            self._cache.put(key, data)
        return data

    def _fetch(self, key: str, what: str, get: Callable[[str], Any] | None = None) -> bytes | None:
        """GET the object ``key`` (by ``get``: `_get_object`); None if it does not exist (the bucket does)."""
        try:
            return bytes((get or self._get_object)(key))
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise BlobStoreError(
                    f"cannot read {what} from {self.url}: {first_line(exc)}; {TO_DO}"
                ) from exc
            return None
        except CompstoreError:
            raise  # already says what is wrong (a packed member's pack missing: corruption)
        except Exception as exc:
            raise BlobStoreError(
                f"cannot read {what} from {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc

    def _head(self, key: str, what: str) -> int | None:
        """The object ``key``'s size; None if it does not exist."""
        try:
            return int(self._obs.head(self._client, key)["size"])
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise BlobStoreError(
                f"cannot look up {what} in {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc

    def _put(self, key: str, data: bytes, what: str, create: bool, e_tag: str | None = None) -> bool:
        """Write ``key``; with ``create``, only if absent. Returns False if it was there.

        With ``e_tag``, only if it is that version (False if it is another, or absent).
        """
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        mode: Any = "create" if create else "overwrite"
        if e_tag is not None:
            mode = {"e_tag": e_tag}
        try:
            self._obs.put(self._client, key, data, mode=mode)
        except (AlreadyExistsError, PreconditionError):
            return False
        except FileNotFoundError as exc:
            if e_tag is not None and "NoSuchBucket" not in str(exc):
                return False  # deleted since it was read
            raise BlobStoreError(
                f"cannot write {what} to {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc
        except Exception as exc:
            raise BlobStoreError(
                f"cannot write {what} to {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc
        return True

    def _list(self, prefix: str, what: str) -> Iterator[dict[str, Any]]:
        try:
            for batch in self._obs.list(self._client, prefix, chunk_size=1000):
                yield from batch
        except FileNotFoundError:
            return
        except Exception as exc:
            raise BlobStoreError(
                f"cannot list {what} in {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc

    def _delete(self, keys: list[str], what: str) -> None:
        try:
            self._obs.delete(self._client, keys)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise BlobStoreError(
                f"cannot delete {what} from {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc

    @staticmethod
    def _array_key(digest: str, name: str) -> str:
        return f"{ARRAYS_GROUP}/{digest[:2]}/{digest}/{name}"

    def _data_key(self, digest: str, meta: ArrayMeta) -> str:
        """The key of the array's one data file."""
        return self._array_key(digest, chunk_key((0,) * len(meta.shape), meta.separator))

    @staticmethod
    def _document_key(digest: str) -> str:
        return f"{DOCUMENTS}/{digest[:2]}/{digest}.json"


def first_line(exc: BaseException) -> str:
    """What went wrong, without obstore's multi-line debug dump of the request."""
    return str(exc).split("\n", 1)[0]

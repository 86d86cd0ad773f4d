"""Format 3 on object storage: JCS documents, blake3, compare on a hit, upgrade from 2.3 (issues 15, 17).

Against the test session's S3 server (moto's, ``tests/conftest.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from compstore import Butler
from compstore.cas import BLAKE3, XXH3_128, S3BlobStore, canonical_json, jcs, parse_json
from compstore.cli import main
from compstore.errors import CorruptBlobError, RepositoryError, RepositoryExistsError
from compstore.testing.digests import COLLIDING
from compstore.testing.sky import make_exposure

pytest.importorskip("obstore")


def _top(url: str) -> S3BlobStore:
    bucket, prefix = url[len("s3://"):].split("/", 1)
    return S3BlobStore(bucket, prefix)


def _config(url: str) -> dict:
    return json.loads(_top(url).read_object("compstore.json"))


def _as_format_2_3(url: str, version: str = "2.3") -> None:
    """Make the new repository ``url`` a format 2.3 one (what `create` wrote before format 3)."""
    config = {k: v for k, v in _config(url).items() if k != "digest"}
    _top(url)._put("compstore.json", json.dumps({**config, "version": version}).encode(),
                   "config", create=False)  # fmt: skip


def _put(url: str, visit: int = 1) -> Butler:
    b = Butler(url, run="sfm")
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.put(make_exposure(visit, 0, size=32, seed=visit), "calexp", visit=visit, detector=0)
    return b


def _documents(b: Butler) -> list[bytes]:
    return [b.blobs.get_document(d) for d in b.blobs.iter_documents()]


def _reads(url: str, visits: tuple[int, ...]) -> None:
    reader = Butler(url, collections="sfm")
    for visit in visits:
        got = reader.get("calexp", visit=visit, detector=0)
        np.testing.assert_array_equal(got.image, make_exposure(visit, 0, size=32, seed=visit).image)
    assert reader.verify(deep=True).ok


# -- create ----------------------------------------------------------------------------
def test_a_new_s3_repository_is_format_3_with_rfc_8785_documents(s3_url, tmp_path):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    config = _config(s3_url)
    assert (config["version"], config["digest"]) == ("3.0", "xxh3-128")
    b = _put(s3_url)
    assert b.blobs.digest_algorithm is XXH3_128 and b.blobs.compare_on_hit
    docs = _documents(b)
    assert docs and all(d == jcs(parse_json(d)) for d in docs)
    assert not any(b".0," in d or b".0}" in d for d in docs)  # the Wcs' floats: JCS, not repr
    _reads(s3_url, (1,))


def test_a_blake3_s3_repository_names_every_component_by_blake3(s3_url, tmp_path):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"), digest="blake3")
    assert _config(s3_url)["digest"] == "blake3"
    b = _put(s3_url)
    assert b.blobs.digest_algorithm is BLAKE3
    arrays, docs = list(b.blobs.iter_arrays()), list(b.blobs.iter_documents())
    assert arrays and docs
    for d in arrays:
        assert BLAKE3.digest_array(b.blobs.get_array(d)) == d != XXH3_128.digest_array(b.blobs.get_array(d))
    for d in docs:
        assert BLAKE3.digest_bytes(b.blobs.get_document(d)) == d
    _reads(s3_url, (1,))
    # A big array (its own objects, checked by ranged reads) too.
    big = np.arange(700 * 600, dtype="<f4").reshape(700, 600)
    digest, stored = b.blobs.put_new_array(big)
    assert stored and digest == BLAKE3.digest_array(big)
    np.testing.assert_array_equal(Butler(s3_url).blobs.get_array(digest, (slice(10, 20),)), big[10:20])
    Butler(s3_url).blobs.verify(digest)


def test_create_exist_ok_of_an_s3_repository_refuses_another_digest(s3_url, tmp_path):
    registry = str(tmp_path / "registry.sqlite3")
    Butler.create(s3_url, registry=registry, digest="blake3")
    assert Butler.create(s3_url, registry=registry, exist_ok=True).blobs.digest_algorithm is BLAKE3
    with pytest.raises(RepositoryExistsError, match="blake3, not xxh3-128"):
        Butler.create(s3_url, registry=registry, exist_ok=True, digest="xxh3-128")


def test_the_cli_creates_a_blake3_s3_repository(s3_url, tmp_path):
    registry = str(tmp_path / "registry.sqlite3")
    assert main(["--repo", s3_url, "create", "--registry", registry, "--digest", "blake3"]) == 0
    assert _config(s3_url)["digest"] == "blake3"


# -- a digest hit ---------------------------------------------------------------------
def _store(s3_server, bucket, tmp_path, *, packs, **options):  # type: ignore[no-untyped-def]
    from compstore.cas._pack import PackIndex

    tmp_path.mkdir(parents=True, exist_ok=True)
    index = PackIndex(str(tmp_path / "index.sqlite3"), fsync=False) if packs else None
    return S3BlobStore(bucket, "blobs", pack_index=index, **s3_server.store_options(), **options)


@pytest.mark.parametrize("packs", [False, True])
@pytest.mark.parametrize("size", [8, 1024])  # packed (or small objects), and a big array (4 MiB)
def test_a_colliding_array_is_refused_not_shared_on_s3(s3_server, s3_bucket, tmp_path, packs, size):
    first, other = np.zeros((size, size), dtype="<f4"), np.ones((size, size), dtype="<f4")
    store = _store(s3_server, s3_bucket, tmp_path, packs=packs, digest_algorithm=COLLIDING,
                   compare_on_hit=True)  # fmt: skip
    digest, stored = store.put_new_array(first)
    assert stored and store.put_new_array(first) == (digest, False)  # pending: compared too
    store.sync()
    assert store.put_new_array(first) == (digest, False)  # same bytes: shared
    for put in (lambda: store.put_new_array(other), lambda: store.put_array(other),
                lambda: store.put_array(other, digest=digest)):  # fmt: skip
        with pytest.raises(CorruptBlobError, match=f"array {digest} is stored with other content"):
            put()
    np.testing.assert_array_equal(store.get_array(digest), first)
    # Without the comparison (format 2.3) the collision silently shares the first array.
    trusting = _store(s3_server, s3_bucket, tmp_path, packs=packs, digest_algorithm=COLLIDING)
    assert trusting.put_new_array(other) == (digest, False)


@pytest.mark.parametrize("packs", [False, True])
@pytest.mark.parametrize("size", [10, 2 << 20])  # a small document, and one looked up first (HEAD)
def test_a_colliding_document_is_refused_not_shared_on_s3(s3_server, s3_bucket, tmp_path, packs, size):
    first, other = b"1" * size, b"2" * size
    store = _store(s3_server, s3_bucket, tmp_path, packs=packs, digest_algorithm=COLLIDING,
                   compare_on_hit=True)  # fmt: skip
    digest, _ = store.put_new_document(first)
    store.sync()
    assert store.put_new_document(first) == (digest, False)
    with pytest.raises(CorruptBlobError, match=f"document {digest} is stored with other content"):
        store.put_new_document(other)
    trusting = _store(s3_server, s3_bucket, tmp_path, packs=packs, digest_algorithm=COLLIDING)
    assert trusting.put_new_document(other) == (digest, False)


def test_a_put_over_an_object_planted_in_the_bucket_fails_even_with_a_cached_copy(
    s3_server, s3_bucket, tmp_path
):
    """The comparison reads the bucket: a copy in the local cache would still match."""
    import obstore

    store = _store(s3_server, s3_bucket, tmp_path, packs=False, compare_on_hit=True,
                   cache=tmp_path / "cache")  # fmt: skip
    data = b'{"a":1}'
    digest = store.put_document(data)
    assert store.get_document(digest) == data  # now in the local cache
    obstore.put(store._client, store._document_key(digest), b'{"a":2}')  # planted in the bucket
    with pytest.raises(CorruptBlobError, match=f"document {digest}"):
        store.put_document(data)
    array = np.arange(700 * 600, dtype="<f4").reshape(700, 600)
    digest = store.put_array(array)
    store.get_array(digest)  # cached
    key = store._data_key(digest, store._meta_of(digest))
    raw = bytearray(obstore.get(store._client, key).bytes())
    raw[100] ^= 0xFF
    obstore.put(store._client, key, bytes(raw))
    with pytest.raises(CorruptBlobError, match=f"array component {digest}"):
        store.put_array(array)


def test_compare_on_hit_adds_no_request_to_a_put_of_new_components(s3_server, tmp_path):
    """What a put of new components asks the server is the same with and without the comparison."""
    counts = {}
    for compare in (False, True):
        store = _store(s3_server, s3_server.new_bucket(), tmp_path / str(compare), packs=True,
                       compare_on_hit=compare)  # fmt: skip
        s3_server.clear_requests()
        store.put_new_array(np.arange(700 * 600, dtype="<f4").reshape(700, 600))  # its own objects
        store.put_new_array(np.arange(10, dtype="<i4"))  # packed
        store.put_new_document(b'{"a":1}')
        store.sync()
        counts[compare] = sorted((r.method, r.path.split("/", 2)[-1]) for r in s3_server.requests)
        s3_server.clear_requests()
        store.put_new_document(b'{"a":1}')  # a hit: compared (a ranged GET of its pack) or not
        counts[compare, "hit"] = [r.method for r in s3_server.requests]
    assert counts[True] == counts[False]
    assert counts[False, "hit"] == [] and counts[True, "hit"] == ["GET"]


def test_a_butler_put_over_a_damaged_pack_member_fails_on_s3(s3_url, tmp_path):
    """A repository of format 3: the Butler's put of a stored value compares it with the bucket's."""
    import obstore

    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    b = _put(s3_url)
    packs = [o["path"] for batch in obstore.list(b.blobs._client, "packs/") for o in batch]
    assert packs
    for key in packs:  # every packed member's bytes changed (the zip's sizes kept)
        raw = obstore.get(b.blobs._client, key).bytes()
        obstore.put(b.blobs._client, key, bytes(raw).replace(b'"', b"'"))
    writer = Butler(s3_url, run="again")
    with pytest.raises(CorruptBlobError):
        writer.put(make_exposure(1, 0, size=32, seed=1), "calexp", visit=1, detector=0)


# -- format 2.3 ---------------------------------------------------------------------------
def test_a_format_2_3_s3_repository_is_written_as_before(s3_url, tmp_path):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url)
    b = _put(s3_url)
    assert b.blobs.digest_algorithm is XXH3_128 and not b.blobs.compare_on_hit and b.blobs.packs
    docs = _documents(b)
    assert docs and all(d == canonical_json(parse_json(d)) for d in docs)
    _reads(s3_url, (1,))


# -- upgrade --------------------------------------------------------------------------------
def test_upgrade_moves_an_s3_repository_from_2_3_to_3_0(s3_url, tmp_path, capsys):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url)
    old = _put(s3_url)
    old_docs = set(_documents(old))
    before = _config(s3_url)
    assert Butler.upgrade(s3_url) == ("2.3", "3.0")
    after = _config(s3_url)
    assert after == {**before, "version": "3.0", "digest": "xxh3-128"}
    b = _put(s3_url, visit=2)
    assert b.blobs.compare_on_hit
    new_docs = set(_documents(b)) - old_docs
    assert new_docs and all(d == jcs(parse_json(d)) for d in new_docs)
    assert old_docs <= set(_documents(b))  # nothing rewritten or removed
    _reads(s3_url, (1, 2))
    assert Butler.upgrade(s3_url) == ("3.0", "3.0")
    assert main(["--repo", s3_url, "upgrade"]) == 0
    assert "already format 3.0" in capsys.readouterr().out


def test_upgrade_moves_an_s3_repository_without_packs_from_2_2_to_3_0(s3_url, tmp_path):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url, "2.2")
    old = _put(s3_url)
    assert not old.blobs.packs
    assert Butler.upgrade(s3_url) == ("2.2", "3.0")
    b = _put(s3_url, visit=2)
    assert b.blobs.packs and b.blobs.compare_on_hit  # new small components packed
    assert set(old.blobs.iter_documents()) <= set(b.blobs.iter_documents())
    _reads(s3_url, (1, 2))


def test_the_cli_upgrades_an_s3_repository(s3_url, tmp_path, capsys):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url)
    assert main(["--repo", s3_url, "upgrade"]) == 0
    assert "2.3 -> 3.0" in capsys.readouterr().out
    assert _config(s3_url)["version"] == "3.0"


def test_an_s3_upgrade_whose_put_fails_leaves_format_2_3(s3_url, tmp_path, monkeypatch):
    import obstore

    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url)
    _put(s3_url)
    real = obstore.put

    def put(store, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path == "compstore.json":  # the new config's PUT fails (a reset connection)
            raise OSError("Generic S3 error: the connection was reset")
        return real(store, path, *args, **kwargs)

    with monkeypatch.context() as patched:  # (monkeypatch.undo would drop the AWS_* variables)
        patched.setattr(obstore, "put", put)
        with pytest.raises(RepositoryError, match="cannot upgrade .*opens as format 2.3"):
            Butler.upgrade(s3_url)
    assert _config(s3_url)["version"] == "2.3" and "digest" not in _config(s3_url)
    b = _put(s3_url, visit=2)  # still opens, and writes, as format 2.3
    assert not b.blobs.compare_on_hit
    _reads(s3_url, (1, 2))


def test_an_s3_upgrade_does_not_overwrite_a_config_changed_meanwhile(s3_url, tmp_path, monkeypatch):
    """The PUT is conditional on the ETag read: a change in between makes it fail, writing nothing."""
    from compstore.cas._s3base import S3Base

    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    _as_format_2_3(s3_url)
    real = S3Base.read_tagged_object
    changed = {**_config(s3_url), "note": "written by another process meanwhile"}

    def read_then_change(self, key):  # type: ignore[no-untyped-def]
        got = real(self, key)
        self._put(key, json.dumps(changed).encode(), "config", create=False)
        return got

    with monkeypatch.context() as patched:
        patched.setattr(S3Base, "read_tagged_object", read_then_change)
        with pytest.raises(RepositoryError, match="changed while it was being upgraded"):
            Butler.upgrade(s3_url)
    assert _config(s3_url) == changed  # the other writer's config, not overwritten
    assert Butler.upgrade(s3_url) == ("2.3", "3.0")  # run again: done


def test_upgrade_refuses_an_s3_repository_of_another_version(s3_url, tmp_path):
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    config = {k: v for k, v in _config(s3_url).items() if k != "digest"}
    _top(s3_url)._put("compstore.json", json.dumps({**config, "version": "2.4"}).encode(),
                      "config", create=False)  # fmt: skip
    with pytest.raises(RepositoryError, match="format 2.4: only format 2.2 and 2.3"):
        Butler.upgrade(s3_url)
    assert _config(s3_url)["version"] == "2.4"

"""Format 3: RFC 8785 documents, a digest algorithm per repository, byte comparison on a hit, upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compstore import Butler
from compstore.cas import (
    BLAKE3,
    XXH3_128,
    LocalBlobStore,
    canonical_json,
    jcs,
    parse_json,
)
from compstore.cli import main
from compstore.errors import (
    CorruptBlobError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)
from compstore.testing.digests import COLLIDING
from compstore.testing.sky import make_exposure


def _config(root: Path) -> dict:
    return json.loads((root / "compstore.json").read_text())


def _as_format_2(root: Path) -> None:
    """Make the new repository ``root`` a format 2 one (this compstore still writes those)."""
    config = {k: v for k, v in _config(root).items() if k != "digest"}
    (root / "compstore.json").write_text(json.dumps({**config, "version": "2.0"}))


def _put(root: Path, visit: int = 1, **kw) -> Butler:
    b = Butler(root, run="sfm", **kw)
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.put(make_exposure(visit, 0, size=32, seed=visit), "calexp", visit=visit, detector=0)
    return b


def _documents(b: Butler) -> list[bytes]:
    return [b.blobs.get_document(d) for d in b.blobs.iter_documents()]


# -- create ----------------------------------------------------------------------
def test_a_new_repository_is_format_3_with_xxh3_digests(tmp_path):
    Butler.create(tmp_path / "r")
    config = _config(tmp_path / "r")
    assert (config["version"], config["digest"]) == ("3.0", "xxh3-128")
    assert Butler(tmp_path / "r").blobs.digest_algorithm is XXH3_128


def test_create_records_blake3_and_names_every_component_by_it(tmp_path):
    root = tmp_path / "r"
    Butler.create(root, digest="blake3")
    assert _config(root)["digest"] == "blake3"
    b = _put(root)
    assert b.blobs.digest_algorithm is BLAKE3
    digests = list(b.blobs.iter_arrays())
    assert digests and all(BLAKE3.digest_array(b.blobs.get_array(d)) == d for d in digests)
    assert all(XXH3_128.digest_array(b.blobs.get_array(d)) != d for d in digests)
    for d in b.blobs.iter_documents():
        assert BLAKE3.digest_bytes(b.blobs.get_document(d)) == d
    reader = Butler(root, collections="sfm")
    got = reader.get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(got.image, make_exposure(1, 0, size=32, seed=1).image)
    assert reader.verify(deep=True).ok


def test_a_blake3_store_finds_a_changed_byte(tmp_path):
    store = LocalBlobStore(tmp_path / "b", fsync=False, digest_algorithm=BLAKE3)
    digest = store.put_document(jcs({"a": 1}))
    assert digest == BLAKE3.digest_bytes(b'{"a":1}')
    path = tmp_path / "b" / "documents" / digest[:2] / f"{digest}.json"
    path.write_bytes(jcs({"a": 2}))
    with pytest.raises(CorruptBlobError, match=digest):
        LocalBlobStore(tmp_path / "b", digest_algorithm=BLAKE3).get_document(digest)
    with pytest.raises(CorruptBlobError, match=digest):
        LocalBlobStore(tmp_path / "b", digest_algorithm=BLAKE3).verify(digest)


def test_create_refuses_an_unknown_digest_and_the_cli_takes_digest(tmp_path, capsys):
    with pytest.raises(RepositoryError, match="blake3"):
        Butler.create(tmp_path / "bad", digest="md5")
    assert not (tmp_path / "bad" / "compstore.json").exists()
    assert main(["--repo", str(tmp_path / "c"), "create", "--digest", "blake3"]) == 0
    assert _config(tmp_path / "c")["digest"] == "blake3"
    assert main(["--repo", str(tmp_path / "c"), "--python", "create", "--digest", "blake3"]) == 0
    assert "digest='blake3'" in capsys.readouterr().out


def test_create_exist_ok_refuses_another_digest(tmp_path):
    Butler.create(tmp_path / "r", digest="blake3")
    assert Butler.create(tmp_path / "r", exist_ok=True).blobs.digest_algorithm is BLAKE3
    assert Butler.create(tmp_path / "r", exist_ok=True, digest="blake3").blobs.digest_algorithm is BLAKE3
    with pytest.raises(RepositoryExistsError, match="blake3, not xxh3-128"):
        Butler.create(tmp_path / "r", exist_ok=True, digest="xxh3-128")


@pytest.mark.parametrize("digest", [None, "sha1", 3])
def test_a_format_3_config_without_a_known_digest_is_refused(tmp_path, digest):
    root = tmp_path / "r"
    Butler.create(root)
    config = {k: v for k, v in _config(root).items() if k != "digest"}
    if digest is not None:
        config["digest"] = digest
    (root / "compstore.json").write_text(json.dumps(config))
    with pytest.raises(RepositoryFormatError, match="digest"):
        Butler(root)


# -- documents ---------------------------------------------------------------------
def test_format_3_documents_are_rfc_8785_and_format_2_ones_stay_repr_json(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    Butler.create(new)
    Butler.create(old)
    _as_format_2(old)
    docs3, docs2 = _documents(_put(new)), _documents(_put(old))
    assert docs3 and docs2
    assert all(d == jcs(parse_json(d)) for d in docs3)
    assert all(d == canonical_json(parse_json(d)) for d in docs2)
    # The Wcs and the Calib hold floats: the two encodings differ there.
    assert set(docs3) != set(docs2)
    assert any(b".0," in d or b".0}" in d for d in docs2)
    assert not any(b".0," in d or b".0}" in d for d in docs3)


def test_a_wcs_document_leaves_out_the_cards_astropy_versions_disagree_on(tmp_path):
    from compstore.objects import Wcs

    wcs = make_exposure(1, 0, size=32).wcs
    cards = wcs.to_dict()["header"]
    assert not {"MJDREF", "DATEREF", "MJDREFI", "MJDREFF"} & set(cards)
    # What another astropy writes (the defaults spelled out) reads as the same Wcs, same document.
    spelled = Wcs.from_dict({"header": {**cards, "MJDREF": 0.0, "DATEREF": "1858-11-17"}})
    assert spelled == wcs and jcs(spelled.to_dict()) == jcs(wcs.to_dict())
    # A value that is not the default is kept.
    assert "MJDREF" in Wcs.from_dict({"header": {**cards, "MJDREF": 51544.5}}).to_dict()["header"]


# -- a digest hit --------------------------------------------------------------------
@pytest.mark.parametrize("packs", [False, True])
@pytest.mark.parametrize("size", [8, 1024])  # packed / small folder, and a big array (4 MiB)
def test_a_colliding_array_is_refused_not_shared(tmp_path, packs, size):
    first = np.zeros((size, size), dtype="<f4")
    other = np.ones((size, size), dtype="<f4")
    store = LocalBlobStore(tmp_path / "b", fsync=False, packs=packs,
                           digest_algorithm=COLLIDING, compare_on_hit=True)
    digest, stored = store.put_new_array(first)
    store.sync()
    assert stored and store.put_new_array(first) == (digest, False)  # same bytes: shared
    with pytest.raises(CorruptBlobError, match="other content"):
        store.put_new_array(other)
    # put_array compares as put_new_array does, its digest found or given (copies, chains).
    assert store.put_array(first) == digest == store.put_array(first, digest=digest)
    for put in (lambda: store.put_array(other), lambda: store.put_array(other, digest=digest)):
        with pytest.raises(CorruptBlobError, match=f"array {digest}"):
            put()
    np.testing.assert_array_equal(store.get_array(digest), first)
    # Without the comparison (format 2) the collision would silently share the first array.
    trusting = LocalBlobStore(tmp_path / "b", fsync=False, packs=packs, digest_algorithm=COLLIDING)
    assert trusting.put_new_array(other) == (digest, False)


@pytest.mark.parametrize("packs", [False, True])
def test_a_colliding_document_is_refused_not_shared(tmp_path, packs):
    store = LocalBlobStore(tmp_path / "b", fsync=False, packs=packs,
                           digest_algorithm=COLLIDING, compare_on_hit=True)
    digest, _ = store.put_new_document(b'{"a":1}')
    store.sync()
    assert store.put_new_document(b'{"a":1}') == (digest, False)
    with pytest.raises(CorruptBlobError, match="other content"):
        store.put_new_document(b'{"a":2}')


def test_a_put_over_a_replaced_document_fails_instead_of_reusing_it(tmp_path):
    store = LocalBlobStore(tmp_path / "b", fsync=False, compare_on_hit=True)
    digest = store.put_document(b'{"a":1}')
    path = tmp_path / "b" / "documents" / digest[:2] / f"{digest}.json"
    path.write_bytes(b'{"a":2}')  # replaced under its name
    with pytest.raises(CorruptBlobError, match=digest):
        store.put_document(b'{"a":1}')


# -- mixing algorithms -----------------------------------------------------------------
def test_transfer_and_chains_refuse_repositories_of_different_digests(tmp_path):
    a, z = tmp_path / "a", tmp_path / "z"
    Butler.create(a)
    Butler.create(z, digest="blake3")
    src = _put(a)
    with pytest.raises(RepositoryError, match="digest"):
        Butler(z, run="sfm").transfer_from(src, src.query_datasets("calexp", collections="sfm"))
    with pytest.raises(RepositoryError, match="digest"):
        Butler([z, a])


# -- upgrade ----------------------------------------------------------------------------
def test_upgrade_moves_a_format_2_repository_to_format_3_in_place(tmp_path):
    root = tmp_path / "r"
    Butler.create(root)
    _as_format_2(root)
    old = _put(root)
    old_docs = set(_documents(old))
    assert Butler.upgrade(root) == ("2.0", "3.0")
    config = _config(root)
    assert (config["version"], config["digest"]) == ("3.0", "xxh3-128")
    assert not (root / "compstore.json.partial").exists()
    b = _put(root, visit=2)
    reader = Butler(root, collections="sfm")
    for visit in (1, 2):
        got = reader.get("calexp", visit=visit, detector=0)
        np.testing.assert_array_equal(got.image, make_exposure(visit, 0, size=32, seed=visit).image)
    assert reader.verify(deep=True).ok
    new_docs = set(_documents(b)) - old_docs
    assert new_docs and all(d == jcs(parse_json(d)) for d in new_docs)
    assert old_docs <= set(_documents(b))  # nothing rewritten or removed
    assert Butler.upgrade(root) == ("3.0", "3.0")  # again: nothing to do


def test_upgrade_refuses_what_it_cannot_move(tmp_path, capsys):
    with pytest.raises(RepositoryNotFoundError):
        Butler.upgrade(tmp_path / "nothing")
    root = tmp_path / "r"
    Butler.create(root)
    (root / "compstore.json").write_text(json.dumps({**_config(root), "version": "1.0"}))
    with pytest.raises(RepositoryError, match="format 1.0"):
        Butler.upgrade(root)
    assert _config(root)["version"] == "1.0"
    (root / "compstore.json").write_text(json.dumps({**_config(root), "version": "2.0"}))
    assert main(["--repo", str(root), "upgrade"]) == 0
    assert "2.0 -> 3.0" in capsys.readouterr().out
    assert main(["--repo", str(root), "--python", "upgrade"]) == 0
    assert "Butler.upgrade(" in capsys.readouterr().out


def test_a_subset_of_a_blake3_repository_is_blake3(tmp_path):
    root = tmp_path / "r"
    Butler.create(root, digest="blake3")
    src = _put(root)
    target = src.subset(tmp_path / "sub", "calexp", collections="sfm")
    assert target.blobs.digest_algorithm is BLAKE3 and _config(tmp_path / "sub")["digest"] == "blake3"
    got = Butler(tmp_path / "sub", collections="sfm").get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(got.image, make_exposure(1, 0, size=32, seed=1).image)
    assert target.verify(deep=True).ok


def test_an_upgrade_that_cannot_write_is_a_repository_error(tmp_path, monkeypatch):
    import compstore._config as config_module

    root = tmp_path / "repo"
    Butler.create(root)
    _as_format_2(root)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config_module, "write_atomic", refused)
    with pytest.raises(RepositoryError, match="cannot upgrade .*Permission denied"):
        Butler.upgrade(root)
    monkeypatch.undo()
    assert Butler(root)._repo.config["version"] == "2.0"  # still opens, as format 2

"""Butler.verify / `compstore verify`: missing, corrupt and dangling pieces are found and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compstore import Butler
from compstore.cli import main
from compstore.objects import CoaddInput, CoaddInputs
from compstore.verify import CORRUPT, DANGLING, MISSING


@pytest.fixture
def filled(butler, sky):
    """calexp + src of two detectors; the 512x512 planes are array folders, the rest packed."""
    for detector in range(2):
        exposure, catalog = sky(1, detector, size=512)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        butler.put(catalog, "src", visit=1, detector=detector)
    return butler


def _components(butler: Butler, dataset_type: str, **data_id) -> dict[str, str]:
    """name -> digest of the top-level array and document components of a dataset."""
    manifest = butler._io.manifest(butler.find_dataset(dataset_type, **data_id).manifest)
    return {
        name: entry.get("array") or entry.get("document")
        for name, entry in manifest["components"].items()
        if "array" in entry or "document" in entry
    }


def _flip_one_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("deep", [False, True])
def test_a_healthy_repository_verifies(filled, deep):
    report = filled.verify(deep=deep)
    assert report.ok, str(report)
    assert report.datasets == 4
    needed = set()
    for ref in filled.query_datasets("calexp") + filled.query_datasets("src"):
        needed |= {digest for _, digest in filled._io.iter_components(ref.manifest)}
    assert report.components == len(needed)
    assert report.unreferenced == 0
    assert report.deep is deep
    assert "no problems found" in str(report)
    assert report.as_dict()["ok"] is True


def test_a_missing_component_is_named_with_a_dataset_that_needs_it(filled):
    image = _components(filled, "calexp", visit=1, detector=1)["image"]
    filled.blobs.delete(image)
    report = Butler(filled.root).verify()
    assert not report.ok
    (problem,) = report.problems
    assert (problem.digest, problem.problem) == (image, MISSING)
    assert problem.dataset.dataset_type == "calexp" and dict(problem.dataset.data_id)["detector"] == 1
    assert image in str(report) and "missing" in str(report)


def test_changed_bytes_of_an_array_folder_are_found_only_by_deep(filled):
    image = _components(filled, "calexp", visit=1, detector=0)["image"]
    folder = filled.blobs.root / filled.blobs.component_path(image)
    chunk = folder / "c.0.0"
    _flip_one_byte(chunk, 4096)  # a raw float plane: still decodes, to other values
    fresh = Butler(filled.root)
    assert fresh.verify().ok
    report = fresh.verify(deep=True)
    assert [(p.digest, p.problem) for p in report.problems] == [(image, CORRUPT)]
    assert "hashes to" in report.problems[0].message


def test_changed_bytes_of_a_packed_document_are_found_by_deep(filled):
    wcs = _components(filled, "calexp", visit=1, detector=0)["wcs"]
    text = filled.blobs.get_document(wcs)
    packs = list((filled.blobs.root / "packs").rglob("*.zip"))
    (pack,) = [p for p in packs if text in p.read_bytes()]
    _flip_one_byte(pack, pack.read_bytes().index(text) + len(text) // 2)
    report = Butler(filled.root).verify(deep=True)
    assert (wcs, CORRUPT) in [(p.digest, p.problem) for p in report.problems]


def test_a_lost_pack_is_reported_not_raised(filled):
    for pack in (filled.blobs.root / "packs").rglob("*.zip"):
        pack.unlink()
    for deep in (False, True):
        report = Butler(filled.root).verify(deep=deep)
        assert not report.ok
        assert {p.problem for p in report.problems} == {CORRUPT}
        # every dataset's manifest was in a pack: each is reported
        assert {p.dataset.id for p in report.problems} == {
            ref.id for ref in filled.query_datasets("calexp") + filled.query_datasets("src")
        }


def test_removed_datasets_leave_unreferenced_components_not_problems(filled):
    filled.remove(filled.find_dataset("src", visit=1, detector=0))
    report = Butler(filled.root).verify()
    assert report.ok and report.datasets == 3
    assert report.unreferenced > 0


def test_a_reference_to_a_removed_dataset_dangles(butler, sky):
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    inputs = CoaddInputs([CoaddInput("calexp", {"visit": 1, "detector": 0}, wcs=exposure.wcs)])
    coadd, _ = sky(2, 0)
    butler.put(coadd.replace(coadd_inputs=inputs), "deepCoadd", tract=1, patch=1, band="r")
    assert butler.verify().ok
    calexp = butler.find_dataset("calexp", visit=1, detector=0)
    # Butler.remove refuses (the coadd refers to it): forget the row underneath it,
    # as a registry edited by hand or a half-restored backup would.
    butler.registry.remove_datasets([calexp])
    report = Butler(butler.root).verify()
    assert [(p.digest, p.problem) for p in report.problems] == [(str(calexp.id), DANGLING)]
    assert report.problems[0].dataset.dataset_type == "deepCoadd"


def test_cli_verify_exit_status_and_json(filled, capsys):
    repo = ["--repo", str(filled.root)]
    assert main(["verify", *repo]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert main(["verify", *repo, "--deep", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deep"] is True
    # the Calib is shared by calexp and src: the problem names the first dataset found
    calib = _components(filled, "src", visit=1, detector=1)["calib"]
    filled.blobs.delete(calib)
    assert main(["verify", *repo, "--json"]) == 4  # damage found
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert [(p["digest"], p["problem"]) for p in out["problems"]] == [(calib, MISSING)]
    assert out["problems"][0]["dataset"]["dataset_type"] in ("calexp", "src")


def test_cli_verify_python_is_the_butler_call(filled, capsys):
    assert main(["verify", "--repo", str(filled.root), "--deep", "--python"]) == 0
    code = capsys.readouterr().out
    assert "report = butler.verify(deep=True, progress=True)" in code and "sys.exit(4)" in code


# -- hand-made manifests: whatever a damaged repository holds, verify reports, never raises --
def _manifest(butler: Butler, components: dict, storage_class: str = "Exposure") -> str:
    from compstore.cas import canonical_json
    from compstore.storage_classes import MANIFEST_FORMAT

    value = {"format": MANIFEST_FORMAT, "storage_class": storage_class, "attributes": {},
             "components": components}
    digest = butler.blobs.put_document(canonical_json(value))
    butler.blobs.sync()
    return digest


def _dataset(butler: Butler, manifest: str, visit: int):
    return butler.registry.insert_dataset("calexp", {"visit": visit, "detector": 0}, "sfm", manifest)


def test_malformed_manifests_and_entries_are_reported(filled):
    wcs = _components(filled, "calexp", visit=1, detector=0)["wcs"]
    bad = {
        "not_a_mapping": ["array", wcs],
        "no_kind": {"storage_class": "Wcs"},
        "bad_digest": {"document": "not-a-digest"},
        "upper_case": {"document": wcs.upper()},
        "not_a_uuid": {"dataset": "visit-1", "component": "wcs"},
        "missing_dataset": {"dataset": "00000000-0000-4000-8000-000000000000", "component": "wcs"},
    }
    _dataset(filled, _manifest(filled, bad), visit=7)
    other = filled.blobs.put_document(b'{"format": "something else"}')  # a document, not a manifest
    filled.blobs.sync()
    _dataset(filled, other, visit=8)
    report = Butler(filled.root).verify()
    problems = {(p.problem, p.message.split(":")[0]) for p in report.problems}
    assert not report.ok
    kinds = [p.problem for p in report.problems]
    assert kinds.count("unreadable") == 4  # not a mapping, no kind, two malformed digests
    assert kinds.count(DANGLING) == 2  # not a UUID, no such dataset
    assert kinds.count(CORRUPT) == 1, problems  # the document that is not a manifest
    assert all(dict(p.dataset.data_id)["visit"] in (7, 8) for p in report.problems)


def test_a_digest_named_as_the_wrong_kind_is_missing(filled):
    # The Wcs document's digest, named as an array: reading it would fail.
    wcs = _components(filled, "calexp", visit=1, detector=0)["wcs"]
    ref = _dataset(filled, _manifest(filled, {"image": {"array": wcs}}), visit=9)
    for deep in (False, True):
        report = Butler(filled.root).verify(deep=deep)
        assert [(p.digest, p.problem, p.dataset.id) for p in report.problems] == [(wcs, MISSING, ref.id)]


def test_a_reference_to_a_component_its_target_lacks_dangles(filled):
    target = filled.find_dataset("calexp", visit=1, detector=0)
    ok = {"wcs": {"dataset": str(target.id), "component": "wcs"}}
    lacking = {"wcs": {"dataset": str(target.id), "component": "no_such_component"}}
    _dataset(filled, _manifest(filled, ok, "CoaddInputs"), visit=10)
    _dataset(filled, _manifest(filled, lacking, "CoaddInputs"), visit=11)
    reader = Butler(filled.root)
    looked_up: list = []
    real = reader.registry.get_dataset
    reader.registry.get_dataset = lambda id: looked_up.append(id) or real(id)  # type: ignore[method-assign]
    (problem,) = reader.verify().problems
    assert looked_up == [target.id]  # referred to twice, looked up once
    assert problem.problem == DANGLING and "no_such_component" in problem.message
    assert dict(problem.dataset.data_id)["visit"] == 11


def test_long_reference_chains_and_deep_nesting_end(butler):
    # 400 datasets each referring to the next, and manifests nested 1,500 deep:
    # the walk is iterative and checks each reference without following it.
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(400)]
    import uuid

    for i, dataset_id in enumerate(ids):
        nxt = {"wcs": {"dataset": ids[(i + 1) % len(ids)], "component": "wcs"}}
        butler.registry.insert_dataset("calexp", {"visit": i, "detector": 0}, "sfm",
                                       _manifest(butler, nxt, "CoaddInputs"), id=uuid.UUID(dataset_id))
    nested = _manifest(butler, {})
    for _ in range(1500):
        nested = _manifest(butler, {"inner": {"manifest": nested, "storage_class": "Exposure"}})
    butler.registry.insert_dataset("calexp", {"visit": 9999, "detector": 0}, "sfm", nested)
    report = Butler(butler.root).verify()
    assert report.ok, str(report)[:2000]
    assert report.datasets == 401 and report.components == 400 + 1501


def test_a_reference_without_a_component_is_the_whole_dataset_and_a_bad_one_is_reported(filled):
    target = filled.find_dataset("calexp", visit=1, detector=0)
    _dataset(filled, _manifest(filled, {"all": {"dataset": str(target.id)}}, "CoaddInputs"), visit=12)
    assert Butler(filled.root).verify().ok
    _dataset(filled, _manifest(filled, {"w": {"dataset": str(target.id), "component": ["wcs"]}}), visit=13)
    (problem,) = Butler(filled.root).verify().problems
    assert problem.problem == "unreadable" and "['wcs']" in problem.message


def test_a_store_that_cannot_be_listed_keeps_the_problems_found(filled):
    image = _components(filled, "calexp", visit=1, detector=1)["image"]
    filled.blobs.delete(image)
    loop = filled.blobs.root / "arrays" / "zz"
    loop.symlink_to("zz")  # a fan-out folder that cannot be listed (a symlink loop)
    report = Butler(filled.root).verify()
    assert [(p.digest, p.problem) for p in report.problems] == [(image, MISSING)]
    assert report.unreferenced is None and "arrays" in report.listing_error
    assert "not counted" in str(report)


def test_deep_walks_a_manifest_that_fails_its_hash_but_still_parses(filled):
    ref = filled.find_dataset("calexp", visit=1, detector=0)
    text = filled.blobs.get_document(ref.manifest)
    start = text.index(b'"band":"') + len(b'"band":"')
    changed = text[:start] + bytes([text[start] ^ 0x01]) + text[start + 1 :]  # another band letter
    (pack,) = [p for p in (filled.blobs.root / "packs").rglob("*.zip") if text in p.read_bytes()]
    pack.write_bytes(pack.read_bytes().replace(text, changed))
    report = Butler(filled.root).verify(deep=True)
    assert [(p.digest, p.problem) for p in report.problems] == [(ref.manifest, CORRUPT)]
    assert report.unreferenced == 0  # what the damaged manifest names was still checked

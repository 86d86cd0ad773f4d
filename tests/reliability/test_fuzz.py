"""Generated hostile input never ends in an internal traceback, nor writes outside the repository.

Seeded ``random`` (reproducible in CI) generates inputs of seven kinds and feeds
each to the public API (or ``compstore.cli.main``):

* ``where``: expressions (and bind values) to ``query_datasets``;
* ``data_id``: keys and values of odd types, huge integers, NaN, strings with
  ``/``, ``..`` and NUL, to ``find_dataset``, ``get`` and ``put``;
* ``names``: dataset type, collection and run names (path-like, unicode, very long);
* ``manifest``: JSON trees (deep, wide, wrong types, references and cycles between
  datasets) written into the repository, then ``get``, and every 50th ``verify``
  and ``stats``;
* ``config``: damaged ``compstore.json`` files, then ``Butler(root)``;
* ``pipeline``: pipeline definitions (``Pipeline.from_dict``, ``from_file``) and
  ``-c`` overrides;
* ``cli``: argument vectors for ``compstore.cli.main``.

A *traceback* is any exception that is not a `CompstoreError` (for the CLI: any
exception out of ``main`` but ``SystemExit``, or "Traceback" printed). Files
written outside the repository folders are counted from a snapshot of the
test's folder before and after. Both must be 0; a failure prints the input.

Default size: 5,000 inputs (about 20 s here; 10,000 took 38 s, too close to the
CI budget); ``--reliability-scale 2`` runs 10,000.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from compstore import Butler
from compstore.cas import canonical_json
from compstore.cli import main
from compstore.errors import CompstoreError
from compstore.pipeline import Pipeline
from compstore.storage_classes import MANIFEST_FORMAT

INPUTS = 10_000
_KINDS = ("where", "data_id", "names", "manifest", "config", "pipeline", "cli")

_ATOMS: list[Any] = [
    0, 1, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 3.5, math.nan, math.inf, True, None,
    "", "a", "r", "../..", "/etc/passwd", "a/../../b", "x\x00y", "é\u202e", "😀", "'", '"',
    "visit", "detector", " ", "a" * 300, [], {}, [1, 2], {"a": 1}, b"bytes", (1,),
]


def _string(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice([s for s in _ATOMS if isinstance(s, str)])
    if pick < 0.5:
        return "".join(rng.choice("abc_/.-: 019\x00é😀'\"()=<>!,") for _ in range(rng.randint(0, 20)))
    if pick < 0.6:
        return rng.choice(["a", "/", "..", "x"]) * rng.randint(100, 5000)
    return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 12)))


def _value(rng: random.Random) -> Any:
    return rng.choice(_ATOMS) if rng.random() < 0.7 else _string(rng)


def _json_tree(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth > 6 or pick < 0.4:
        return rng.choice([0, -1, 2**70, 1.5, True, None, "", "x", "a" * 50])
    if pick < 0.7:
        return [_json_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_string(rng)[:20]: _json_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))}


_WHERE_TOKENS = ["visit", "detector", "band", "notes", "=", "!=", "<>", "<", ">=", "AND", "OR",
                 "NOT", "IN", "(", ")", ",", "1", "-5", str(2**63), "9" * 30, "'r'", "'it''s'",
                 '"x"', ":v", ":w", ";", "DROP TABLE dataset", "--", "\x00", "é", "'"]


def _where(rng: random.Random) -> tuple[Any, dict[str, Any] | None]:
    pick = rng.random()
    if pick < 0.1:
        n = rng.choice([200, 1001, 5000])
        text = rng.choice(["NOT " * n + "visit = 1", " OR ".join(["visit = 1"] * n),
                           "(" * n + "visit = 1" + ")" * n, "visit = " + "9" * n])
    elif pick < 0.15:
        text = rng.choice([None, 5, b"visit = 1", ["visit = 1"]])  # type: ignore[list-item]
    else:
        text = " ".join(rng.choice(_WHERE_TOKENS) for _ in range(rng.randint(0, 12)))
    bind = {rng.choice(["v", "w", "x"]): _value(rng) for _ in range(rng.randint(0, 2))}
    return text, (bind if rng.random() < 0.8 else rng.choice([None, {"v": [1, 2**64]}, {"v": set()}]))


def _data_id(rng: random.Random) -> dict[Any, Any]:
    keys = ["visit", "detector", "band", _string(rng), 1, None]
    return {rng.choice(keys): _value(rng) for _ in range(rng.randint(0, 3))}


class _Fuzz:
    def __init__(self, root: Path, rng: random.Random, wcs: Any) -> None:
        self.root = root
        self.rng = rng
        self.wcs = wcs
        self.butler = Butler(root, run="r", fsync=False)
        self.butler.register_dataset_type("thing", ("visit",), "Wcs")
        self.butler.register_dataset_type("exp", ("visit", "detector"), "Exposure")
        self.ids: list[uuid.UUID] = []
        self.desc = ""
        self.manifests = 0

    # Each returns a short description of the input, for the failure message.
    def where(self) -> str:
        text, bind = _where(self.rng)
        self.desc = desc = f"query_datasets('thing', where={str(text)[:300]!r}, bind={str(bind)[:200]})"
        self.butler.query_datasets(self.rng.choice(["thing", "exp"]), where=text, bind=bind)  # type: ignore[arg-type]
        return desc

    def data_id(self) -> str:
        data_id = _data_id(self.rng)
        op = self.rng.choice(["find", "get", "put", "query"])
        self.desc = desc = f"{op} data_id={str(data_id)[:300]}"
        if op == "find":
            self.butler.find_dataset(self.rng.choice(["thing", "exp"]), data_id)
        elif op == "get":
            self.butler.get("thing", data_id)
        elif op == "put":
            self.butler.put(self.wcs, "thing", data_id)
        else:
            self.butler.query_datasets("thing", data_id=data_id) if "data_id" in Butler.query_datasets.__code__.co_varnames else self.butler.find_dataset("thing", **{str(k): v for k, v in data_id.items()})
        return desc

    def names(self) -> str:
        name = _string(self.rng) if self.rng.random() < 0.8 else _value(self.rng)
        op = self.rng.choice(["type", "collection", "run", "get"])
        self.desc = desc = f"{op} name={str(name)[:300]!r}"
        if op == "type":
            self.butler.register_dataset_type(name, (self.rng.choice(["visit", name]),), self.rng.choice(["Wcs", name]))
        elif op == "collection":
            self.butler.register_collection(name, self.rng.choice(["RUN", "TAGGED", "CHAINED", name]))
        elif op == "run":
            Butler(self.root, run=name, fsync=False).put(self.wcs, "thing", visit=self.rng.randint(0, 10**6))
        else:
            self.butler.get(name, visit=1)
        return desc

    def manifest(self) -> str:
        rng = self.rng
        components: Any = {}
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["array", "document", "manifest", "dataset", "junk"])
            target: Any = rng.choice(["0" * 32, "f" * 32, "../x", 5, None,
                                       str(rng.choice(self.ids)) if self.ids else "x"])
            entry = {"storage_class": rng.choice(["Wcs", "Array", "Exposure", "Mask", 3]), kind: target}
            if kind == "dataset" and rng.random() < 0.5:
                entry["component"] = rng.choice(["wcs", "value", None, 3])
            components[_string(rng)[:10] if rng.random() < 0.3 else "value"] = (
                entry if rng.random() < 0.9 else _json_tree(rng)
            )
        doc: dict[str, Any] = {"format": MANIFEST_FORMAT if rng.random() < 0.9 else _value(rng),
                               "storage_class": rng.choice(["Wcs", "Exposure", "MaskedImage", "Mask", "Nope", 1]),
                               "attributes": _json_tree(rng) if rng.random() < 0.5 else {},
                               "components": components if rng.random() < 0.9 else _json_tree(rng)}
        for key in list(doc):
            if rng.random() < 0.05:
                del doc[key]
        try:
            raw = canonical_json(doc)
        except CompstoreError:
            raw = json.dumps(doc, default=str).encode()
        if rng.random() < 0.05:
            raw = b'{"format":"' + MANIFEST_FORMAT.encode() + b'","attributes":' + b"[" * 5000 + b"]" * 5000 + b"}"
        digest = self.butler.blobs.put_document(raw)
        self.butler.blobs.sync()
        new = uuid.uuid4()
        self.manifests += 1
        self.butler.registry.insert_dataset("thing", {"visit": 10**7 + self.manifests}, "r", digest, id=new)
        self.ids.append(new)
        self.desc = desc = f"manifest {raw[:400]!r}"
        try:
            self.butler.get("thing", visit=10**7 + self.manifests)
        except CompstoreError:
            pass
        if self.manifests % 50 == 0:
            report = self.butler.verify()
            assert report.datasets >= self.manifests
            self.butler.stats() if not report.problems else _stats_or_clean(self.butler)
        return desc

    def config(self) -> str:
        rng = self.rng
        folder = self.root.parent / "configs" / f"c{rng.randint(0, 9)}"
        folder.mkdir(parents=True, exist_ok=True)
        choices = [
            lambda: json.dumps(_json_tree(rng)).encode(),
            lambda: json.dumps({"format": "compstore", "version": _value(rng)}, default=str).encode(),
            lambda: json.dumps({"format": _value(rng), "version": "2.0"}, default=str).encode(),
            lambda: bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 64))),
            lambda: b"[" * 50_000,
            lambda: b'{"format":"compstore","version":"2.0","x":"' + b"a" * 100_000 + b'"}',
        ]
        raw = rng.choice(choices)()
        (folder / "compstore.json").write_bytes(raw)
        self.desc = desc = f"config {raw[:300]!r}"
        Butler(folder)
        return desc

    def pipeline(self) -> str:
        rng = self.rng
        tasks = {_string(rng)[:20] if rng.random() < 0.3 else "a":
                 rng.choice([{"class": _value(rng)}, {"class": "compstore.pipeline.tasks.Nope", "config": _json_tree(rng)},
                             _json_tree(rng), {"class": "x", "config": {"k": _value(rng)}}])
                 for _ in range(rng.randint(0, 2))}
        data = rng.choice([{"tasks": tasks}, tasks, _json_tree(rng), {"tasks": tasks, "description": _value(rng)}])
        self.desc = desc = f"pipeline {str(data)[:300]}"
        if rng.random() < 0.5:
            Pipeline.from_dict(data)
        else:
            path = self.root.parent / "pipeline.yaml"
            path.write_text(json.dumps(data, default=str) if rng.random() < 0.8 else _string(rng))
            pipeline = Pipeline.from_file(path)
            pipeline.add_config_override(_string(rng)[:10], _string(rng)[:10], _value(rng))
        return desc

    def cli(self) -> str:
        rng = self.rng
        command = rng.choice(["create", "register-dataset-type", "ingest", "get", "query", "stats",
                              "verify", "run", "provenance", "collection-chain", "tag",
                              "query-collections", "export", "nope", "--help-ish"])
        args = [command, "--repo", str(self.root)]
        for _ in range(rng.randint(0, 5)):
            pick = rng.random()
            if pick < 0.25:
                args.append(f"{rng.choice(['visit', 'detector', _string(rng)[:10]])}={_value(rng)}")
            elif pick < 0.4:
                args += ["-c", f"{_string(rng)[:8]}:{_string(rng)[:8]}={rng.choice(['2020-01-01', '.nan', '.inf', '[' * 200, '9' * 5000, _string(rng)])}"]
            elif pick < 0.5:
                where = _where(rng)[0]
                args += ["--where", where if isinstance(where, str) else "visit = 1"]
            elif pick < 0.55:
                args += ["-o", "out", "-i", _string(rng), "-p", str(self.root.parent / "nope.yaml")]
            elif pick < 0.6:
                args.append(rng.choice(["--json", "--deep", "--python", "--exist-ok", "--collections"]))
            else:
                args.append(rng.choice(["thing", "exp", "thing.wcs", "thing:r", "Wcs", "visit,detector", _string(rng)]))
        args = [a for a in args if a not in ("-o", "--output") or command not in ("get", "export")]
        self.desc = desc = f"compstore {args!r}"[:600]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(args)
            except SystemExit:
                pass  # argparse's usage error: a message and exit status 2
        if "Traceback" in err.getvalue():
            raise AssertionError(f"printed a traceback: {err.getvalue()[-1500:]}")
        return desc


def _stats_or_clean(butler: Butler) -> None:
    try:
        butler.stats()
    except CompstoreError:
        pass


def _snapshot(top: Path, repos: tuple[Path, ...]) -> set[str]:
    out = set()
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(folder, d) not in repos]
        out.update(os.path.join(folder, f) for f in files)
    return out


def test_generated_hostile_input_never_ends_in_a_traceback(tmp_path, sky, reliability_scale, reliability_counts):
    root = tmp_path / "repo"
    Butler.create(root)
    exposure, _ = sky(1, 0, size=32)
    fuzz = _Fuzz(root, random.Random(20261205), exposure.wcs)
    allowed = (root, tmp_path / "configs")
    fixed = {str(tmp_path / "pipeline.yaml")}
    before = _snapshot(tmp_path, allowed)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths the CLI may be given resolve here, and are counted
    n = INPUTS * reliability_scale
    by_kind: Counter[str] = Counter()
    tracebacks: list[str] = []
    try:
        for i in range(n):
            kind = _KINDS[i % len(_KINDS)]
            by_kind[kind] += 1
            fuzz.desc = f"{kind} #{i}"
            try:
                getattr(fuzz, kind)()
            except CompstoreError:
                pass
            except Exception as exc:  # noqa: BLE001 - what the test counts
                tracebacks.append(f"{kind} #{i}: {type(exc).__name__}: {str(exc)[:300]}\n  input: {fuzz.desc}")
    finally:
        os.chdir(cwd)
    outside = sorted(_snapshot(tmp_path, allowed) - before - fixed)
    reliability_counts("fuzz", inputs=n, tracebacks=len(tracebacks), outside_writes=len(outside),
                       by_kind=dict(by_kind))
    assert not tracebacks, f"{len(tracebacks)} tracebacks; first ones:\n" + "\n".join(tracebacks[:10])
    assert not outside, outside[:10]

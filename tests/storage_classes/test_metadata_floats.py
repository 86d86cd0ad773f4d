"""Metadata keeps int and float apart in format 3 too (RFC 8785 writes 30.0 as 30),
and stores integers beyond 2**53 exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from compstore import Butler

VALUES = {
    "EXPTIME": 30.0, "ZERO": -0.0, "POS": 0.0, "N": 3, "X": 1.5, "BIG": 1e21, "S": "30",
    "HUGE": 2**60 + 1, "NEG": -(2**62),  # integers beyond what a JSON number holds exactly
}


@pytest.mark.parametrize("version", ["3.0", "2.0"])
def test_metadata_types_survive_a_fresh_process(tmp_path, version):
    root = tmp_path / "repo"
    Butler.create(root, fsync=False)
    if version == "2.0":  # a format 2 repository (repr-JSON documents)
        config = json.loads((root / "compstore.json").read_text())
        config.pop("digest")
        config["version"] = "2.0"
        (root / "compstore.json").write_text(json.dumps(config))
    butler = Butler(root, run="r", fsync=False)
    butler.register_dataset_type("hdr", ("visit",), "Metadata")
    butler.put(VALUES, "hdr", visit=1)
    code = (
        "import json, sys; from compstore import Butler; "
        "m = Butler(sys.argv[1], collections='r').get('hdr', visit=1); "
        "print(json.dumps([[k, repr(v), type(v).__name__] for k, v in m.items()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert [k for k, _, _ in got] == list(VALUES)  # order kept
    for key, text, type_name in got:
        want = VALUES[key]
        assert type_name == type(want).__name__, (key, text, type_name)
        assert text == repr(want), (key, text)
    assert math.copysign(1, float(dict((k, t) for k, t, _ in got)["ZERO"])) == -1

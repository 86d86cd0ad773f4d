"""canonical_json: one byte string per JSON value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compstore.cas import canonical_json, digest_bytes, digest_json, parse_json
from compstore.errors import EncodingError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


def test_examples() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, True, "é"]}) == (
        '{"a":[1.5,null,true,"é"],"b":1}'.encode()
    )
    assert canonical_json(0.1) == b"0.1"
    assert canonical_json(1e300) == b"1e+300"
    assert canonical_json(1.0) == b"1.0"
    assert canonical_json(1) == b"1"
    assert canonical_json(-0.0) == b"-0.0"
    assert canonical_json(2**70) == b"1180591620717411303424"
    assert canonical_json((1, 2)) == canonical_json([1, 2]) == b"[1,2]"
    assert canonical_json({"z": {"b": 0, "a": 0}}) == b'{"z":{"a":0,"b":0}}'
    assert canonical_json('\u2028\n"') == '"\u2028\\n\\""'.encode()


@given(json_values)
def test_round_trip_and_determinism(value: object) -> None:
    data = canonical_json(value)
    assert isinstance(data, bytes)
    data.decode("utf-8")
    back = json.loads(data)
    assert canonical_json(back) == data
    assert digest_json(value) == digest_bytes(data) == digest_json(back)


@given(st.dictionaries(st.text(max_size=5), st.integers(), min_size=2))
def test_key_order_does_not_matter(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert canonical_json(reversed_d) == canonical_json(d)


@given(json_values, json_values)
def test_different_values_different_bytes(a: object, b: object) -> None:
    def norm(v: object) -> str:
        return json.dumps(v, sort_keys=True)

    # 1 and 1.0 and True differ in canonical JSON, as they differ as JSON text.
    if norm(a) != norm(b):
        assert canonical_json(a) != canonical_json(b)


@pytest.mark.parametrize(
    "bad",
    [
        math.nan,
        math.inf,
        -math.inf,
        [1, {"x": math.nan}],
        {1: "int key"},
        {None: 1},
        {("a",): 1},
        np.float32(1.0),
        np.int64(3),
        np.zeros(2),
        b"bytes",
        {1, 2},
        object(),
        "\ud800",
    ],
    ids=repr,
)
def test_rejected(bad: object) -> None:
    with pytest.raises(EncodingError):
        canonical_json(bad)
    with pytest.raises(ValueError):
        digest_json(bad)


def test_cycles_rejected() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodingError):
        canonical_json(loop)


# -- parse_json: json.loads, faster ------------------------------------------------
@given(json_values)
def test_parse_json_equals_json_loads(value: object) -> None:
    data = canonical_json(value)
    parsed = parse_json(data)
    assert parsed == json.loads(data)
    assert canonical_json(parsed) == data  # same types too (1 stays int, 1.0 float)
    assert parse_json(memoryview(data)) == parsed
    assert parse_json(data.decode()) == parsed


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_json_floats_bit_for_bit(x: float) -> None:
    text = json.dumps(x).encode()
    assert math.copysign(1.0, parse_json(text)) == math.copysign(1.0, x)
    assert parse_json(text) == json.loads(text) == x


@pytest.mark.parametrize(
    "text",
    [b"[NaN, Infinity, -Infinity]", str(2**70).encode(), str(-(2**70)).encode(), b'{"a": 1, "a": 2}'],
)
def test_parse_json_what_orjson_refuses_goes_to_json(text: bytes) -> None:
    got, want = parse_json(text), json.loads(text)
    assert repr(got) == repr(want)


@pytest.mark.parametrize("text", [b"", b"{", b"[1,]", b"\xff", b"nul"])
def test_parse_json_rejects_non_json(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(text)


@pytest.mark.parametrize(
    "text",
    [b"[0.00012345678901234567, 1.2345678901234567e-05]", b'{"big": 18446744073709551615}',
     b"[1234567890123456789.5, -98765432109876543210, 12345678901234567890e2]"],
)
def test_parse_json_long_digit_runs(text: bytes) -> None:
    got = parse_json(text)
    assert repr(got) == repr(json.loads(text))


def test_parse_json_takes_orjson_for_ordinary_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    from compstore.cas import _encoding

    seen: list[str] = []

    def decoder(name: str):  # type: ignore[no-untyped-def]
        return lambda data: seen.append(name) or json.JSONDecoder().decode(bytes(data).decode())

    monkeypatch.setattr(_encoding.orjson, "loads", decoder("orjson"))
    monkeypatch.setattr(_encoding.json, "loads", decoder("json"))
    assert parse_json(b'{"grid": [[0.00012345678901234567, 411.7]], "n": 3}') == {
        "grid": [[0.00012345678901234567, 411.7]], "n": 3}
    assert seen == ["orjson"]  # float digits are not a long integer
    seen.clear()
    assert parse_json(b"[12345678901234567890123]") == [12345678901234567890123]
    assert seen == ["json"]  # orjson would have made it a float

"""RFC 8785 (JCS), the document encoding of format 3: the RFC's own vectors, literally."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest
import rfc8785

from compstore.cas import canonical_json, jcs
from compstore.cas._jcs import jcs_number
from compstore.errors import EncodingError

# RFC 8785 Appendix B: IEEE 754 double (hex) -> its JSON number.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_numbers_are_written_as_rfc_8785_appendix_b_says(bits, text):
    assert jcs_number(_double(bits)) == text
    assert jcs([_double(bits)]) == f"[{text}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinities_are_refused(bits):  # Appendix B: "NaN", "Infinity"
    with pytest.raises(EncodingError, match="no JSON encoding"):
        jcs({"x": _double(bits)})


def test_the_rfc_example_of_section_3_2_2():
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert jcs(value) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()


def test_keys_sort_by_utf16_code_units_as_section_3_2_3_says():
    value = {
        "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = [key for key in json.loads(jcs(value))]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    # (sorting by code point, as canonical_json does, puts U+FB33 before the emoji)
    assert list(json.loads(canonical_json(value)))[-2:] == ["\ufb33", "\U0001f600"]


def test_equal_numbers_give_equal_bytes_whatever_their_python_type():
    assert jcs({"a": 1, "b": 1.0, "c": -0.0, "d": 1e-5}) == b'{"a":1,"b":1,"c":0,"d":0.00001}'
    assert canonical_json({"b": 1.0, "d": 1e-5}) == b'{"b":1.0,"d":1e-05}'  # format 2's


def test_integers_beyond_the_double_range_are_refused():
    assert jcs(2**53 - 1) == b"9007199254740991"
    with pytest.raises(EncodingError, match="store it as a string"):
        jcs({"id": [2**53]})


@pytest.mark.parametrize("bad", [{1: "x"}, {"x": object()}, {"x": {"y": [float("nan")]}}, "\ud800"])
def test_what_has_no_encoding_is_refused_with_where(bad):
    with pytest.raises(EncodingError):
        jcs(bad)


def test_a_cycle_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(EncodingError, match="nested too deeply"):
        jcs(loop)


def test_agrees_with_the_rfc8785_package_on_random_doubles_and_documents():
    rng = random.Random(8785)
    for _ in range(20_000):
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            assert jcs_number(x) == rfc8785.dumps(x).decode(), repr(x)
    for _ in range(2_000):
        x = rng.uniform(-1, 1) * 10.0 ** rng.randint(-30, 30)
        assert jcs_number(x) == rfc8785.dumps(x).decode(), repr(x)
    doc = {"cd": [[1e-5, 0.0], [0.0, 1e-5]], "name": "é\u0007\"", "n": 12, "ok": True, "z": None}
    assert jcs(doc) == rfc8785.dumps(doc)

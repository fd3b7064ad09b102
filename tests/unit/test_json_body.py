"""Webhook bodies as JSON: the values read and the errors named, whichever way the body is read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.errors import InvalidJson


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"a":1,"b":[true,null,"x"]}', {"a": 1, "b": [True, None, "x"]}),
        (b'\xef\xbb\xbf{"a":1}', {"a": 1}),  # one byte order mark is allowed
        (b'  \n{"a": 1}\r\n ', {"a": 1}),  # whitespace around the value
        (b'{"a":123456789012345678901234567890}', {"a": 123456789012345678901234567890}),
        (b'{"a":-0.0,"b":1e400,"c":0.1}', {"a": -0.0, "b": float("inf"), "c": 0.1}),
        (b'{"a":"\\ud800"}', {"a": "\ud800"}),  # a lone surrogate (cleaned when stored)
        (b'{"a":1,"a":2}', {"a": 2}),
        (b'"text"', "text"),
        (b"12", 12),
    ],
)
def test_valid_bodies_read_as_the_standard_library_reads_them(body: bytes, value: Any) -> None:
    assert parse_json_body(body) == value


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b'{"a":1} x', {"line": 1, "column": 9, "position": 8}),  # data after the value
        (b'{"a":1}\n{"b":2}', {"line": 2, "column": 1, "position": 8}),
        (b"   ", {"line": 1, "column": 4, "position": 3}),
        (b'{"a": 1,}', {"line": 1, "column": 9, "position": 8}),
        (b'\xef\xbb\xbf\xef\xbb\xbf{"a":1}', {"line": 1, "column": 1, "position": 0}),
        (b'{"a": NaN}', None),
        (b'{"a": "\xff"}', {"line": 1, "column": 8, "position": 7}),
        (b"[" * 100_000 + b"]" * 100_000, None),
    ],
)
def test_invalid_bodies_name_the_position(body: bytes, details: dict[str, int] | None) -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json_body(body)
    assert raised.value.details == details


@pytest.mark.parametrize(
    "number",
    [
        b"9223372036854775807",  # 2**63 - 1
        b"-9223372036854775809",  # one below -2**63
        b"18446744073709551616",  # 2**64
        b"-123456789012345678901234567890",
    ],
)
def test_integers_at_and_beyond_64_bits_stay_exact(number: bytes) -> None:
    value = parse_json_body(b'{"points":' + number + b"}")

    assert value == {"points": int(number)}
    assert type(value["points"]) is int


def test_a_body_with_a_bom_and_a_long_string_of_digits_reads_the_same() -> None:
    body = b'\xef\xbb\xbf{"id":"12345678901234567890","n":1.5}'
    assert parse_json_body(body) == {"id": "12345678901234567890", "n": 1.5}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=json_values, indent=st.sampled_from([None, 1]))
@settings(max_examples=300)
def test_any_json_reads_as_the_standard_library_reads_it(value: Any, indent: int | None) -> None:
    body = json.dumps(value, indent=indent).encode()

    parsed = parse_json_body(body)

    assert parsed == json.loads(body)
    assert repr(parsed) == repr(json.loads(body))  # int stays int, -0.0 stays -0.0


@pytest.mark.parametrize("number", [b"-0", b"-0.0", b"1.0", b"1E2", b"5e-324", b"1e400"])
def test_edge_numbers_read_as_the_standard_library_reads_them(number: bytes) -> None:
    assert repr(parse_json_body(number)) == repr(json.loads(number))

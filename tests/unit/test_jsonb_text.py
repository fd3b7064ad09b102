"""`jsonb_text`: the fast JSON writer for jsonb columns gives what the cleaning walk gives."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from braze_bridge.db.jsonb import jsonb_safe, jsonb_text

# Any text, lone surrogates and NUL included (JSON bodies can carry both as escapes).
texts = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_same_value_as_the_cleaning_walk(value: Any) -> None:
    text = jsonb_text(value)
    assert json.loads(text) == json.loads(json.dumps(jsonb_safe(value)))
    # What Postgres refuses: NUL in a string, and text that is not valid UTF-8.
    assert not any("\x00" in s for s in strings(json.loads(text)))
    text.encode("utf-8")


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_nul_and_lone_surrogates_are_cleaned() -> None:
    assert json.loads(jsonb_text({"a\x00": "b\ud800\x00"})) == {"a": "b?"}


def test_numbers_beyond_double_range_become_null() -> None:
    # `json.loads("1e400")` is inf; jsonb has no infinity, so the value is written as null.
    assert json.loads(jsonb_text({"face_value": float("inf")})) == {"face_value": None}


def test_uuids_of_any_class_are_written_as_strings() -> None:
    # asyncpg hands out its own UUID class; rows mix it with the standard one.
    class DriverUUID(uuid.UUID):
        pass

    value = {"a": uuid.UUID(int=1), "b": DriverUUID(int=2)}
    assert json.loads(jsonb_text(value)) == {"a": str(uuid.UUID(int=1)), "b": str(uuid.UUID(int=2))}

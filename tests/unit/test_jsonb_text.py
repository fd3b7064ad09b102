"""`jsonb_text`: the fast JSON writer for jsonb columns gives what the cleaning walk gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from braze_bridge.db.repositories.events import jsonb_safe, jsonb_text

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
    # What jsonb refuses: the NUL escape, and strings that are not valid UTF-8.
    assert "\\u0000" not in text
    text.encode("utf-8")


def test_nul_and_lone_surrogates_are_cleaned() -> None:
    assert json.loads(jsonb_text({"a\x00": "b\ud800\x00"})) == {"a": "b?"}


def test_numbers_beyond_double_range_become_null() -> None:
    # `json.loads("1e400")` is inf; jsonb has no infinity, so the value is written as null.
    assert json.loads(jsonb_text({"face_value": float("inf")})) == {"face_value": None}

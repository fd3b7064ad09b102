"""JSON Merge Patch for connection settings, and the audit's changed field paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braze_bridge.admin.json_merge import changed_paths, merge_patch

SETTINGS = {
    "events": {"shared": True, "outcomes": ["*"]},
    "reward_states": ["FULFILLED"],
    "event_names": {"shared": "x_shared"},
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({}, SETTINGS),
        (
            {"events": {"shared": False}},
            {**SETTINGS, "events": {"shared": False, "outcomes": ["*"]}},
        ),
        ({"reward_states": ["EARNED"]}, {**SETTINGS, "reward_states": ["EARNED"]}),
        ({"event_names": {"shared": None}}, {**SETTINGS, "event_names": {}}),
        ({"event_names": None}, {k: v for k, v in SETTINGS.items() if k != "event_names"}),
        ({"new": {"a": None, "b": 1}}, {**SETTINGS, "new": {"b": 1}}),
        ({"events": "flat"}, {**SETTINGS, "events": "flat"}),
    ],
    ids=[
        "empty",
        "nested",
        "list-replaces",
        "null-removes-member",
        "null-removes-object",
        "new-object",
        "scalar-replaces-object",
    ],
)
def test_merge_patch_follows_rfc_7396(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_patch(SETTINGS, patch) == expected


def test_merge_patch_never_mutates_its_inputs() -> None:
    target = {"events": {"shared": True}}
    merge_patch(target, {"events": {"shared": False}})
    assert target == {"events": {"shared": True}}


def test_changed_paths_name_leaves_only() -> None:
    after = merge_patch(SETTINGS, {"events": {"shared": False}, "event_names": {"x": "y"}})
    assert changed_paths(SETTINGS, after, "settings") == [
        "settings.event_names.x",
        "settings.events.shared",
    ]


json_objects = st.recursive(
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
    lambda children: st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(json_objects, json_objects)
def test_a_patch_is_applied_once_and_for_all(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert changed_paths(once, once, "s") == []

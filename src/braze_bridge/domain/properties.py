"""Braze's rules for custom event properties and string values, applied before anything is queued.

Braze rejects a request whose event has a property named `time` or `event_name`, an empty name or
one starting with `$`; string values longer than 255 characters are cut here rather than risk the
object being refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_STRING_LENGTH = 255
RESERVED_EVENT_PROPERTIES = frozenset({"time", "event_name"})


def clip_string(value: str) -> str:
    return value if len(value) <= MAX_STRING_LENGTH else value[:MAX_STRING_LENGTH]


def is_valid_property_name(name: str) -> bool:
    return (
        bool(name)
        and not name.startswith("$")
        and len(name) <= MAX_STRING_LENGTH
        and name not in RESERVED_EVENT_PROPERTIES
    )


def event_properties(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the properties Braze accepts: valid names, no None; long strings cut to 255."""
    # The checks of is_valid_property_name and clip_string, inlined: this runs for every
    # property of every event.
    properties: dict[str, Any] = {}
    for name, value in values.items():
        if (
            value is None
            or not name
            or name[0] == "$"
            or len(name) > MAX_STRING_LENGTH
            or name in RESERVED_EVENT_PROPERTIES
        ):
            continue
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            value = value[:MAX_STRING_LENGTH]
        properties[name] = value
    return properties


def attribute_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values without None (None would erase the attribute); strings cut to 255."""
    return {
        name: value[:MAX_STRING_LENGTH]
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH
        else value
        for name, value in values.items()
        if value is not None
    }

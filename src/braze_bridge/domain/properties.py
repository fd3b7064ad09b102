"""Braze's rules for custom event properties and string values, applied before anything is queued.

Braze rejects a request whose event has a property named `time` or `event_name`, an empty name or
one starting with `$`; string values longer than 255 characters are cut here rather than risk the
object being refused. A http(s) link that long is left out instead: cut, it would be a broken link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braze_bridge.braze.models import RESERVED_EVENT_PROPERTIES
from braze_bridge.domain.coercion import is_long_link, long_link_note

MAX_STRING_LENGTH = 255


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
    """Keep the properties Braze accepts: valid names, no None; long strings cut to 255.

    A string over 255 characters that is a http(s) link is left out, not cut into a broken link.
    """
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
            if is_long_link(value):
                continue
            value = value[:MAX_STRING_LENGTH]
        properties[name] = value
    return properties


def attribute_values(values: Mapping[str, Any], notes: list[str] | None = None) -> dict[str, Any]:
    """Attribute values without None (None would erase the attribute); strings cut to 255.

    A http(s) link over 255 characters is left out, not cut into a broken link; why goes to
    `notes` when given.
    """
    result: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            if is_long_link(value):
                if notes is not None:
                    notes.append(f"{name} not sent: {long_link_note(value)}")
                continue
            value = value[:MAX_STRING_LENGTH]
        result[name] = value
    return result

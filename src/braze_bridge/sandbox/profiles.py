"""What a valid attributes object does to a stored profile, as Braze documents it.

A value replaces the stored one, `null` removes it, `{"inc": n}` adds, `{"add": [...],
"remove": [...]}` edits a simple array. A nested object replaces the stored object unless the
attributes object carries `_merge_objects: true` (then it is deep-merged). An array of
objects takes `$add`, `$remove` (by `$identifier_key` / `$identifier_value`) and `$update`
(the matched objects merged with `$new_object` under `_merge_objects`, replaced by it without),
applied in Braze's order: add, remove, update (braze-inc/braze-docs
`_docs/_user_guide/data/activation/custom_data/custom_attributes/array_of_objects.md`,
`nested_custom_attribute_support.md`, `_docs/_api/objects_filters/user_attributes_object.md`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from braze_bridge.braze.models import MERGE_OBJECTS
from braze_bridge.sandbox.validation import ARRAY_OPERATORS, is_nested

# Object members that address the profile or steer the request, not attributes.
NOT_ATTRIBUTES: Final = frozenset(
    {"external_id", "user_alias", "braze_id", "app_id", "push_token_import"}
)


# Stored values share structure with the logged request bodies: nothing here changes a dict
# or list in place, every update builds new ones.


def deep_merge(stored: Any, update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(stored) if isinstance(stored, Mapping) else {}
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping) and set(value) != {"$time"}:
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _matches(item: Any, entry: Mapping[str, Any]) -> bool:
    return isinstance(item, Mapping) and item.get(entry["$identifier_key"]) == entry.get(
        "$identifier_value"
    )


def _array_operations(stored: Any, value: Mapping[str, Any], merge: bool) -> list[Any]:
    items = list(stored) if isinstance(stored, list) else []
    items.extend(value.get("$add") or [])
    for entry in value.get("$remove") or []:
        items = [item for item in items if not _matches(item, entry)]
    for entry in value.get("$update") or []:
        new = entry["$new_object"]
        items = [
            (deep_merge(item, new) if merge else new) if _matches(item, entry) else item
            for item in items
        ]
    return items


def _simple_array(stored: Any, value: Mapping[str, Any]) -> list[Any]:
    items = list(stored) if isinstance(stored, list) else []
    items.extend(item for item in value.get("add") or [] if item not in items)
    removed = value.get("remove") or []
    return [item for item in items if item not in removed]


def apply_attributes(
    attributes: dict[str, Any], obj: Mapping[str, Any], *, nested_dropped: bool
) -> None:
    """Update `attributes` (a profile's custom and standard attributes) from `obj`; with
    `nested_dropped` every nested update is left out, as Braze does when one in the request
    is invalid."""
    merge = obj.get(MERGE_OBJECTS) is True
    for name, value in obj.items():
        if name in NOT_ATTRIBUTES or name.startswith("_"):
            continue
        if is_nested(value):
            if nested_dropped:
                continue
            stored = attributes.get(name)
            if isinstance(value, dict) and value and set(value) <= ARRAY_OPERATORS:
                attributes[name] = _array_operations(stored, value, merge)
            elif isinstance(value, dict) and merge:
                attributes[name] = deep_merge(stored, value)
            else:
                attributes[name] = value
        elif value is None:
            attributes.pop(name, None)
        elif isinstance(value, dict) and set(value) == {"inc"}:
            current = attributes.get(name)
            base = current if isinstance(current, int | float) else 0
            attributes[name] = base + value["inc"]
        elif isinstance(value, dict) and set(value) <= {"add", "remove"} and value:
            attributes[name] = _simple_array(attributes.get(name), value)
        else:
            attributes[name] = value

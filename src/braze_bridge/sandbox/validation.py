"""Braze's per-object rules for `/users/track`, as the sandbox enforces them.

Each check returns the error `type` Braze would put in `errors[]`, or None. Sources:
braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`, the user attributes,
event and purchase object pages under `_docs/_api/objects_filters/`, and for nested values
`_docs/_user_guide/data/activation/custom_data/custom_attributes/nested_custom_attribute_support.md`
and `array_of_objects.md`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from braze_bridge.braze.models import (
    BRAZE_CURRENCIES,
    RESERVED_EVENT_PROPERTIES,
    RESERVED_PURCHASE_PROPERTIES,
    SUBSCRIPTION_STATES,
)

PRIMARY_IDS: Final = ("external_id", "user_alias", "braze_id")
MAX_EXTERNAL_ID_BYTES: Final = 987
MAX_KEY_CHARS: Final = 255
# Operators of an array of objects, and the keys of their entries.
ARRAY_OPERATORS: Final = frozenset({"$add", "$remove", "$update"})
ENTRY_KEYS: Final = frozenset({"$identifier_key", "$identifier_value", "$new_object"})
_ABSENT = object()
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_WHITESPACE: Final = re.compile(r"\s")


def valid_time(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        datetime.fromisoformat(value)  # Python 3.11+ reads a trailing "Z" as UTC
    except ValueError:
        try:  # what that misses, e.g. a date with "Z" ("2026-01-01Z")
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
    return True


def identifier_error(obj: Mapping[str, Any]) -> str | None:
    # Runs once per object: plain tests, no intermediate lists or generators.
    primaries = ("external_id" in obj) + ("user_alias" in obj) + ("braze_id" in obj)
    if primaries > 1:
        return "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"
    if not primaries:
        email, phone = obj.get("email"), obj.get("phone")
        if not (isinstance(email, str) and email) and not (isinstance(phone, str) and phone):
            return "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
    value = obj.get("external_id", _ABSENT)
    if value is not _ABSENT:
        if not isinstance(value, str) or not value:
            return "'external_id' must be a non-empty string"
        # UTF-8 takes at most 4 bytes a character: short ids need no encoding to be checked.
        if len(value) > 246 and len(value.encode()) > MAX_EXTERNAL_ID_BYTES:
            return "EXTERNAL_USER_ID_TOO_LARGE"
    if "user_alias" in obj:
        alias = obj["user_alias"]
        if not isinstance(alias, Mapping) or not all(
            isinstance(alias.get(k), str) and 0 < len(alias[k].encode()) <= 236
            for k in ("alias_name", "alias_label")
        ):
            return "'user_alias' needs a non-empty 'alias_name' and 'alias_label'"
    return None


def user_key(obj: Mapping[str, Any]) -> str:
    """Which profile a (valid) object names, for counting distinct users."""
    for key in ("external_id", "braze_id", "email", "phone"):
        if isinstance(obj.get(key), str):
            value = obj[key]
            return f"{key}:{value.lower() if key == 'email' else value}"
    alias = obj.get("user_alias")
    if isinstance(alias, Mapping):
        return f"alias:{alias.get('alias_label')}:{alias.get('alias_name')}"
    return f"object:{id(obj)}"


def _properties_error(props: Any, reserved: frozenset[str]) -> str | None:
    if props is None:
        return None
    if not isinstance(props, Mapping):
        return "Invalid 'properties' field"
    for key in props:
        if not key or len(key) > MAX_KEY_CHARS or key.startswith("$") or key in reserved:
            return "Invalid 'properties' field"
    return None


def object_error(array: str, obj: Any) -> str | None:
    """Why Braze refuses this object of `array` (it is named in `errors[]`), or None."""
    if not isinstance(obj, Mapping):
        return f"'{array}' objects must be JSON objects"
    problem = identifier_error(obj)
    if problem:
        return problem
    if array == "attributes":
        for key in ("email_subscribe", "push_subscribe"):
            if key in obj and obj[key] not in SUBSCRIPTION_STATES:
                return f"BAD_{key.split('_')[0].upper()}_SUBSCRIPTION_STATE"
        if "email" in obj and obj["email"] is not None and "@" not in str(obj["email"]):
            return "EMAIL_BAD_FORMAT"
        for key in obj:
            if key[:1] == "$":
                return "attribute names must not start with '$'"
        return None
    if array == "events":
        if not isinstance(obj.get("name"), str) or not obj["name"]:
            return "'name' is required"
        if not valid_time(obj.get("time")):
            return "'time' is required and must be ISO 8601"
        return _properties_error(obj.get("properties"), RESERVED_EVENT_PROPERTIES)
    if not isinstance(obj.get("product_id"), str) or not obj["product_id"]:
        return "'product_id' is required"
    if not isinstance(obj.get("currency"), str) or len(obj["currency"]) != 3:
        return "'currency' is not valid"
    if obj["currency"] not in BRAZE_CURRENCIES:
        # Braze's REST docs do not say what it answers here (its SDKs drop such a purchase
        # with a warning): the sandbox refuses the object, so a test cannot pass on it.
        return "'currency' is not a currency Braze supports"
    if not isinstance(obj.get("price"), int | float) or isinstance(obj.get("price"), bool):
        return "'price' is not valid"
    quantity = obj.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= 100:
        return "'quantity' is not valid"
    if not valid_time(obj.get("time")):
        return "'time' is required and must be ISO 8601"
    return _properties_error(obj.get("properties"), RESERVED_PURCHASE_PROPERTIES)


# ─── nested custom attributes ──────────────────────────────────────────────────────────────────


def is_nested(value: Any) -> bool:
    """A nested custom attribute (object, array of objects, or an operation on one), as
    opposed to a scalar, a date, a simple array or a simple array/number operation."""
    if type(value) in _SCALARS:
        return False
    if isinstance(value, list):
        return any(isinstance(item, dict) for item in value)
    if not isinstance(value, dict):
        return False
    keys = set(value)
    if keys == {"$time"} or keys == {"inc"}:
        return False
    return not (keys and keys <= {"add", "remove"})


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "an empty key"
    if len(key) > MAX_KEY_CHARS:
        return f"a key over {MAX_KEY_CHARS} characters"
    if "." in key or "$" in key:
        return f"the key {key!r} holds '.' or '$'"
    if _WHITESPACE.search(key):
        return f"the key {key!r} holds a space"
    return None


def _value_problem(value: Any) -> str | None:
    if value is None:
        return "a null"
    if isinstance(value, str):
        # Braze's limit; what it does past it is undocumented: the strict reading.
        return f"a string over {MAX_KEY_CHARS} characters" if len(value) > MAX_KEY_CHARS else None
    if isinstance(value, dict):
        if set(value) == {"$time"}:
            return None if valid_time(value["$time"]) else "a '$time' that is not ISO 8601"
        for key, item in value.items():
            problem = _key_problem(key) or _value_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for item in value:
            problem = _value_problem(item)
            if problem:
                return problem
    return None


def _operation_problem(value: Mapping[str, Any]) -> str | None:
    for operator, entries in value.items():
        if not isinstance(entries, list):
            return f"{operator} without a list"
        for entry in entries:
            if operator == "$add":
                problem = _value_problem(entry)
            elif not isinstance(entry, dict) or not set(entry) <= ENTRY_KEYS:
                problem = f"an {operator} entry that is not an identifier object"
            elif _key_problem(entry.get("$identifier_key")) or entry.get("$identifier_value") in (
                None,
                "",
            ):
                problem = f"an {operator} entry without $identifier_key and $identifier_value"
            elif operator == "$update":
                new = entry.get("$new_object")
                problem = (
                    "an $update without $new_object"
                    if not isinstance(new, dict)
                    else _value_problem(new)
                )
            else:
                problem = None
            if problem:
                return problem
    return None


def nested_update_problem(obj: Mapping[str, Any]) -> str | None:
    """What makes Braze drop every nested update of the request this attributes object is in
    (it still answers 201): a key with a space, '.' or '$', a null, a bad `$time`; and, as the
    strict reading of Braze's 255-character limit, a longer key or string."""
    for name, value in obj.items():
        if not is_nested(value):
            continue
        if isinstance(value, dict) and value and set(value) <= ARRAY_OPERATORS:
            problem = _operation_problem(value)
        else:
            problem = _value_problem(value)
        if problem:
            return f"{name}: {problem}"
    return None

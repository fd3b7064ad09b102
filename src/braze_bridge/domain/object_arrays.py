"""Array-of-objects updates: Braze's `$add` / `$remove` / `$update` on one attribute. Pure.

Sending a whole array of objects replaces what Braze stores. A mapping that asks for an
operation instead sends only the change (braze-inc/braze-docs
`_docs/_user_guide/data/activation/custom_data/custom_attributes/array_of_objects.md`):
`{"$add": [objects]}`, `{"$remove": [{"$identifier_key": k, "$identifier_value": v}]}`,
`{"$update": [{"$identifier_key": k, "$identifier_value": v, "$new_object": {...}}]}`. An
`$update` needs `"_merge_objects": true` on its attributes object, or Braze replaces each
matched object by `$new_object` instead of merging it.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from braze_bridge.domain.coercion import Coerced, CoercionResult, Json, Uncoercible, coerce

ArrayOperation = Literal["replace", "add", "remove", "update"]
ARRAY_OPERATIONS: Final[tuple[str, ...]] = get_args(ArrayOperation)
# Operations that name the objects they change by one of their keys.
KEYED_OPERATIONS: Final = frozenset({"remove", "update"})
# Braze's operator per operation ("replace" sends the array itself).
OPERATORS: Final = {"add": "$add", "remove": "$remove", "update": "$update"}


def _identifier(item: Json, key: str) -> Json:
    value = item.get(key) if isinstance(item, dict) else item
    if isinstance(value, str | int | float) and value != "":
        return value
    return None


def object_array_operation(
    value: Json, operation: ArrayOperation, identifier_key: str | None
) -> CoercionResult:
    """`value` (a list of objects; for `remove` also a list of identifier values) as the
    attribute value of `operation`. An item that cannot take part is left out with a note;
    nothing usable left, or a null, is Uncoercible (never sent: a null would erase the array)."""
    if operation == "replace":
        return coerce(value, "object_array")
    if value is None:
        return Uncoercible(f"null has nothing to {operation} (an array operation never erases)")
    scalars = isinstance(value, list) and all(not isinstance(i, dict | list) for i in value)
    if operation == "remove" and scalars:
        coerced: CoercionResult = Coerced([i for i in value if i is not None])
    else:
        coerced = coerce(value, "object_array")
    if not isinstance(coerced, Coerced):
        return coerced
    notes = list(coerced.notes)
    entries: list[Json] = []
    for position, item in enumerate(coerced.value):
        if operation == "add":
            entries.append(item)
            continue
        assert identifier_key is not None  # noqa: S101 - settings require it for remove/update
        ident = _identifier(item, identifier_key)
        if ident is None:
            notes.append(f"item {position} left out: no text or number {identifier_key!r}")
            continue
        entry: dict[str, Json] = {"$identifier_key": identifier_key, "$identifier_value": ident}
        if operation == "update":
            rest = {k: v for k, v in item.items() if k != identifier_key}
            if not rest:
                notes.append(f"item {position} left out: nothing to update but {identifier_key!r}")
                continue
            entry["$new_object"] = rest
        entries.append(entry)
    if not entries:
        return Uncoercible(f"no item to {operation}" + (f": {'; '.join(notes)}" if notes else ""))
    return Coerced({OPERATORS[operation]: entries}, tuple(notes))

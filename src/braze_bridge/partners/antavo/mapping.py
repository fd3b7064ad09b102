"""Antavo events + connection settings → Braze operations. Pure.

- field changes: every mapped field present (`all_mapped`, Antavo's behaviour) or only those
  that differ from `context.known_values` (`changed_only`), each coerced to its mapping's type;
- program events: a custom event `<prefix><action>` with properties Braze accepts;
- checkout: the same event, or Braze purchases when `checkout_as_purchase` is on;
- workflow syncs: ad-hoc attributes, typed by the body, a field mapping, or inferred.
A value that cannot be coerced fails only its attribute; the reason goes to `Mapped.notes`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel

from braze_bridge.braze.models import (
    BRAZE_CURRENCIES,
    MERGE_OBJECTS,
    RESERVED_EVENT_PROPERTIES,
    RESERVED_PURCHASE_PROPERTIES,
)
from braze_bridge.domain.coercion import (
    MAX_STRING_CHARS,
    BrazeType,
    Coerced,
    Json,
    coerce,
    coerce_attribute,
    format_datetime,
    is_long_link,
    long_link_note,
    same_value,
)
from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.mapping import Filtered, Mapped, MappingContext, Rejected
from braze_bridge.domain.object_arrays import object_array_operation
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.statuses import ObjectKind
from braze_bridge.partners.antavo.normalize import (
    AntavoEvent,
    Checkout,
    FieldChange,
    ProgramEvent,
    WorkflowSync,
)
from braze_bridge.partners.antavo.settings import AntavoSettings, FieldMapping

MAX_EVENT_NAME_CHARS = 255
MAX_EVENT_PROPERTIES_BYTES = 102_400
MAX_PURCHASE_PROPERTIES_BYTES = 51_200
MAX_PURCHASE_QUANTITY = 100
# How many names a note lists before it says "and N more".
NOTE_NAMES = 10


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(listed[:NOTE_NAMES])
    return shown + (f" and {len(listed) - NOTE_NAMES} more" if len(listed) > NOTE_NAMES else "")


def antavo_settings(settings: BaseModel) -> AntavoSettings:
    if isinstance(settings, AntavoSettings):
        return settings
    return AntavoSettings.model_validate(settings.model_dump())


def map_event(event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
    """The Braze operations for one Antavo event; raises Filtered or Rejected when none apply."""
    config = antavo_settings(settings)
    if isinstance(event, FieldChange):
        return _map_field_change(event, config, context)
    if isinstance(event, WorkflowSync):
        return _map_sync(event, config, context)
    if isinstance(event, Checkout):
        return _map_checkout(event, config, context)
    if isinstance(event, ProgramEvent):
        return _map_program_event(event, config, context)
    raise Rejected(f"not an Antavo event ({event.kind})")


# ─── attributes ────────────────────────────────────────────────────────────────────────────────


def read_trait(traits: Mapping[str, Any], field: str) -> tuple[bool, Any]:
    """(found, value) of a loyalty field: its exact name first, else a dotted path into traits."""
    if field in traits:
        return True, traits[field]
    if "." not in field:
        return False, None
    current: Any = traits
    for part in field.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


class _Attributes:
    """Coerced attribute values of one event, plus what went wrong or was adjusted."""

    def __init__(self) -> None:
        self.values: dict[str, Json] = {}
        self.notes: list[str] = []
        self.failed = 0
        # Attributes sent as array operations ($add / $remove / $update): name → operations.
        self.operations: dict[str, set[str]] = {}

    def add(
        self,
        name: str,
        raw: Json,
        to: BrazeType,
        source: str | None = None,
        mapping: FieldMapping | None = None,
    ) -> None:
        label = f"{name} (from {source})" if source and source != name else name
        operation = mapping.array_operation if mapping and to == "object_array" else "replace"
        if operation == "replace":
            result = coerce_attribute(name, raw, to)
        else:
            assert mapping is not None  # noqa: S101 - an operation comes from a mapping
            result = object_array_operation(raw, operation, mapping.identifier_key)
        if isinstance(result, Coerced):
            self.notes.extend(f"{label}: {note}" for note in result.notes)
            if operation == "replace":
                self.values[name] = result.value
            else:
                # Several loyalty fields may feed one array: their operators share its object.
                self.values[name] = {**self.values.get(name, {}), **result.value}
                self.operations.setdefault(name, set()).add(operation)
        else:
            self.failed += 1
            self.notes.append(f"{label} not sent: {result.reason}")


def _attribute_objects(
    values: dict[str, Json], operations: Mapping[str, set[str]], settings: AntavoSettings
) -> list[dict[str, Json]]:
    """The attributes objects to send: one, or two when an `$update` needs `_merge_objects`
    and the connection does not merge its other nested objects (the flag applies to every
    object in its attributes object, so they travel apart)."""
    updates = {name: values[name] for name in values if "update" in operations.get(name, ())}
    others = {name: value for name, value in values.items() if name not in updates}
    if settings.merge_objects:
        if any(isinstance(value, dict) for value in values.values()):
            # Braze overwrites a nested object unless the attributes object asks it to merge.
            return [{**values, MERGE_OBJECTS: True}]
        return [values] if values else []
    if not updates:
        return [others] if others else []
    overwritten = [v for n, v in others.items() if isinstance(v, dict) and n not in operations]
    if overwritten or any(isinstance(v, list) for v in others.values()):
        return [others, {**updates, MERGE_OBJECTS: True}]
    return [{**values, MERGE_OBJECTS: True}]


def _attribute_operations(
    user: UserRef, attributes: _Attributes, settings: AntavoSettings, context: MappingContext
) -> Mapped:
    notes = list(attributes.notes)
    if not attributes.values:
        raise Rejected("; ".join(notes) or "no attribute to send")
    to_send = attributes.values
    saved = 0
    if settings.sync_mode == "changed_only":
        known = context.known_values
        # An array operation is a change by itself: it is always sent.
        to_send = {
            name: value
            for name, value in attributes.values.items()
            if name in attributes.operations
            or name not in known
            or not same_value(known[name], value)
        }
        unchanged = [name for name in attributes.values if name not in to_send]
        saved = len(unchanged)
        if unchanged:
            notes.append(
                f"changed_only: {saved} unchanged attribute(s) not sent: {_names(unchanged)}"
            )
    operations = [
        Operation.attributes(user, payload)
        for payload in _attribute_objects(to_send, attributes.operations, settings)
    ]
    return Mapped(operations=operations, notes=notes, data_points_saved=saved)


def _map_field_change(
    event: FieldChange, settings: AntavoSettings, context: MappingContext
) -> Mapped:
    if not settings.field_mappings:
        raise Filtered("no field mappings configured for this connection")
    attributes = _Attributes()
    used: set[str] = set()
    for mapping in settings.field_mappings:
        found, raw = read_trait(event.traits, mapping.loyalty_field)
        if not found:
            continue
        used.add(mapping.loyalty_field.split(".", 1)[0])
        attributes.add(mapping.braze_attribute, raw, mapping.type, mapping.loyalty_field, mapping)
    if not attributes.values and not attributes.failed:
        raise Filtered(
            f"none of the {len(settings.field_mappings)} mapped loyalty fields is in the "
            f"change (traits: {_names(sorted(event.traits)) or 'none'})"
        )
    unmapped = sorted(set(event.traits) - used)
    mapped = _attribute_operations(event.user.ref(), attributes, settings, context)
    if unmapped:
        mapped.notes.append(f"traits not mapped: {_names(unmapped)}")
    return mapped


def _map_sync(event: WorkflowSync, settings: AntavoSettings, context: MappingContext) -> Mapped:
    attributes = _Attributes()
    for name, raw in event.attributes.items():
        mapping = settings.mapping_for(name)
        to: BrazeType = event.types.get(name) or (mapping.type if mapping else "auto")
        attributes.add(name, raw, to, mapping=mapping)
    return _attribute_operations(event.user.ref(), attributes, settings, context)


# ─── events and purchases ──────────────────────────────────────────────────────────────────────


def _forwarded(action: str, settings: AntavoSettings) -> None:
    if not any(fnmatchcase(action, pattern) for pattern in settings.events):
        raise Filtered(f"action {action!r} is not in this connection's events list")


def _event_name(action: str, settings: AntavoSettings) -> str:
    name = f"{settings.event_name_prefix}{action}"
    if name.startswith("$"):
        raise Rejected(f"event name {name!r}: Braze event names must not start with '$'")
    if len(name) > MAX_EVENT_NAME_CHARS:
        raise Rejected(f"event name is longer than {MAX_EVENT_NAME_CHARS} characters")
    return name


def _event_time(event: AntavoEvent, context: MappingContext, notes: list[str]) -> str:
    if event.unparsed_timestamp is not None:
        notes.append(f"timestamp {event.unparsed_timestamp!r} is not a date; used receipt time")
    return format_datetime(event.occurred_at or context.received_at)


def _json_size(value: Json) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def _properties(
    raw: Mapping[str, Any], reserved: frozenset[str], max_bytes: int, notes: list[str]
) -> dict[str, Json]:
    """Event or purchase properties as Braze takes them: valid keys, short strings, no nulls."""
    result: dict[str, Json] = {}
    for key, value in raw.items():
        if not key or key.startswith("$") or len(key) > MAX_STRING_CHARS:
            notes.append(f"property {key[:40]!r} dropped: Braze does not accept that name")
            continue
        if key in reserved:
            notes.append(f"property {key!r} dropped: the name is reserved by Braze")
            continue
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            notes.append(f"property {key!r} dropped: {value} is not a finite number")
            continue
        if is_long_link(value):
            notes.append(f"property {key!r} dropped: {long_link_note(value)}")
            continue
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            notes.append(f"property {key!r}: cut to {MAX_STRING_CHARS} characters")
            value = value[:MAX_STRING_CHARS]
        result[key] = value
    size = _json_size(result)
    while size > max_bytes and result:
        # Drop the largest property until the rest fits: one oversized blob must not cost the event.
        largest = max(result, key=lambda k: _json_size(result[k]))
        notes.append(f"property {largest!r} dropped: properties exceed {max_bytes} bytes")
        del result[largest]
        size = _json_size(result)
    return result


def _custom_event(
    event: ProgramEvent | Checkout,
    action: str,
    settings: AntavoSettings,
    context: MappingContext,
) -> Mapped:
    notes: list[str] = []
    raw = dict(event.properties)
    if event.account is not None:
        raw.setdefault("account", event.account)
    payload: dict[str, Json] = {
        "name": _event_name(action, settings),
        "time": _event_time(event, context, notes),
    }
    properties = _properties(raw, RESERVED_EVENT_PROPERTIES, MAX_EVENT_PROPERTIES_BYTES, notes)
    if properties:
        payload["properties"] = properties
    if context.app_id:
        payload["app_id"] = context.app_id
    return Mapped([Operation(ObjectKind.EVENTS, event.user.ref(), payload)], notes)


def _map_program_event(
    event: ProgramEvent, settings: AntavoSettings, context: MappingContext
) -> Mapped:
    _forwarded(event.action, settings)
    return _custom_event(event, event.action, settings, context)


def _number(value: Json, what: str) -> float:
    result = coerce(value, "float")
    if not isinstance(result, Coerced):
        raise ValueError(f"{what} {result.reason.removesuffix(' (type float)')}")
    number = float(result.value)
    if number < 0:
        raise ValueError(f"{what} {number} is negative")
    return number


def _purchase_lines(
    event: Checkout, settings: AntavoSettings, notes: list[str]
) -> list[tuple[str, float, int, dict[str, Json]]]:
    """(product_id, unit price, quantity, item extras) per item; a bad item fails alone."""
    config = settings.purchase
    items = event.properties.get("items")
    if not items:
        total = event.properties.get("total")
        if total is None:
            raise Rejected("checkout has neither items nor a total: no purchase to send")
        try:
            return [(config.fallback_product_id, _number(total, "total"), 1, {})]
        except ValueError as exc:
            raise Rejected(f"checkout: {exc}") from None
    if not isinstance(items, list):
        raise Rejected("checkout items is not a list")
    lines = []
    consumed = {config.product_id_field, config.price_field, config.subtotal_field}
    consumed.add(config.quantity_field)
    for position, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("is not an object")
            product = item.get(config.product_id_field)
            if isinstance(product, bool) or not isinstance(product, str | int) or product == "":
                raise ValueError(f"has no {config.product_id_field}")
            product_id = str(product)[:MAX_STRING_CHARS]
            quantity_raw = item.get(config.quantity_field, 1)
            quantity_result = coerce(quantity_raw, "integer")
            if not isinstance(quantity_result, Coerced) or int(quantity_result.value) < 1:
                raise ValueError(f"{config.quantity_field} {quantity_raw!r} is not a count >= 1")
            quantity = int(quantity_result.value)
            if item.get(config.price_field) is not None:
                price = _number(item[config.price_field], config.price_field)
            elif item.get(config.subtotal_field) is not None:
                price = _number(item[config.subtotal_field], config.subtotal_field) / quantity
            else:
                raise ValueError(f"has neither {config.price_field} nor {config.subtotal_field}")
        except ValueError as exc:
            notes.append(f"checkout item {position} not sent: {exc}")
            continue
        extras = {k: v for k, v in item.items() if k not in consumed}
        lines.append((product_id, price, quantity, extras))
    if not lines:
        raise Rejected("; ".join(notes))
    return lines


def _currency(event: Checkout, settings: AntavoSettings) -> str:
    given = event.properties.get("currency")
    if isinstance(given, str) and len(given.strip()) == 3 and given.strip().isalpha():
        code = given.strip().upper()
        if code not in BRAZE_CURRENCIES:
            # Braze would answer 201 and not log the purchase; another currency would misstate it.
            raise Rejected(
                f"checkout currency {code!r} is not supported by Braze: it does not log "
                "purchases in that currency"
            )
        return code
    if settings.purchase.default_currency:
        return settings.purchase.default_currency
    if given is not None:
        raise Rejected(f"checkout currency {given!r} is not an ISO 4217 code")
    raise Rejected("checkout has no currency and purchase.default_currency is not set")


def _map_checkout(event: Checkout, settings: AntavoSettings, context: MappingContext) -> Mapped:
    _forwarded(event.action, settings)
    if not settings.checkout_as_purchase:
        return _custom_event(event, event.action, settings, context)
    notes: list[str] = []
    currency = _currency(event, settings)
    time = _event_time(event, context, notes)
    user = event.user.ref()
    operations = []
    for product_id, price, quantity, extras in _purchase_lines(event, settings, notes):
        raw = dict(extras)
        if event.transaction_id is not None:
            raw["transaction_id"] = event.transaction_id
        if event.account is not None:
            raw.setdefault("account", event.account)
        properties = _properties(
            raw, RESERVED_PURCHASE_PROPERTIES, MAX_PURCHASE_PROPERTIES_BYTES, notes
        )
        remaining = quantity
        while remaining > 0:
            # Braze caps quantity at 100 per purchase object; larger lines become several.
            batch = min(remaining, MAX_PURCHASE_QUANTITY)
            remaining -= batch
            payload: dict[str, Json] = {
                "product_id": product_id,
                "currency": currency,
                "price": round(price, 6),
                "quantity": batch,
                "time": time,
            }
            if properties:
                payload["properties"] = properties
            if context.app_id:
                payload["app_id"] = context.app_id
            operations.append(Operation.purchase(user, payload))
    return Mapped(operations, notes)

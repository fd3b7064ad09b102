"""Extole bodies as we read them: `{"value": …}` wrappers unwrapped, `data` merged, fields typed.

Extole sends several shapes (Extole's webhook pages in extole/product-docs; docs/extole.md section 5): flat reward bodies, the
share-link extension body, bodies mapped per step, and the "entire object" envelope whose values
sit in `data`, sometimes as `{"value": …, "type": …, "scope": …}`. `flatten_body` turns each of
them into one flat mapping (top-level keys win over `data` keys) and `ExtoleFields` reads the
fields we use from it. Reading never fails: a field of the wrong JSON type is treated as absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Scalar = str | int | float | bool

_WRAPPER_KEYS = frozenset({"value", "type", "scope"})
_INTEGER = re.compile(r"[+-]?\d{1,15}")


def unwrap(value: Any) -> Any:
    """`{"value": x}` (optionally with `type`/`scope`) → x, repeatedly; anything else as is."""
    if not isinstance(value, dict):
        return value
    for _ in range(8):  # wrappers inside wrappers are possible but never deep
        if isinstance(value, dict) and "value" in value and set(value) <= _WRAPPER_KEYS:
            value = value["value"]
        else:
            break
    return value


def flatten_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields, then `data` fields that the top level does not already have."""
    flat = {key: unwrap(value) for key, value in body.items()}
    data = flat.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in flat:
                flat[key] = unwrap(value)
    return flat


def _text(value: Any) -> str | None:
    """Strings as sent (trimmed); numbers become their decimal text; other types are absent."""
    if isinstance(value, str):  # first: nearly every field is one
        return value.strip() or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


def _number(value: Any) -> int | float | None:
    """A number sent as a JSON number or as a string (`"50"`, `"12.50"`); Extole does both."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class ExtoleFields:
    """The fields of a flattened Extole body that the mapping reads (docs/extole.md section 6).

    Text fields hold trimmed strings (numbers as their decimal text), `face_value` a number;
    a field that is absent or of another JSON type reads as None. Read-only once read.
    """

    # Kind names, in the order they are consulted.
    event: str | None = None
    event_name: str | None = None
    name: str | None = None
    type: str | None = None

    event_id: str | None = None
    event_time: str | None = None
    timestamp: str | None = None

    partner_user_id: str | None = None
    external_id: str | None = None
    email: str | None = None
    email_address: str | None = None
    recipient_email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    funnel: str | None = None
    journey_name: str | None = None
    rewardee_role: str | None = None
    program: str | None = None
    program_label: str | None = None
    campaign: str | None = None

    channel: str | None = None
    share_channel: str | None = None
    share_link: str | None = None
    share_code: str | None = None
    advocate_code: str | None = None
    list_type: str | None = None

    reward_id: str | None = None
    face_value: int | float | None = None
    face_value_type: str | None = None
    partner_reward_id: str | None = None
    reward_supplier_type: str | None = None

    @classmethod
    def read(cls, flat: Mapping[str, Any]) -> ExtoleFields:
        # Only the keys present are read (bodies carry a few of the fields); the rest stay
        # the class's None. A validating model here cost more than the rest of normalizing.
        fields = cls()
        values = fields.__dict__
        for key, value in flat.items():
            reader = _READERS.get(key)
            if reader is not None:
                values[key] = reader(value)
        return fields

    @property
    def kind_names(self) -> list[str]:
        return [n for n in (self.event, self.event_name, self.name, self.type) if n is not None]

    @property
    def best_email(self) -> str | None:
        for candidate in (self.email, self.email_address, self.recipient_email):
            if candidate is not None and "@" in candidate:
                return candidate
        return None

    @property
    def best_funnel(self) -> str | None:
        return self.funnel or self.journey_name or self.rewardee_role

    @property
    def best_program(self) -> str | None:
        return self.program or self.program_label or self.campaign

    @property
    def best_user_id(self) -> str | None:
        return self.partner_user_id or self.external_id


# How each field is read: every field is text but the reward's face value.
_READERS: dict[str, Callable[[Any], Any]] = {
    name: _number if name == "face_value" else _text for name in ExtoleFields.__annotations__
}


def scalar_fields(flat: Mapping[str, Any], exclude: frozenset[str]) -> dict[str, Scalar]:
    """Every top-level scalar of a flattened body (outcome events carry them as properties)."""
    return {
        key: value
        for key, value in flat.items()
        if key not in exclude
        and isinstance(value, str | int | float | bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    }

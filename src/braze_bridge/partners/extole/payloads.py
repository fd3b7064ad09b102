"""Extole bodies as we read them: `{"value": …}` wrappers unwrapped, `data` merged, fields typed.

Extole sends several shapes (research/extole-antavo.md section 2): flat reward bodies, the
share-link extension body, bodies mapped per step, and the "entire object" envelope whose values
sit in `data`, sometimes as `{"value": …, "type": …, "scope": …}`. `flatten_body` turns each of
them into one flat mapping (top-level keys win over `data` keys) and `ExtoleFields` reads the
fields we use from it. Reading never fails: a field of the wrong JSON type is treated as absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

Scalar = str | int | float | bool

_WRAPPER_KEYS = frozenset({"value", "type", "scope"})
_INTEGER = re.compile(r"[+-]?\d{1,15}")


def unwrap(value: Any) -> Any:
    """`{"value": x}` (optionally with `type`/`scope`) → x, repeatedly; anything else as is."""
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
            flat.setdefault(key, unwrap(value))
    return flat


def _text(value: Any) -> str | None:
    """Strings as sent (trimmed); numbers become their decimal text; other types are absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        return text or None
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


Text = Annotated[str | None, BeforeValidator(_text)]
Number = Annotated[int | float | None, BeforeValidator(_number)]


class ExtoleFields(BaseModel):
    """The fields of a flattened Extole body that the mapping reads (DESIGN section 6)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Kind names, in the order they are consulted.
    event: Text = None
    event_name: Text = None
    name: Text = None
    type: Text = None

    event_id: Text = None
    event_time: Text = None
    timestamp: Text = None

    partner_user_id: Text = None
    external_id: Text = None
    email: Text = None
    email_address: Text = None
    recipient_email: Text = None
    first_name: Text = None
    last_name: Text = None

    funnel: Text = None
    journey_name: Text = None
    rewardee_role: Text = None
    program: Text = None
    program_label: Text = None
    campaign: Text = None

    channel: Text = None
    share_channel: Text = None
    share_link: Text = None
    share_code: Text = None
    advocate_code: Text = None
    list_type: Text = None

    reward_id: Text = None
    face_value: Number = None
    face_value_type: Text = None
    partner_reward_id: Text = None
    reward_supplier_type: Text = None

    @classmethod
    def read(cls, flat: Mapping[str, Any]) -> ExtoleFields:
        known = {key: flat[key] for key in cls.model_fields if key in flat}
        return cls.model_validate(known)

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


def scalar_fields(flat: Mapping[str, Any], exclude: frozenset[str]) -> dict[str, Scalar]:
    """Every top-level scalar of a flattened body (outcome events carry them as properties)."""
    return {
        key: value
        for key, value in flat.items()
        if key not in exclude
        and isinstance(value, str | int | float | bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    }

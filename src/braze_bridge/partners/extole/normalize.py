"""Raw Extole JSON → one typed event: kind recognition, dedupe key, user, time.

Kinds are recognised from `event`, `event_name`, `name` and `type` (in that order), compared
case-insensitively with spaces and dashes read as underscores. A name that is none of the known
kinds is an outcome step, unless it is an envelope word such as `STEP`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, get_args

from braze_bridge.domain.ids import unsendable_identifier_reason
from braze_bridge.domain.mapping import Rejected
from braze_bridge.partners.extole.events import (
    AnyExtoleEvent,
    Outcome,
    Reward,
    RewardState,
    Shared,
    ShareLinkCreated,
    Subscribed,
    Unsubscribed,
)
from braze_bridge.partners.extole.payloads import ExtoleFields, flatten_body, scalar_fields

SHARE_LINK_CREATED = frozenset(
    {
        "share_link_created",
        "advocate_code_created",
        "extole_share_link_created",
        "extole_created_share_link",
    }
)
SHARED = frozenset({"shared", "extole_shared"})
SUBSCRIBED = frozenset({"opted_in", "subscribed", "extole_subscribed"})
UNSUBSCRIBED = frozenset({"opted_out", "unsubscribed", "extole_unsubscribed"})
REWARD_TYPES: dict[str, RewardState] = {
    "reward_earned": "EARNED",
    "reward_fulfilled": "FULFILLED",
    "reward_sent": "SENT",
    "reward_redeemed": "REDEEMED",
    "reward_failed": "FAILED",
    "reward_fulfillment_failed": "FAILED",
    "reward_canceled": "CANCELED",
    "reward_cancelled": "CANCELED",
    "reward_revoked": "REVOKED",
}
# Extole's runtime reward object names the state alone (`"type": "FULFILLED"`) beside a reward_id.
BARE_REWARD_STATES: dict[str, RewardState] = {
    **{state.lower(): state for state in get_args(RewardState)},
    "failed_fulfillment": "FAILED",
    "fulfill_failed": "FAILED",
    "cancelled": "CANCELED",
}
# Envelope `type` values that say what the object is, not which step happened.
ENVELOPE_TYPES = frozenset(
    {"step", "input", "client", "consumer", "generic", "partner", "reward", "event", "webhook"}
)
# Keys that name the kind or the time; outcome properties carry every other scalar.
NON_PROPERTY_KEYS = frozenset(
    {"event", "event_name", "name", "type", "event_time", "timestamp", "time", "funnel", "program"}
)
MAX_ID_LENGTH = 200
# Where the email comes from, in the order `ExtoleFields.best_email` reads them.
_EMAIL_FIELDS = ("email", "email_address", "recipient_email")

_SEPARATORS = re.compile(r"[\s\-]+")
_UNIX_TIME = re.compile(r"\d{9,13}(\.\d+)?")


def canonical_name(name: str) -> str:
    """`"Share Link Created"` → `share_link_created`; `extole-Shared` → `extole_shared`."""
    lowered = name.strip().lower()
    if lowered.isidentifier():  # no spaces or dashes to replace: most names as sent
        return lowered
    return _SEPARATORS.sub("_", lowered)


def step_name(name: str) -> str:
    """An outcome's step without Extole's `extole_` prefix: `extole_converted` → `converted`."""
    canonical = canonical_name(name)
    return canonical.removeprefix("extole_") or canonical


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (with `Z` or an offset; naive means UTC) or Unix seconds/milliseconds."""
    if value is None:
        return None
    try:
        if _UNIX_TIME.fullmatch(value):
            seconds = float(value)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bounded(prefix: str, value: str) -> str:
    """Dedupe keys fit the column: very long ids are hashed rather than cut (no false matches)."""
    if len(value) <= MAX_ID_LENGTH:
        return f"{prefix}:{value}"
    return f"{prefix}-sha256:{hashlib.sha256(value.encode(errors='replace')).hexdigest()}"


def _share_link(link: str | None) -> str | None:
    """Extole's extension sends `share.brand.com/alex01`; Braze messages need a full URL."""
    if link is None:
        return None
    return link if "://" in link else f"https://{link}"


def _recognise(fields: ExtoleFields) -> tuple[str, str] | None:
    """(kind, the name as sent) for the first recognised name, else the outcome step if any."""
    names = fields.kind_names
    for name in names:
        canonical = canonical_name(name)
        if canonical in SHARE_LINK_CREATED:
            return "share_link_created", name
        if canonical in SHARED:
            return "shared", name
        if canonical in SUBSCRIBED:
            return "subscribed", name
        if canonical in UNSUBSCRIBED:
            return "unsubscribed", name
        if canonical in REWARD_TYPES:
            return "reward", name
        if fields.reward_id is not None and canonical in BARE_REWARD_STATES:
            return "reward", name
    for name in names:
        if canonical_name(name) not in ENVELOPE_TYPES:
            return "outcome", name
    return None


def _identifiers(fields: ExtoleFields) -> list[tuple[str, str | None]]:
    """The user id and the email the event will be about, each with the field it came from."""
    user_id = "partner_user_id" if fields.partner_user_id else "external_id"
    best = fields.best_email
    email = next(
        (name for name in _EMAIL_FIELDS if best is not None and getattr(fields, name) == best),
        "email",
    )
    return [(user_id, fields.best_user_id), (email, best)]


def normalize_extole(body: Any, *, received_at: datetime) -> AnyExtoleEvent:
    """Read one Extole webhook body; raises Rejected (`unknown_shape: …`) when it has no kind."""
    del received_at  # the event time falls back to receipt time in the mapping, not here
    if not isinstance(body, dict):
        raise Rejected(f"unknown_shape: body is a JSON {_json_type(body)}, expected an object")
    flat = flatten_body(body)
    fields = ExtoleFields.read(flat)
    recognised = _recognise(fields)
    if recognised is None:
        if fields.reward_id is None:
            raise Rejected("unknown_shape: no event, event_name, name or type field names the kind")
        # Extole's documented minimum, `{reward_id, data}`: a reward whose state the body does
        # not name (the mapping takes the connection's `untyped_reward_state`).
        recognised = ("reward", "")
    kind, sent_name = recognised
    for field, value in _identifiers(fields):
        # Never cleaned: `a<NUL>b` sent as `ab` would be another Braze profile.
        if reason := unsendable_identifier_reason(field, value):
            raise Rejected(reason)

    event_id = fields.event_id
    email = fields.best_email
    # One validation of the whole event, the user included (no model built field by field).
    values: dict[str, Any] = {
        "source_event_id": event_id[:255] if event_id else None,
        "dedupe_key": _bounded("event", event_id) if event_id else None,
        "user": {"external_id": fields.best_user_id, "email": email},
        "occurred_at": parse_time(fields.event_time or fields.timestamp),
        "email": email,
        "first_name": fields.first_name,
        "last_name": fields.last_name,
        "funnel": fields.best_funnel,
        "program": fields.best_program,
    }
    if kind == "share_link_created":
        values["share_link"] = _share_link(fields.share_link)
        values["share_code"] = fields.share_code or fields.advocate_code
        return ShareLinkCreated.model_validate(values)
    if kind == "shared":
        values["share_channel"] = fields.share_channel or fields.channel
        values["share_link"] = _share_link(fields.share_link)
        return Shared.model_validate(values)
    if kind == "subscribed":
        values["list_type"] = fields.list_type
        return Subscribed.model_validate(values)
    if kind == "unsubscribed":
        values["list_type"] = fields.list_type
        return Unsubscribed.model_validate(values)
    if kind == "reward":
        canonical = canonical_name(sent_name)
        if canonical and values["dedupe_key"] is None and fields.reward_id is not None:
            # Each state change of a reward fires one webhook (research section 2d). A body
            # without a type keeps the raw-body hash: its state is not in it.
            values["dedupe_key"] = _bounded("reward", f"{fields.reward_id}:{canonical}")
        if canonical:
            values["state"] = REWARD_TYPES.get(canonical) or BARE_REWARD_STATES[canonical]
            values["reward_type"] = canonical
        else:
            values["state"] = None
            values["reward_type"] = "reward"
        values["reward_id"] = fields.reward_id
        values["face_value"] = fields.face_value
        values["face_value_type"] = fields.face_value_type
        values["coupon_code"] = fields.partner_reward_id
        values["reward_supplier_type"] = fields.reward_supplier_type
        return Reward.model_validate(values)
    values["step"] = step_name(sent_name)
    values["fields"] = scalar_fields(flat, NON_PROPERTY_KEYS)
    return Outcome.model_validate(values)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"

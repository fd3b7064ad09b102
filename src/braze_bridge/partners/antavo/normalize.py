"""Raw Antavo JSON → typed events: which shape it is, who it is about, when, and its dedupe key.

Settings-free on purpose: the stored normalized event can be re-mapped after a settings change.
Values stay as sent; the mapping coerces them to the types the connection configures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from braze_bridge.domain.coercion import BrazeType, parse_datetime
from braze_bridge.domain.events import NormalizedEvent, NormalizedUser
from braze_bridge.domain.ids import unsendable_identifier_reason
from braze_bridge.domain.mapping import Rejected
from braze_bridge.partners.antavo.payloads import (
    EventDocument,
    IdentifyBody,
    SyncBody,
    TrackBody,
)

# Braze rejects longer external ids (EXTERNAL_USER_ID_TOO_LARGE).
MAX_EXTERNAL_ID_BYTES = 987
# events.dedupe_key is 255 characters; a longer id falls back to the body hash.
MAX_DEDUPE_KEY_CHARS = 255
CHECKOUT_ACTION = "checkout"

EXPECTED_SHAPES = (
    '{"type": "identify", "userId", "traits"}, {"type": "track", "event", "userId", '
    '"properties"}, {"type": "sync", "userId", "attributes"} or an Antavo event '
    '{"customer", "action", "data"}'
)


class AntavoEvent(NormalizedEvent):
    """Common to every Antavo event: a timestamp we could not read is kept for the event log."""

    unparsed_timestamp: str | None = None


class FieldChange(AntavoEvent):
    """Loyalty fields changed (`identify`): `traits` as sent."""

    kind: Literal["field_change"] = "field_change"
    traits: dict[str, Any]


class ProgramEvent(AntavoEvent):
    """A loyalty program event (`track` or an event document): action and its data."""

    kind: Literal["program_event"] = "program_event"
    action: str
    properties: dict[str, Any]
    account: str | None = None


class Checkout(AntavoEvent):
    """A `checkout` action: kept apart because it can become Braze purchases."""

    kind: Literal["checkout"] = "checkout"
    action: str = CHECKOUT_ACTION
    transaction_id: str | None = None
    properties: dict[str, Any]
    account: str | None = None


class WorkflowSync(AntavoEvent):
    """A workflow's ad-hoc attributes (`sync`), with optional per-attribute Braze types."""

    kind: Literal["sync"] = "sync"
    attributes: dict[str, Any]
    types: dict[str, BrazeType] = Field(default_factory=dict)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _parse(model: type[BaseModel], body: dict[str, Any], shape: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Rejected(f"{shape} body: {_first_error(exc)}") from None


def _member(user_id: str | None, where: str) -> NormalizedUser:
    if not user_id:
        raise Rejected(f"no user identifier: {where} is missing or empty")
    if reason := unsendable_identifier_reason(where, user_id):
        raise Rejected(reason)  # never cleaned: a changed id would be another member
    if len(user_id.encode()) > MAX_EXTERNAL_ID_BYTES:
        raise Rejected(f"{where} is longer than Braze's {MAX_EXTERNAL_ID_BYTES}-byte external id")
    return NormalizedUser(external_id=user_id)


def _when(*candidates: Any) -> tuple[datetime | None, str | None]:
    """The first timestamp given; an unreadable one is reported, not fatal (receipt time is used)."""
    for candidate in candidates:
        if candidate is None or candidate == "":
            continue
        try:
            return parse_datetime(candidate), None
        except ValueError:
            return None, str(candidate)[:100]
    return None, None


def _dedupe(event_id: str | None) -> str | None:
    return event_id if event_id and len(event_id) <= MAX_DEDUPE_KEY_CHARS else None


def _program_event(
    *,
    action: str,
    user: NormalizedUser,
    properties: dict[str, Any],
    account: str | None,
    event_id: str | None,
    times: tuple[Any, ...],
) -> AntavoEvent:
    occurred_at, unparsed = _when(*times)
    common: dict[str, Any] = {
        "source_event_id": event_id,
        "user": user,
        "occurred_at": occurred_at,
        "unparsed_timestamp": unparsed,
        "properties": properties,
        "account": account,
    }
    if action == CHECKOUT_ACTION:
        transaction = properties.get("transaction_id")
        transaction_id = str(transaction) if transaction not in (None, "") else None
        # Antavo refuses a second checkout with the same transaction id (ERR_TX_ALREADY_EXISTS):
        # without an event id it is the natural key, so a re-sent checkout is not a 2nd purchase.
        key = _dedupe(event_id) or (
            _dedupe(f"checkout:{transaction_id}") if transaction_id else None
        )
        return Checkout(dedupe_key=key, transaction_id=transaction_id, **common)
    return ProgramEvent(action=action, dedupe_key=_dedupe(event_id), **common)


def normalize_body(body: Any, *, received_at: datetime) -> AntavoEvent:
    """One Antavo webhook body → its typed event; `Rejected` says why a body cannot be read."""
    del received_at  # events keep their own time; the mapping falls back to the receipt time
    if isinstance(body, list):
        raise Rejected("a JSON array of events: send one event per request")
    if not isinstance(body, dict):
        raise Rejected(f"expected a JSON object: {EXPECTED_SHAPES}")
    shape = body.get("type")
    if isinstance(shape, str) and shape.strip():
        kind = shape.strip().lower()
        normalized = {**body, "type": kind}
        if kind == "identify":
            identify: IdentifyBody = _parse(IdentifyBody, normalized, "identify")
            occurred_at, unparsed = _when(identify.timestamp)
            return FieldChange(
                source_event_id=identify.antavo_event_id(),
                dedupe_key=_dedupe(identify.antavo_event_id()),
                user=_member(identify.user_id, "userId"),
                occurred_at=occurred_at,
                unparsed_timestamp=unparsed,
                traits=identify.traits,
            )
        if kind == "track":
            track: TrackBody = _parse(TrackBody, normalized, "track")
            account = track.properties.get("account")
            return _program_event(
                action=track.event,
                user=_member(track.user_id, "userId"),
                properties=track.properties,
                account=str(account) if isinstance(account, str | int) else None,
                event_id=track.antavo_event_id(),
                times=(track.timestamp,),
            )
        if kind == "sync":
            sync: SyncBody = _parse(SyncBody, normalized, "sync")
            if not sync.attributes:
                raise Rejected("sync body: attributes is empty")
            occurred_at, unparsed = _when(sync.timestamp)
            return WorkflowSync(
                source_event_id=sync.antavo_event_id(),
                dedupe_key=_dedupe(sync.antavo_event_id()),
                user=_member(sync.user_id, "userId"),
                occurred_at=occurred_at,
                unparsed_timestamp=unparsed,
                attributes=sync.attributes,
                types=dict(sync.types),
            )
        raise Rejected(f"unsupported type {shape!r}: expected identify, track or sync")
    if "action" in body:
        if "customer" not in body:
            raise Rejected("Antavo event without a customer: no user identifier")
        document: EventDocument = _parse(EventDocument, body, "Antavo event")
        return _program_event(
            action=document.action,
            user=_member(document.member_id(), "customer"),
            properties=document.data,
            account=document.account,
            event_id=document.antavo_event_id(),
            times=(
                document.timestamp,
                document.created_at,
                document.data.get("effective_timestamp"),
            ),
        )
    raise Rejected(f"unknown body shape: expected {EXPECTED_SHAPES}")

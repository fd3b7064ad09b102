"""Re-map a stored event from its raw body with the connection's current settings. Pure.

Replay uses this when the event was never mapped into objects (`rejected`, `filtered`,
`received`) or when the connection's settings changed since it was mapped. The partner
registry is an argument: whatever maps at ingest maps here, so preview, ingest and replay can
never disagree about what an event becomes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from braze_bridge import partners as partner_package
from braze_bridge.domain.mapping import (
    Filtered,
    MappingContext,
    Partner,
    Rejected,
)
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, Source

# Where the connection settings version an event was mapped with is kept, inside
# `events.normalized`. Ingest writes it; replay compares it with `connections.version`.
MAPPED_VERSION_KEY = "mapped_connection_version"

PartnerLookup = Callable[[Source], Partner | None]

NEVER_MAPPED = frozenset({EventStatus.RECEIVED, EventStatus.REJECTED, EventStatus.FILTERED})


class RemapImpossible(Exception):
    """The event cannot be mapped again (no body, no partner, invalid settings)."""


@dataclass(frozen=True, slots=True)
class RemapOutcome:
    status: EventStatus  # queued, filtered or rejected
    reason: str | None
    kind: str | None
    user_key: str | None
    normalized: dict[str, Any] | None
    occurred_at: datetime | None
    operations: list[Operation] = field(default_factory=list)


def registered_partners(source: Source) -> Partner | None:
    """The application's partner registry (`braze_bridge.partners.PARTNERS`), when present."""
    registry: Mapping[Source, Partner] = getattr(partner_package, "PARTNERS", {})
    return registry.get(source)


def mapped_version(normalized: Mapping[str, Any] | None) -> int | None:
    if not normalized:
        return None
    value = normalized.get(MAPPED_VERSION_KEY)
    return value if isinstance(value, int) else None


def needs_remap(
    status: EventStatus, normalized: Mapping[str, Any] | None, connection_version: int
) -> bool:
    """Map again when the event never became objects, or the settings changed since it did.

    An event without a recorded version is taken as mapped with the current settings: we
    cannot tell, and sending its stored objects is what the partner asked for at the time.
    """
    if status in NEVER_MAPPED:
        return True
    version = mapped_version(normalized)
    return version is not None and version != connection_version


def remap_event(
    partner: Partner,
    body: bytes,
    settings: Mapping[str, Any],
    context: MappingContext,
    *,
    connection_version: int,
) -> RemapOutcome:
    """Raw body → normalized event → Braze objects, as ingest would do it today."""
    try:
        typed_settings = partner.settings_model.model_validate(dict(settings))
    except ValidationError as exc:
        raise RemapImpossible(f"the connection's settings are invalid: {exc.errors()[:3]}") from exc
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return RemapOutcome(
            EventStatus.REJECTED, f"body is not valid JSON: {exc}", None, None, None, None
        )
    try:
        event = partner.normalize(document, received_at=context.received_at)
    except Rejected as outcome:
        return RemapOutcome(EventStatus.REJECTED, outcome.reason, None, None, None, None)
    normalized = {**event.as_json(), MAPPED_VERSION_KEY: connection_version}
    user_key = event.user.ref().key
    try:
        mapped = partner.map(event, typed_settings, context)
    except Filtered as outcome:
        return RemapOutcome(
            EventStatus.FILTERED,
            outcome.reason,
            event.kind,
            user_key,
            normalized,
            event.occurred_at,
        )
    except Rejected as outcome:
        return RemapOutcome(
            EventStatus.REJECTED,
            outcome.reason,
            event.kind,
            user_key,
            normalized,
            event.occurred_at,
        )
    unaddressed = [op for op in mapped.operations if op.user.key is None]
    if unaddressed:
        return RemapOutcome(
            EventStatus.REJECTED,
            "no user identifier for a Braze object",
            event.kind,
            user_key,
            normalized,
            event.occurred_at,
        )
    return RemapOutcome(
        EventStatus.QUEUED,
        "; ".join(mapped.notes) or None,
        event.kind,
        user_key,
        normalized,
        event.occurred_at,
        list(mapped.operations),
    )


def same_object(op: Operation, kind: str, user_key: str, payload: Mapping[str, Any]) -> bool:
    """A re-mapped object identical to one already delivered is not sent a second time."""
    return op.kind.value == kind and op.user.key == user_key and op.payload == dict(payload)

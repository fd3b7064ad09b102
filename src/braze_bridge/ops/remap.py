"""Re-map a stored event from its raw body with the connection's current settings. Pure.

Replay uses this when the event was never mapped into objects (`rejected`, `filtered`,
`received`) or when the connection's settings changed since it was mapped. The partner
registry is an argument: whatever maps at ingest maps here, so preview, ingest and replay can
never disagree about what an event becomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from braze_bridge.domain.events import MAPPED_VERSION_KEY, MAPPING_NOTES_KEY
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.domain.mapping import (
    MappingContext,
    Partner,
)
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, Source
from braze_bridge.errors import InvalidJson
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.evaluate import evaluate_body

# Where the connection settings version an event was mapped with is kept, inside
# `events.normalized`. Ingest writes it; replay compares it with `connections.version`.

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
    """The application's partner registry."""
    return PARTNERS.get(source)


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
    """Raw body → normalized event → Braze objects, through the very function ingest uses."""
    try:
        partner.settings_model.model_validate(dict(settings))
    except ValidationError as exc:
        raise RemapImpossible(f"the connection's settings are invalid: {exc.errors()[:3]}") from exc
    try:
        document = parse_json_body(body)  # ingest's parser: what it stored, it reads alike
    except InvalidJson as exc:
        return RemapOutcome(EventStatus.REJECTED, exc.message, None, None, None, None)
    evaluation = evaluate_body(
        partner,
        settings,
        document,
        received_at=context.received_at,
        app_id=context.app_id,
        known_values=context.known_values,
    )
    event = evaluation.normalized
    if event is None:
        return RemapOutcome(evaluation.status, evaluation.reason, None, None, None, None)
    normalized = {**event.as_json(), MAPPED_VERSION_KEY: connection_version}
    if evaluation.notes:
        normalized[MAPPING_NOTES_KEY] = evaluation.notes
    user = evaluation.user
    reason = evaluation.reason
    if evaluation.status == EventStatus.QUEUED:
        reason = "; ".join(evaluation.notes) or None
        if any(op.user.key is None for op in evaluation.operations):
            return RemapOutcome(
                EventStatus.REJECTED,
                "no user identifier for a Braze object",
                event.log_kind(),
                user.key if user else None,
                normalized,
                event.occurred_at,
            )
    return RemapOutcome(
        evaluation.status,
        reason,
        event.log_kind(),
        user.key if user else None,
        normalized,
        event.occurred_at,
        list(evaluation.operations),
    )


def same_object(op: Operation, kind: str, user_key: str, payload: Mapping[str, Any]) -> bool:
    """A re-mapped object identical to one already delivered is not sent a second time."""
    return op.kind.value == kind and op.user.key == user_key and op.payload == dict(payload)

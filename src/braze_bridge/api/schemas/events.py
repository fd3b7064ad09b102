"""What the event log routes answer (docs/contract.md, "7. Ops")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from braze_bridge.db.models import OutboxOperation
from braze_bridge.db.repositories.event_log import EventSummary, display_user
from braze_bridge.domain.events import MAPPING_NOTES_KEY
from braze_bridge.domain.statuses import EventStatus, ObjectKind, OperationStatus
from braze_bridge.ops import events as event_service

REASON_DESCRIPTION = (
    "while queued, the latest reason of an object waiting to be retried or held; else why "
    "the event ended as it did; else what the mapping left out (`notes`, joined)"
)
NEXT_RETRY_DESCRIPTION = (
    "while queued: when the next retry of a failed object is due (ISO 8601 with zone); null "
    "when none is scheduled (no failure yet, or the connection is paused or in auth_error)"
)
NOTES_DESCRIPTION = "What the mapping left out or changed on the way to Braze, and why"


class EventRead(BaseModel):
    """One line of the event log."""

    id: uuid.UUID
    connection_id: uuid.UUID
    source_event_id: str | None
    kind: str | None
    status: EventStatus
    reason: str | None = Field(description=REASON_DESCRIPTION)
    user: str | None = Field(description="external id or email the event is about")
    received_at: datetime
    next_retry_at: datetime | None = Field(description=NEXT_RETRY_DESCRIPTION)
    notes: list[str] = Field(description=NOTES_DESCRIPTION)

    @classmethod
    def of(cls, event: EventSummary) -> EventRead:
        return cls(
            id=event.id,
            connection_id=event.connection_id,
            source_event_id=event.source_event_id,
            kind=event.kind,
            status=event.status,
            reason=event.shown_reason,
            user=display_user(event.user_key),
            received_at=event.received_at,
            next_retry_at=event.next_retry_at,
            notes=list(event.notes),
        )


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page"
    )


class RawBodyRead(BaseModel):
    body: str = Field(description="the bytes as received, decoded as UTF-8")
    json_body: Any = Field(
        default=None, alias="json", description="the body parsed, when it is JSON"
    )
    content_type: str | None
    headers: dict[str, Any] = Field(
        description="request headers: an allowlist (docs/ops.md), never credentials"
    )
    size_bytes: int

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class BrazeObjectRead(BaseModel):
    id: int
    position: int
    kind: ObjectKind
    status: OperationStatus
    reason: str | None
    user: str
    external_id: str | None
    email: str | None
    payload: dict[str, Any] = Field(description="the object as mapped, before identity")
    sent_object: dict[str, Any] | None = Field(description="the object as last sent to Braze")
    attempts: int
    available_at: datetime
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, op: OutboxOperation) -> BrazeObjectRead:
        return cls(
            id=op.id,
            position=op.position,
            kind=op.kind,
            status=op.status,
            reason=op.reason,
            user=display_user(op.user_key) or op.user_key,
            external_id=op.external_id,
            email=op.email,
            payload=op.payload,
            sent_object=op.sent_object,
            attempts=op.attempts,
            available_at=op.available_at,
            created_at=op.created_at,
            settled_at=op.settled_at,
        )


class AttemptObjectRead(BaseModel):
    object_id: int
    outcome: str | None


class AttemptRead(BaseModel):
    id: int
    started_at: datetime
    endpoint: str
    worker_id: str | None
    status_code: int | None
    duration_ms: float
    error: str | None
    request_body: dict[str, Any] | None
    response_body: str | None
    response_headers: dict[str, Any] | None = Field(description="credentials redacted")
    objects: list[AttemptObjectRead]

    @classmethod
    def of(cls, shown: event_service.ShownAttempt) -> AttemptRead:
        attempt = shown.attempt
        return cls(
            id=attempt.id,
            started_at=attempt.started_at,
            endpoint=attempt.endpoint,
            worker_id=attempt.worker_id,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            error=attempt.error,
            request_body=attempt.request_body,
            response_body=attempt.response_body,
            response_headers=shown.response_headers,
            objects=[
                AttemptObjectRead(object_id=op_id, outcome=outcome)
                for op_id, outcome in shown.outcomes
            ],
        )


def _mapping_notes(normalized: dict[str, Any] | None) -> list[str]:
    notes = (normalized or {}).get(MAPPING_NOTES_KEY)
    return [str(note) for note in notes] if isinstance(notes, list) else []


class EventDetail(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    source_event_id: str | None
    dedupe_key: str
    kind: str | None
    status: EventStatus
    reason: str | None = Field(description=REASON_DESCRIPTION)
    user: str | None
    received_at: datetime
    occurred_at: datetime | None
    settled_at: datetime | None
    next_retry_at: datetime | None = Field(description=NEXT_RETRY_DESCRIPTION)
    raw: RawBodyRead | None = Field(description="null once retention purged the raw body")
    normalized: dict[str, Any] | None
    notes: list[str] = Field(description=NOTES_DESCRIPTION)
    objects: list[BrazeObjectRead]
    attempts: list[AttemptRead]

    @classmethod
    def of(cls, detail: event_service.ShownEvent) -> EventDetail:
        event, raw = detail.event, detail.raw
        return cls(
            id=event.id,
            tenant_id=event.tenant_id,
            connection_id=event.connection_id,
            source_event_id=event.source_event_id,
            dedupe_key=event.dedupe_key,
            kind=event.kind,
            status=event.status,
            reason=detail.summary.shown_reason,
            user=display_user(event.user_key),
            received_at=event.received_at,
            occurred_at=event.occurred_at,
            settled_at=event.settled_at,
            next_retry_at=detail.summary.next_retry_at,
            raw=None
            if raw is None
            else RawBodyRead(
                body=raw.text,
                json_body=raw.parsed,
                content_type=raw.content_type,
                headers=raw.headers,
                size_bytes=raw.size_bytes,
            ),
            normalized=event.normalized,
            notes=_mapping_notes(event.normalized),
            objects=[BrazeObjectRead.of(op) for op in detail.operations],
            attempts=[AttemptRead.of(item) for item in detail.attempts],
        )

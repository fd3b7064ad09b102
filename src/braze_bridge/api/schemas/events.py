"""What the event log, replay and health routes read and answer (DESIGN section 9)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from braze_bridge.db.models import ReplayJob
from braze_bridge.db.repositories.event_log import (
    EventFilter,
    EventRecord,
    EventSummary,
    display_user,
)
from braze_bridge.domain.events import MAPPING_NOTES_KEY
from braze_bridge.domain.statuses import (
    EventStatus,
    HealthStatus,
    ObjectKind,
    OperationStatus,
    ReplayStatus,
    Source,
)
from braze_bridge.ops.events import redact_headers, shown_request_headers
from braze_bridge.ops.health import ConnectionHealth
from braze_bridge.ops.replay import ReplayResult


class EventRead(BaseModel):
    """One line of the event log; exactly the fields DESIGN section 9 names."""

    id: uuid.UUID
    connection_id: uuid.UUID
    source_event_id: str | None
    kind: str | None
    status: EventStatus
    reason: str | None
    user: str | None = Field(description="external id or email the event is about")
    received_at: datetime

    @classmethod
    def of(cls, event: EventSummary) -> EventRead:
        return cls(
            id=event.id,
            connection_id=event.connection_id,
            source_event_id=event.source_event_id,
            kind=event.kind,
            status=event.status,
            reason=event.reason,
            user=display_user(event.user_key),
            received_at=event.received_at,
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
    response_headers: dict[str, Any] | None
    objects: list[AttemptObjectRead]


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
    reason: str | None
    user: str | None
    received_at: datetime
    occurred_at: datetime | None
    settled_at: datetime | None
    raw: RawBodyRead | None = Field(description="null once retention purged the raw body")
    normalized: dict[str, Any] | None
    notes: list[str] = Field(
        description="What the mapping left out or changed on the way to Braze, and why"
    )
    objects: list[BrazeObjectRead]
    attempts: list[AttemptRead]

    @classmethod
    def of(cls, record: EventRecord) -> EventDetail:
        event = record.event
        raw = None
        if record.body is not None:
            text = record.body.body.decode("utf-8", errors="replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = None
            raw = RawBodyRead(
                body=text,
                json_body=parsed,
                content_type=record.body.content_type,
                headers=shown_request_headers(record.body.headers),
                size_bytes=len(record.body.body),
            )
        return cls(
            id=event.id,
            tenant_id=event.tenant_id,
            connection_id=event.connection_id,
            source_event_id=event.source_event_id,
            dedupe_key=event.dedupe_key,
            kind=event.kind,
            status=event.status,
            reason=event.reason,
            user=display_user(event.user_key),
            received_at=event.received_at,
            occurred_at=event.occurred_at,
            settled_at=event.settled_at,
            raw=raw,
            normalized=event.normalized,
            notes=_mapping_notes(event.normalized),
            objects=[
                BrazeObjectRead(
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
                for op in record.operations
            ],
            attempts=[
                AttemptRead(
                    id=item.attempt.id,
                    started_at=item.attempt.started_at,
                    endpoint=item.attempt.endpoint,
                    worker_id=item.attempt.worker_id,
                    status_code=item.attempt.status_code,
                    duration_ms=item.attempt.duration_ms,
                    error=item.attempt.error,
                    request_body=item.attempt.request_body,
                    response_body=item.attempt.response_body,
                    response_headers=(
                        redact_headers(item.attempt.response_headers)
                        if item.attempt.response_headers is not None
                        else None
                    ),
                    objects=[
                        AttemptObjectRead(object_id=op_id, outcome=outcome)
                        for op_id, outcome in item.outcomes
                    ],
                )
                for item in record.attempts
            ],
        )


class ReplayRead(BaseModel):
    event_id: uuid.UUID
    status: EventStatus = Field(description="the event's status after the replay")
    requeued: int = Field(description="Braze objects that will be sent again")
    remapped: bool = Field(description="true when the raw body was mapped again first")

    @classmethod
    def of(cls, result: ReplayResult) -> ReplayRead:
        return cls(
            event_id=result.event_id,
            status=result.status,
            requeued=result.requeued,
            remapped=result.remapped,
        )


class ReplayFilter(BaseModel):
    """Which events a bulk replay covers; every given field must match."""

    model_config = ConfigDict(extra="forbid")

    connection_id: uuid.UUID | None = None
    status: EventStatus | None = None
    kind: str | None = Field(default=None, max_length=64)
    user: str | None = Field(default=None, max_length=1024)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _time_range_is_ordered(self) -> ReplayFilter:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def to_filter(self) -> EventFilter:
        return EventFilter(
            connection_id=self.connection_id,
            status=self.status,
            kind=self.kind,
            user=self.user,
            since=self.since,
            until=self.until,
        )


class ReplayJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ReplayStatus
    total: int | None = Field(description="events the filter matched; null until the job starts")
    done: int = Field(description="events processed so far")
    requeued: int = Field(description="Braze objects set to be sent again so far")
    skipped: int = Field(description="events that could not be replayed (see the event log)")
    error: str | None
    filters: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ReplayJob) -> ReplayJobRead:
        return cls.model_validate(job)


class ConnectionHealthRead(BaseModel):
    connection_id: uuid.UUID
    name: str
    source: Source
    status: HealthStatus
    queue_depth: int = Field(description="Braze objects pending or in flight")
    oldest_pending_age_seconds: float | None = Field(
        description="age of the oldest unsettled object; null when the queue is empty"
    )
    last_error: str | None
    last_error_at: datetime | None
    rate_limited_until: datetime | None
    counts_last_hour: dict[str, int] = Field(
        description="events received in the last hour, by status"
    )
    data_points_saved: int = Field(description="Braze data points not sent by Antavo changed_only")

    @classmethod
    def of(cls, health: ConnectionHealth) -> ConnectionHealthRead:
        return cls(
            connection_id=health.connection_id,
            name=health.name,
            source=health.source,
            status=health.status,
            queue_depth=health.queue_depth,
            oldest_pending_age_seconds=health.oldest_pending_age_seconds,
            last_error=health.last_error,
            last_error_at=health.last_error_at,
            rate_limited_until=health.rate_limited_until,
            counts_last_hour=health.counts_last_hour,
            data_points_saved=health.data_points_saved,
        )


class HealthOverview(BaseModel):
    connections: list[ConnectionHealthRead]

"""The event log as ops read it: filtered keyset pages (newest first) and one event in full.

Pages are keyed on `events.id` (UUIDv7, time-ordered), never OFFSET: a page costs the same at
row 10 as at row 10 million, and rows inserted while someone pages never shift what the next
page holds. Every query here takes the caller's tenant scope (`tenant_id=None` = operator).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Row,
    Select,
    SQLColumnExpression,
    String,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnClause

from braze_bridge.db.models import (
    AttemptOperation,
    Connection,
    DeliveryAttempt,
    Event,
    EventBody,
    OutboxOperation,
)
from braze_bridge.db.pagination import KeysetCursor
from braze_bridge.domain.events import kinds_matching
from braze_bridge.domain.statuses import ConnectionState, EventStatus, OperationStatus

_CURSOR = KeysetCursor("e1", uuid.UUID)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What GET /v1/events and bulk replay select on; all given fields must match."""

    connection_id: uuid.UUID | None = None
    status: EventStatus | None = None
    kind: str | None = None
    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # External ids starting with it (as typed) or emails starting with it (any case).
    user_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class EventSummary:
    id: uuid.UUID
    connection_id: uuid.UUID
    source_event_id: str | None
    kind: str | None
    status: EventStatus
    reason: str | None
    user_key: str | None
    received_at: datetime
    # While queued: the reason of its object that tried most (a retry's or a hold's), and when
    # the next retry is due (None when none is scheduled, e.g. held by an auth error).
    object_reason: str | None = None
    next_retry_at: datetime | None = None
    notes: tuple[str, ...] = ()  # what the mapping left out or changed (MAPPING_NOTES_KEY)

    @property
    def shown_reason(self) -> str | None:
        """What the list and detail show as `reason`: why it waits, else why it ended as it did,
        else what the mapping left out (a delivered event's reason is cleared by the roll-up)."""
        return self.object_reason or self.reason or ("; ".join(self.notes) or None)


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[EventSummary]
    next_after: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempt: DeliveryAttempt
    outcomes: list[tuple[int, str | None]]


@dataclass(frozen=True, slots=True)
class EventDetailRow:
    event: Event
    body: EventBody | None
    operations: list[OutboxOperation]
    attempts: list[AttemptRow]


def encode_cursor(event_id: uuid.UUID) -> str:
    """Opaque to clients: the last id of the page."""
    return _CURSOR.encode(event_id)


def decode_cursor(cursor: str) -> uuid.UUID:
    """Raise ValueError for anything `encode_cursor` did not produce."""
    (event_id,) = _CURSOR.decode(cursor)
    return cast(uuid.UUID, event_id)


def user_key_candidates(user: str) -> list[str]:
    """`user=` matches the stored key however ingest prefixed it (external id or email)."""
    value = user.strip()
    return list(dict.fromkeys([value, f"id:{value}", f"email:{value.lower()}"]))


def display_user(user_key: str | None) -> str | None:
    """What ops type into `user=`: the external id or email without the key's prefix."""
    if user_key is None:
        return None
    for prefix in ("id:", "email:"):
        if user_key.startswith(prefix):
            return user_key[len(prefix) :]
    return user_key


# The email the normalized event carries, as `ix_events_user_email` indexes it (the literal
# text must stay the index's expression for the planner to use it).
EVENT_EMAIL: ColumnClause[str] = literal_column(
    "lower(events.normalized #>> '{user,email}')", type_=String()
)
_NOTES = literal_column("events.normalized -> 'mapping_notes'", type_=JSONB())


def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code point order
    (UTF-8 byte order, what text_pattern_ops compares); None when there is none."""
    for cut in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[cut]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:cut] + chr(point)
    return None


def _equals(column: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
    equal: ColumnElement[bool] = column.op("=", is_comparison=True)(value)
    return equal


def _starts_with(column: SQLColumnExpression[Any], prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, as a range on a text_pattern_ops index: the bounds are
    plain parameters, so even a generic plan keeps the index (LIKE needs a constant)."""
    low: ColumnElement[bool] = column.op("~>=~", is_comparison=True)(prefix)
    high = _successor(prefix)
    if high is None:
        return low & func.starts_with(column, prefix, type_=Boolean())
    below: ColumnElement[bool] = column.op("~<~", is_comparison=True)(high)
    return low & below


def _object_reason() -> ColumnElement[str | None]:
    """While the event is queued: the reason of its unsettled object that tried most."""
    sub = (
        select(OutboxOperation.reason)
        .where(
            OutboxOperation.event_id == Event.id,
            OutboxOperation.unsettled,
            OutboxOperation.reason.is_not(None),
        )
        .order_by(OutboxOperation.attempts.desc(), OutboxOperation.position)
        .limit(1)
        .scalar_subquery()
    )
    return case((Event.status == EventStatus.QUEUED, sub), else_=None)


def _next_retry_at() -> ColumnElement[datetime | None]:
    """While the event is queued: when its first object waiting after a failure is due (not
    before the connection's rate limit lifts); None while the connection is held (paused or
    auth_error: an admin must act) or no object has failed yet."""
    sub = (
        select(
            case(
                (
                    Connection.state == ConnectionState.ACTIVE,
                    func.greatest(
                        func.min(OutboxOperation.available_at), Connection.rate_limited_until
                    ),
                ),
                else_=None,
            )
        )
        .select_from(OutboxOperation)
        .join(Connection, Connection.id == OutboxOperation.connection_id)
        .where(
            OutboxOperation.event_id == Event.id,
            OutboxOperation.status == OperationStatus.PENDING,
            OutboxOperation.unsettled,
            OutboxOperation.reason.is_not(None),
        )
        .group_by(Connection.state, Connection.rate_limited_until)
        .scalar_subquery()
    )
    return case((Event.status == EventStatus.QUEUED, sub), else_=None)


def filtered_events(tenant_id: uuid.UUID | None, filters: EventFilter) -> Select[Any]:
    """Ids of the events visible to the tenant scope that match `filters` (no order, no limit).

    Each filter lines up with an index whose last column is `id`, so newest-first pages are
    index range scans (see tests/integration/test_event_log.py for the EXPLAIN checks).
    """
    stmt = select(Event.id)
    if tenant_id is not None:
        stmt = stmt.where(Event.tenant_id == tenant_id)
    if filters.connection_id is not None:
        stmt = stmt.where(Event.connection_id == filters.connection_id)
    if filters.status is not None:
        stmt = stmt.where(Event.status == filters.status)
    if filters.kind is not None:
        kinds = kinds_matching(filters.kind)
        stmt = stmt.where(Event.kind == kinds[0] if len(kinds) == 1 else Event.kind.in_(kinds))
    if filters.user is not None:
        value = filters.user.strip()
        stmt = stmt.where(
            or_(Event.user_key.in_(user_key_candidates(value)), _equals(EVENT_EMAIL, value.lower()))
        )
    if filters.user_prefix is not None:
        value = filters.user_prefix.strip()
        stmt = stmt.where(
            or_(
                _starts_with(Event.user_key, f"id:{value}"),
                _starts_with(Event.user_key, f"email:{value.lower()}"),
                _starts_with(EVENT_EMAIL, value.lower()),
            )
        )
    if filters.since is not None:
        stmt = stmt.where(Event.received_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(Event.received_at < filters.until)
    return stmt


_SUMMARY_COLUMNS = (
    Event.connection_id,
    Event.source_event_id,
    Event.kind,
    Event.status,
    Event.reason,
    Event.user_key,
    Event.received_at,
)


def _shown_columns() -> tuple[ColumnElement[Any], ...]:
    return (
        _object_reason().label("object_reason"),
        _next_retry_at().label("next_retry_at"),
        _NOTES.label("notes"),
    )


def _summary_select(tenant_id: uuid.UUID | None, filters: EventFilter) -> Select[Any]:
    return filtered_events(tenant_id, filters).add_columns(*_SUMMARY_COLUMNS, *_shown_columns())


def _notes(value: Any) -> tuple[str, ...]:
    return tuple(str(note) for note in value) if isinstance(value, list) else ()


def _summary(row: Row[Any]) -> EventSummary:
    return EventSummary(
        id=row[0],
        connection_id=row.connection_id,
        source_event_id=row.source_event_id,
        kind=row.kind,
        status=row.status,
        reason=row.reason,
        user_key=row.user_key,
        received_at=row.received_at,
        object_reason=row.object_reason,
        next_retry_at=row.next_retry_at,
        notes=_notes(row.notes),
    )


async def list_events(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    filters: EventFilter,
    *,
    before: uuid.UUID | None,
    limit: int,
) -> EventPage:
    """One page, newest first, strictly older than `before` (the previous page's last id)."""
    stmt = _summary_select(tenant_id, filters).order_by(Event.id.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    rows = (await session.execute(stmt)).all()
    items = [_summary(row) for row in rows[:limit]]
    next_after = items[-1].id if len(rows) > limit else None
    return EventPage(items, next_after)


async def events_after(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    filters: EventFilter,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[EventSummary]:
    """Events newer than `after`, oldest first (the live feed's next batch)."""
    stmt = _summary_select(tenant_id, filters).order_by(Event.id.asc()).limit(limit)
    if after is not None:
        stmt = stmt.where(Event.id > after)
    rows = (await session.execute(stmt)).all()
    return [_summary(row) for row in rows]


async def newest_event_id(session: AsyncSession, tenant_id: uuid.UUID | None) -> uuid.UUID | None:
    stmt = select(Event.id).order_by(Event.id.desc()).limit(1)
    if tenant_id is not None:
        stmt = stmt.where(Event.tenant_id == tenant_id)
    return await session.scalar(stmt)


async def event_statuses(
    session: AsyncSession, tenant_id: uuid.UUID | None, ids: Sequence[uuid.UUID]
) -> list[EventSummary]:
    """Current state of known events (the live feed re-checks the ones still in motion)."""
    if not ids:
        return []
    stmt = select(Event.id, *_SUMMARY_COLUMNS, *_shown_columns()).where(Event.id.in_(list(ids)))
    if tenant_id is not None:
        stmt = stmt.where(Event.tenant_id == tenant_id)
    rows = (await session.execute(stmt)).all()
    return [_summary(row) for row in rows]


async def get_event_record(
    session: AsyncSession, tenant_id: uuid.UUID | None, event_id: uuid.UUID
) -> EventDetailRow | None:
    """The event with its raw body, its Braze objects and every attempt that carried them."""
    stmt = select(Event).where(Event.id == event_id)
    if tenant_id is not None:
        stmt = stmt.where(Event.tenant_id == tenant_id)
    event = await session.scalar(stmt)
    if event is None:
        return None
    body = await session.get(EventBody, event_id)
    operations = list(
        (
            await session.scalars(
                select(OutboxOperation)
                .where(OutboxOperation.event_id == event_id)
                .order_by(OutboxOperation.position, OutboxOperation.id)
            )
        ).all()
    )
    attempts: list[AttemptRow] = []
    if operations:
        links = (
            await session.execute(
                select(
                    AttemptOperation.attempt_id,
                    AttemptOperation.operation_id,
                    AttemptOperation.outcome,
                )
                .where(AttemptOperation.operation_id.in_([op.id for op in operations]))
                .order_by(AttemptOperation.attempt_id, AttemptOperation.operation_id)
            )
        ).all()
        by_attempt: dict[int, list[tuple[int, str | None]]] = {}
        for link in links:
            by_attempt.setdefault(link.attempt_id, []).append((link.operation_id, link.outcome))
        if by_attempt:
            rows = await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.id.in_(list(by_attempt)))
                .order_by(DeliveryAttempt.id)
            )
            attempts = [AttemptRow(row, by_attempt[row.id]) for row in rows]
    return EventDetailRow(event, body, operations, attempts)


async def connection_visible(
    session: AsyncSession, tenant_id: uuid.UUID | None, connection_id: uuid.UUID
) -> bool:
    """Deleted connections count: their events stay in the log."""
    stmt = select(Connection.id).where(Connection.id == connection_id)
    if tenant_id is not None:
        stmt = stmt.where(Connection.tenant_id == tenant_id)
    return await session.scalar(stmt) is not None

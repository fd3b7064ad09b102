"""Replay SQL: send again what did not settle as delivered, re-mapped objects, bulk replay jobs.

The one rule every statement here keeps: an operation whose status is `delivered` is never
updated, deleted or re-created. Objects being sent right now (`in_flight` under a live lease) are
left alone too; an expired lease counts as pending, as the next claim would treat it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.jsonb import clean_text, jsonb_safe
from braze_bridge.db.models import (
    Connection,
    Event,
    EventBody,
    OutboxOperation,
    ReplayJob,
    UserValue,
)
from braze_bridge.db.notify import OUTBOX_CHANNEL
from braze_bridge.db.repositories.event_log import EventFilter, filtered_events
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import (
    SUPERSEDED_REASON,
    EventStatus,
    OperationStatus,
    ReplayStatus,
)

# Objects replaced by a re-map are kept (with their attempts) as `skipped` with this reason
# prefix; a later replay must not bring them back, and event status ignores them.

REPLAYABLE_STATUSES = (OperationStatus.FAILED, OperationStatus.DEAD, OperationStatus.SKIPPED)


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    event: Event
    connection: Connection


def _not_superseded() -> Any:
    return or_(
        OutboxOperation.reason.is_(None), ~OutboxOperation.reason.startswith(SUPERSEDED_REASON)
    )


async def lock_event(
    session: AsyncSession, tenant_id: uuid.UUID | None, event_id: uuid.UUID
) -> ReplayTarget | None:
    """The event (row-locked against a concurrent replay or settle) and its connection."""
    stmt = (
        select(Event, Connection)
        .join(Connection, Connection.id == Event.connection_id)
        .where(Event.id == event_id)
        .with_for_update(of=Event)
    )
    if tenant_id is not None:
        stmt = stmt.where(Event.tenant_id == tenant_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return ReplayTarget(row[0], row[1])


async def requeue_undelivered(session: AsyncSession, event_id: uuid.UUID, now: datetime) -> int:
    """Failed, dead and skipped objects back to pending, due now; returns how many.

    Pending objects waiting out a backoff are made due now as well (not counted: they were
    going to be sent anyway). Attempts stay as history; the attempt counter restarts so the
    backoff starts over.
    """
    requeued = await session.execute(
        update(OutboxOperation)
        .where(
            OutboxOperation.event_id == event_id,
            OutboxOperation.status.in_(REPLAYABLE_STATUSES),
            _not_superseded(),
        )
        .values(
            status=OperationStatus.PENDING,
            available_at=now,
            lease_owner=None,
            lease_expires_at=None,
            reason=None,
            attempts=0,
            settled_at=None,
        )
        .returning(OutboxOperation.id)
    )
    count = len(requeued.all())
    await session.execute(
        update(OutboxOperation)
        .where(
            OutboxOperation.event_id == event_id,
            OutboxOperation.status == OperationStatus.PENDING,
            OutboxOperation.available_at > now,
        )
        .values(available_at=now)
    )
    return count


async def mark_event_queued(session: AsyncSession, event_id: uuid.UUID) -> None:
    await session.execute(
        update(Event)
        .where(Event.id == event_id)
        .values(status=EventStatus.QUEUED, reason=None, settled_at=None)
    )


async def notify_outbox(session: AsyncSession) -> None:
    """Wake the workers; Postgres delivers the NOTIFY at COMMIT, never before."""
    await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, "replay")))


async def raw_body(session: AsyncSession, event_id: uuid.UUID) -> EventBody | None:
    return await session.get(EventBody, event_id)


async def known_values(
    session: AsyncSession, connection_id: uuid.UUID, user_key: str | None
) -> dict[str, Any]:
    """Last values Braze accepted for this user (what Antavo `changed_only` compares with)."""
    if user_key is None:
        return {}
    rows = await session.execute(
        select(UserValue.attribute, UserValue.value).where(
            UserValue.connection_id == connection_id, UserValue.user_key == user_key
        )
    )
    return {row.attribute: row.value for row in rows}


async def delivered_objects(
    session: AsyncSession, event_id: uuid.UUID
) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, user_key, payload) of what already reached Braze for this event."""
    rows = await session.execute(
        select(OutboxOperation.kind, OutboxOperation.user_key, OutboxOperation.payload).where(
            OutboxOperation.event_id == event_id,
            OutboxOperation.status == OperationStatus.DELIVERED,
        )
    )
    return [(str(row.kind), row.user_key, row.payload) for row in rows]


def _lease_expired() -> Any:
    """An `in_flight` object whose worker's lease ran out: nobody is sending it, and the next
    claim takes it like a pending one (there is no recovery step that resets it)."""
    return and_(
        OutboxOperation.status == OperationStatus.IN_FLIGHT,
        OutboxOperation.lease_expires_at < func.now(),
    )


async def has_in_flight(session: AsyncSession, event_id: uuid.UUID) -> bool:
    """Whether a worker is sending one of the event's objects right now (a live lease)."""
    found = await session.scalar(
        select(OutboxOperation.id)
        .where(
            OutboxOperation.event_id == event_id,
            OutboxOperation.status == OperationStatus.IN_FLIGHT,
            or_(
                OutboxOperation.lease_expires_at.is_(None),
                OutboxOperation.lease_expires_at >= func.now(),
            ),
        )
        .limit(1)
    )
    return found is not None


async def supersede_undelivered(
    session: AsyncSession, event_id: uuid.UUID, version: int, now: datetime
) -> int:
    """Retire the old mapping's unsent objects; they stay visible with their attempts."""
    result = await session.execute(
        update(OutboxOperation)
        .where(
            OutboxOperation.event_id == event_id,
            or_(
                OutboxOperation.status.in_(
                    (
                        OperationStatus.PENDING,
                        OperationStatus.FAILED,
                        OperationStatus.DEAD,
                        OperationStatus.SKIPPED,
                    )
                ),
                _lease_expired(),
            ),
            _not_superseded(),
        )
        .values(
            status=OperationStatus.SKIPPED,
            reason=f"{SUPERSEDED_REASON} (connection settings version {version})",
            lease_owner=None,
            lease_expires_at=None,
            settled_at=now,
        )
        .returning(OutboxOperation.id)
    )
    return len(result.all())


async def insert_operations(
    session: AsyncSession,
    event: Event,
    operations: Sequence[Operation],
    now: datetime,
) -> int:
    """Append the re-mapped objects after the event's existing positions.

    Text and JSON go through ingest's cleaning (`clean_text`, `jsonb_safe`): a body stored by
    any version maps to values Postgres can hold. Identifiers were checked by the mapping
    (domain/ids.py), so cleaning never changes one.
    """
    if not operations:
        return 0
    last = await session.scalar(
        select(func.coalesce(func.max(OutboxOperation.position), -1)).where(
            OutboxOperation.event_id == event.id
        )
    )
    start = int(last if last is not None else -1) + 1
    rows = []
    for offset, op in enumerate(operations):
        key = op.user.key
        if key is None:
            raise ValueError("a mapped object has no user")
        rows.append(
            {
                "event_id": event.id,
                "tenant_id": event.tenant_id,
                "connection_id": event.connection_id,
                "position": start + offset,
                "kind": op.kind,
                "user_key": clean_text(key, 1024),
                "external_id": _clean(op.user.external_id, 1024),
                "email": _clean(op.user.email, 512),
                "unknown_user": op.user.unknown_user,
                "payload": jsonb_safe(op.payload),
                "status": OperationStatus.PENDING,
                "available_at": now,
            }
        )
    await session.execute(insert(OutboxOperation), rows)
    return len(rows)


def _clean(value: str | None, limit: int) -> str | None:
    return None if value is None else clean_text(value, limit)


async def record_remap(
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    status: EventStatus,
    reason: str | None,
    kind: str | None,
    user_key: str | None,
    normalized: dict[str, Any] | None,
    occurred_at: datetime | None,
    now: datetime,
) -> None:
    final = status in (EventStatus.FILTERED, EventStatus.REJECTED, EventStatus.DELIVERED)
    values: dict[str, Any] = {
        "status": status,
        "reason": _clean(reason, 2000),
        "normalized": jsonb_safe(normalized),
        "settled_at": now if final else None,
    }
    # A body we can no longer read keeps what ingest recorded about it.
    if kind is not None:
        values["kind"] = clean_text(kind, 64)
    if user_key is not None:
        values["user_key"] = clean_text(user_key, 1024)
    if occurred_at is not None:
        values["occurred_at"] = occurred_at
    await session.execute(update(Event).where(Event.id == event_id).values(**values))


# --- bulk replay jobs -------------------------------------------------------------------------


def filters_to_json(filters: EventFilter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if filters.connection_id is not None:
        out["connection_id"] = str(filters.connection_id)
    if filters.status is not None:
        out["status"] = filters.status.value
    if filters.kind is not None:
        out["kind"] = filters.kind
    if filters.user is not None:
        out["user"] = filters.user
    if filters.since is not None:
        out["since"] = filters.since.isoformat()
    if filters.until is not None:
        out["until"] = filters.until.isoformat()
    return out


def filters_from_json(data: dict[str, Any]) -> EventFilter:
    return EventFilter(
        connection_id=uuid.UUID(data["connection_id"]) if data.get("connection_id") else None,
        status=EventStatus(data["status"]) if data.get("status") else None,
        kind=data.get("kind"),
        user=data.get("user"),
        since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
        until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
    )


async def create_job(
    session: AsyncSession, tenant_id: uuid.UUID | None, filters: EventFilter
) -> ReplayJob:
    job = ReplayJob(tenant_id=tenant_id, filters=filters_to_json(filters))
    session.add(job)
    await session.flush()
    await session.refresh(job)
    return job


async def get_job(
    session: AsyncSession, tenant_id: uuid.UUID | None, job_id: uuid.UUID
) -> ReplayJob | None:
    stmt = select(ReplayJob).where(ReplayJob.id == job_id)
    if tenant_id is not None:
        stmt = stmt.where(ReplayJob.tenant_id == tenant_id)
    return await session.scalar(stmt)


async def has_open_job(session: AsyncSession) -> bool:
    """Whether any bulk replay job is queued or running: a runner's cheap first look."""
    open_job = exists().where(ReplayJob.status.in_((ReplayStatus.QUEUED, ReplayStatus.RUNNING)))
    return bool(await session.scalar(select(open_job)))


async def claim_job(
    session: AsyncSession, owner: str, now: datetime, lease_seconds: float
) -> ReplayJob | None:
    """Take the oldest open job whose lease is free or expired (a crashed runner's job)."""
    job = await session.scalar(
        select(ReplayJob)
        .where(
            ReplayJob.status.in_((ReplayStatus.QUEUED, ReplayStatus.RUNNING)),
            or_(ReplayJob.lease_expires_at.is_(None), ReplayJob.lease_expires_at < now),
        )
        .order_by(ReplayJob.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if job is None:
        return None
    job.status = ReplayStatus.RUNNING
    job.lease_owner = owner
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    await session.flush()
    return job


async def lock_owned_job(session: AsyncSession, job_id: uuid.UUID, owner: str) -> ReplayJob | None:
    """The job, locked, only while `owner` still holds its lease."""
    return await session.scalar(
        select(ReplayJob)
        .where(ReplayJob.id == job_id, ReplayJob.lease_owner == owner)
        .with_for_update()
    )


async def count_job_events(session: AsyncSession, job: ReplayJob) -> int:
    ids = _job_events(job).subquery()
    total = await session.scalar(select(func.count()).select_from(ids))
    return int(total or 0)


def _job_events(job: ReplayJob) -> Any:
    # The job replays what matched when it was asked for, not events that arrive meanwhile.
    return filtered_events(job.tenant_id, filters_from_json(job.filters)).where(
        Event.received_at <= job.created_at
    )


async def next_job_events(session: AsyncSession, job: ReplayJob, limit: int) -> list[uuid.UUID]:
    stmt = _job_events(job).order_by(Event.id.asc()).limit(limit)
    if job.last_event_id is not None:
        stmt = stmt.where(Event.id > job.last_event_id)
    return list((await session.scalars(stmt)).all())

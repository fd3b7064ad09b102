"""Retention deletes: one small batch per call, oldest first, rows locked by nobody else.

Each batch is a `DELETE ... WHERE key IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` the
caller commits at once, so no statement holds many row locks or runs long, and ingest (which
only inserts new rows) never waits on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from braze_bridge.db.models import DeliveryAttempt, EventBody, ReplayJob
from braze_bridge.domain.statuses import ReplayStatus


async def _delete_batch(
    session: AsyncSession,
    key: InstrumentedAttribute[Any],
    stamp: InstrumentedAttribute[Any],
    cutoff: datetime,
    limit: int,
    *conditions: ColumnElement[bool],
) -> int:
    """Delete up to `limit` rows whose `stamp` is before `cutoff`, oldest first, skipping rows
    another transaction holds."""
    doomed = (
        select(key)
        .where(stamp < cutoff, *conditions)
        .order_by(stamp)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(key.class_).where(key.in_(doomed.scalar_subquery())).returning(key)
    )
    return len(result.all())


async def delete_event_bodies_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Raw bodies and headers received before `cutoff` (the event row and its log stay)."""
    return await _delete_batch(session, EventBody.event_id, EventBody.received_at, cutoff, limit)


async def delete_attempts_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Braze request/response records started before `cutoff` (their object links cascade)."""
    return await _delete_batch(
        session, DeliveryAttempt.id, DeliveryAttempt.started_at, cutoff, limit
    )


async def delete_finished_replay_jobs_before(
    session: AsyncSession, cutoff: datetime, limit: int
) -> int:
    """Bulk replay jobs that finished (done or failed) before `cutoff`."""
    return await _delete_batch(
        session,
        ReplayJob.id,
        ReplayJob.finished_at,
        cutoff,
        limit,
        ReplayJob.status.in_((ReplayStatus.DONE, ReplayStatus.FAILED)),
    )

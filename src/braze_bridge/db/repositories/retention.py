"""Retention deletes: one small batch per call, oldest first, rows locked by nobody else.

Each batch is a `DELETE ... WHERE key IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` the
caller commits at once, so no statement holds many row locks or runs long, and ingest (which
only inserts new rows) never waits on it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import DeliveryAttempt, EventBody, ReplayJob
from braze_bridge.domain.statuses import ReplayStatus


async def delete_event_bodies_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Raw bodies and headers received before `cutoff` (the event row and its log stay)."""
    doomed = (
        select(EventBody.event_id)
        .where(EventBody.received_at < cutoff)
        .order_by(EventBody.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(EventBody)
        .where(EventBody.event_id.in_(doomed.scalar_subquery()))
        .returning(EventBody.event_id)
    )
    return len(result.all())


async def delete_attempts_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Braze request/response records started before `cutoff` (their object links cascade)."""
    doomed = (
        select(DeliveryAttempt.id)
        .where(DeliveryAttempt.started_at < cutoff)
        .order_by(DeliveryAttempt.started_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(DeliveryAttempt)
        .where(DeliveryAttempt.id.in_(doomed.scalar_subquery()))
        .returning(DeliveryAttempt.id)
    )
    return len(result.all())


async def delete_finished_replay_jobs_before(
    session: AsyncSession, cutoff: datetime, limit: int
) -> int:
    doomed = (
        select(ReplayJob.id)
        .where(
            ReplayJob.status.in_((ReplayStatus.DONE, ReplayStatus.FAILED)),
            ReplayJob.finished_at < cutoff,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(ReplayJob).where(ReplayJob.id.in_(doomed.scalar_subquery())).returning(ReplayJob.id)
    )
    return len(result.all())

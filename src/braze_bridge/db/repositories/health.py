"""Facts a connection's health is judged from: its queue, its recent events, its stored state.

Queue figures read the partial index `ix_operations_connection_pending`, which holds only
unsettled objects (the generated column `unsettled`: pending or in_flight), so they cost the
same whatever the size of the history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Connection, Event, OutboxOperation
from braze_bridge.domain.ids import uuid7_floor


@dataclass(frozen=True, slots=True)
class QueueFigures:
    connection_id: uuid.UUID
    depth: int
    oldest_created_at: datetime | None


async def get_connection(
    session: AsyncSession, tenant_id: uuid.UUID | None, connection_id: uuid.UUID
) -> Connection | None:
    stmt = select(Connection).where(Connection.id == connection_id, Connection.deleted_at.is_(None))
    if tenant_id is not None:
        stmt = stmt.where(Connection.tenant_id == tenant_id)
    return await session.scalar(stmt)


async def list_connections(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[Connection]:
    stmt = (
        select(Connection)
        .where(Connection.deleted_at.is_(None))
        .order_by(Connection.created_at, Connection.id)
    )
    if tenant_id is not None:
        stmt = stmt.where(Connection.tenant_id == tenant_id)
    return list((await session.scalars(stmt)).all())


async def live_connection_ids(session: AsyncSession) -> list[uuid.UUID]:
    rows = await session.scalars(select(Connection.id).where(Connection.deleted_at.is_(None)))
    return list(rows.all())


async def queue_figures(
    session: AsyncSession, connection_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, QueueFigures]:
    """Unsettled objects per connection (all connections with any when `connection_ids` is None)."""
    stmt = (
        select(
            OutboxOperation.connection_id,
            func.count().label("depth"),
            func.min(OutboxOperation.created_at).label("oldest"),
        )
        .where(OutboxOperation.unsettled)
        .group_by(OutboxOperation.connection_id)
    )
    if connection_ids is not None:
        if not connection_ids:
            return {}
        stmt = stmt.where(OutboxOperation.connection_id.in_(list(connection_ids)))
    rows = await session.execute(stmt)
    return {
        row.connection_id: QueueFigures(row.connection_id, int(row.depth), row.oldest)
        for row in rows
    }


async def event_counts_since(
    session: AsyncSession, connection_id: uuid.UUID, since: datetime
) -> dict[str, int]:
    """Events received since `since`, by status.

    The id bound (UUIDv7 carries its creation millisecond) keeps this an index range scan on
    `ix_events_connection_status`; `received_at` keeps the count exact.
    """
    # Ids come from the API host's clock, received_at from the database's: allow some skew.
    floor = uuid7_floor(since - timedelta(minutes=1))
    rows = await session.execute(
        select(Event.status, func.count())
        .where(
            Event.connection_id == connection_id,
            Event.id >= floor,
            Event.received_at >= since,
        )
        .group_by(Event.status)
    )
    return {str(status): int(count) for status, count in rows}


async def server_now(session: AsyncSession) -> datetime:
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    return now

"""A connection's traffic per hour (GET /v1/connections/{id}/stats): the console's 24 h chart.

Closed hours are counted once and kept in `connection_stats_hourly`; only the open hours (the
current one, and the last one during the grace period) are counted live on each read. So a
read costs one indexed count of at most two hours of traffic plus a small table read, however
busy the connection is (bench/stats.py). Nothing is added to the ingest or delivery paths.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.repositories import health as health_repo
from braze_bridge.db.repositories import stats as stats_repo
from braze_bridge.db.repositories.stats import HOUR, HourCounts
from braze_bridge.domain.principal import Principal
from braze_bridge.errors import NotFound

MAX_HOURS = 168
# An hour is counted for good only this long after it ended: attempts are written when their
# round settles (a round's exchanges can take minutes with timeouts and backoff) and rows
# commit a little after the time they carry.
CLOSE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    connection_id: uuid.UUID
    start: datetime
    end: datetime
    buckets: list[HourCounts]


def hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def connection_stats(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    hours: int,
    now: datetime | None = None,
) -> ConnectionStats:
    """`hours` hourly buckets, oldest first, the last one the current (open) hour."""
    connection = await health_repo.get_connection(session, principal.tenant_id, connection_id)
    if connection is None:
        raise NotFound(f"no connection {connection_id}")
    now = now or datetime.now(UTC)
    end = hour_floor(now) + HOUR
    start = end - hours * HOUR
    wanted = [start + i * HOUR for i in range(hours)]
    closed_end = max(hour_floor(now - CLOSE_GRACE), start)

    stored = await stats_repo.stored_hours(session, connection.id, start, closed_end)
    missing = [hour for hour in wanted if hour < closed_end and hour not in stored]
    if missing:
        span = [h for h in wanted if missing[0] <= h <= missing[-1]]
        counted = await stats_repo.count_hours(session, connection.id, span)
        fresh = [c for c in counted if c.hour not in stored]
        await stats_repo.store_hours(session, connection.id, fresh)
        stored.update({c.hour: c for c in fresh})
    live = await stats_repo.count_hours(
        session, connection.id, [hour for hour in wanted if hour >= closed_end]
    )
    await session.commit()
    by_hour = {**stored, **{c.hour: c for c in live}}
    return ConnectionStats(connection.id, start, end, [by_hour[hour] for hour in wanted])

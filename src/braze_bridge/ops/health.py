"""Connection health: one word ops can act on, and the figures behind it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge import metrics
from braze_bridge.db.models import Connection
from braze_bridge.db.repositories import health as health_repo
from braze_bridge.db.repositories import user_values
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, EventStatus, HealthStatus, Source
from braze_bridge.errors import NotFound

# An object waiting longer than this means delivery is not keeping up (or is stuck).
STALE_QUEUE_SECONDS = 15 * 60
LAST_HOUR = timedelta(hours=1)
FAILING_EVENT_STATUSES = (EventStatus.DEAD.value, EventStatus.PARTIALLY_DELIVERED.value)


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    connection_id: uuid.UUID
    name: str
    source: Source
    status: HealthStatus
    queue_depth: int
    oldest_pending_age_seconds: float | None
    last_error: str | None
    last_error_at: datetime | None
    rate_limited_until: datetime | None
    counts_last_hour: dict[str, int] = field(default_factory=dict)
    data_points_saved: int = 0


def judge_health(
    *,
    state: ConnectionState,
    rate_limited_until: datetime | None,
    oldest_pending_age_seconds: float | None,
    counts_last_hour: dict[str, int],
    last_error: str | None,
    now: datetime,
) -> HealthStatus:
    """Most actionable first: a stored state an admin must change, then Braze's limits,
    then symptoms (failures, a stale queue, an error no success has cleared yet).

    Delivery sets `last_error` on any failed attempt and clears it on the next attempt Braze
    answers (delivery/health_signal.py), so one failed attempt reads `degraded` however long
    ago it was, and a success reads `ok` again.
    """
    if state == ConnectionState.PAUSED:
        return HealthStatus.PAUSED
    if state == ConnectionState.AUTH_ERROR:
        return HealthStatus.AUTH_ERROR
    if rate_limited_until is not None and rate_limited_until > now:
        return HealthStatus.RATE_LIMITED
    failing = sum(counts_last_hour.get(status, 0) for status in FAILING_EVENT_STATUSES)
    stale = (oldest_pending_age_seconds or 0) > STALE_QUEUE_SECONDS
    if failing or stale or last_error is not None:
        return HealthStatus.DEGRADED
    return HealthStatus.OK


async def data_points_saved(session: AsyncSession, connection_id: uuid.UUID) -> int:
    """Braze data points not sent because `changed_only` found the values unchanged."""
    return await user_values.data_points_saved(session, connection_id)


async def _health_of(
    session: AsyncSession,
    connection: Connection,
    queue: health_repo.QueueFigures | None,
    now: datetime,
) -> ConnectionHealth:
    counts = await health_repo.event_counts_since(session, connection.id, now - LAST_HOUR)
    oldest_age = (
        max((now - queue.oldest_created_at).total_seconds(), 0.0)
        if queue is not None and queue.oldest_created_at is not None
        else None
    )
    return ConnectionHealth(
        connection_id=connection.id,
        name=connection.name,
        source=connection.source,
        status=judge_health(
            state=connection.state,
            rate_limited_until=connection.rate_limited_until,
            oldest_pending_age_seconds=oldest_age,
            counts_last_hour=counts,
            last_error=connection.last_error,
            now=now,
        ),
        queue_depth=queue.depth if queue is not None else 0,
        oldest_pending_age_seconds=oldest_age,
        last_error=connection.last_error,
        last_error_at=connection.last_error_at,
        rate_limited_until=connection.rate_limited_until,
        counts_last_hour=counts,
        data_points_saved=await data_points_saved(session, connection.id),
    )


async def connection_health(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> ConnectionHealth:
    connection = await health_repo.get_connection(session, principal.tenant_id, connection_id)
    if connection is None:
        raise NotFound(f"no connection {connection_id}")
    queues = await health_repo.queue_figures(session, [connection.id])
    return await _health_of(
        session, connection, queues.get(connection.id), now or datetime.now(UTC)
    )


async def all_connection_health(
    session: AsyncSession, principal: Principal, *, now: datetime | None = None
) -> list[ConnectionHealth]:
    """Every connection the principal can see, with its health (the console's overview)."""
    connections = await health_repo.list_connections(session, principal.tenant_id)
    queues = await health_repo.queue_figures(session, [c.id for c in connections])
    moment = now or datetime.now(UTC)
    return [await _health_of(session, c, queues.get(c.id), moment) for c in connections]


async def queue_snapshots(session: AsyncSession) -> list[metrics.QueueSnapshot]:
    """Queue gauges for /metrics: every live connection, 0 when its queue is empty."""
    now = await health_repo.server_now(session)
    figures = await health_repo.queue_figures(session)
    ids = set(await health_repo.live_connection_ids(session)) | set(figures)
    snapshots = []
    for connection_id in sorted(ids, key=str):
        fig = figures.get(connection_id)
        oldest = fig.oldest_created_at if fig is not None else None
        snapshots.append(
            metrics.QueueSnapshot(
                connection_id=str(connection_id),
                depth=fig.depth if fig is not None else 0,
                oldest_age_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
            )
        )
    return snapshots


async def health_of(
    session: AsyncSession, connection: Connection, *, now: datetime | None = None
) -> ConnectionHealth:
    """One loaded connection's health (the alert evaluator's view, ops/alerts.py)."""
    queues = await health_repo.queue_figures(session, [connection.id])
    return await _health_of(
        session, connection, queues.get(connection.id), now or datetime.now(UTC)
    )

"""Replay one event: send again what did not settle as `delivered`.

A delivered object is never updated, re-created or re-sent. Events whose mapping is stale
(never mapped, or mapped with older connection settings) are re-mapped from the raw body first
(ops/remap.py). Bulk replays of many events are jobs (ops/replay_jobs.py) built on
`replay_in_session`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge import metrics
from braze_bridge.db.repositories import replay as replay_repo
from braze_bridge.domain.mapping import MappingContext
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.privacy import is_forgotten
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.errors import Conflict, NotFound
from braze_bridge.logging import get_logger
from braze_bridge.ops.remap import (
    PartnerLookup,
    RemapImpossible,
    needs_remap,
    remap_event,
    same_object,
)

log = get_logger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ReplayRefused(Exception):
    """This event cannot be replayed right now; `reason` says why (409 for a single replay)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReplayResult:
    event_id: uuid.UUID
    status: EventStatus
    requeued: int
    remapped: bool


async def replay_event(
    session: AsyncSession,
    principal: Principal,
    event_id: uuid.UUID,
    partners: PartnerLookup,
    *,
    now: datetime | None = None,
) -> ReplayResult:
    """Replay one event the principal can see; commits before returning."""
    try:
        result = await replay_in_session(
            session, principal.tenant_id, event_id, partners, now or utc_now()
        )
    except ReplayRefused as refused:
        await session.rollback()
        raise Conflict(refused.reason, details={"event_id": str(event_id)}) from refused
    if result is None:
        await session.rollback()
        raise NotFound(f"no event {event_id}")
    await session.commit()
    metrics.objects_replayed(result.requeued)
    log.info(
        "replay.event",
        event_id=str(event_id),
        requeued=result.requeued,
        remapped=result.remapped,
        status=result.status.value,
    )
    return result


async def replay_in_session(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    event_id: uuid.UUID,
    partners: PartnerLookup,
    now: datetime,
) -> ReplayResult | None:
    """Replay one event inside the caller's transaction (None: no such event in the tenant).

    Raises `ReplayRefused` when the event cannot be replayed now.
    """
    target = await replay_repo.lock_event(session, tenant_id, event_id)
    if target is None:
        return None
    event, connection = target.event, target.connection
    if connection.deleted_at is not None:
        raise ReplayRefused("the event's connection was deleted")
    if is_forgotten(event.normalized):
        raise ReplayRefused("the event's person was forgotten: nothing is left to send")
    if needs_remap(event.status, event.normalized, connection.version):
        return await _remap_and_requeue(session, target, partners, now)
    requeued = await replay_repo.requeue_undelivered(session, event.id, now)
    status = event.status
    if requeued:
        await replay_repo.mark_event_queued(session, event.id)
        await replay_repo.notify_outbox(session)
        status = EventStatus.QUEUED
    return ReplayResult(event.id, status, requeued, remapped=False)


async def _remap_and_requeue(
    session: AsyncSession,
    target: replay_repo.ReplayTarget,
    partners: PartnerLookup,
    now: datetime,
) -> ReplayResult:
    event, connection = target.event, target.connection
    partner = partners(connection.source)
    if partner is None:
        raise ReplayRefused(
            f"cannot re-map: no partner mapping is installed for {connection.source}"
        )
    body = await replay_repo.raw_body(session, event.id)
    if body is None:
        raise ReplayRefused("cannot re-map: the raw body was purged after the retention period")
    if await replay_repo.has_in_flight(session, event.id):
        raise ReplayRefused("the event's objects are being sent right now; try again shortly")
    context = MappingContext(
        received_at=event.received_at,
        app_id=connection.braze_app_id,
        known_values=await replay_repo.known_values(session, connection.id, event.user_key),
    )
    try:
        outcome = remap_event(
            partner, body.body, connection.settings, context, connection_version=connection.version
        )
    except RemapImpossible as exc:
        raise ReplayRefused(f"cannot re-map: {exc}") from exc

    delivered = await replay_repo.delivered_objects(session, event.id)
    fresh = [
        op
        for op in outcome.operations
        if not any(same_object(op, kind, key, payload) for kind, key, payload in delivered)
    ]
    await replay_repo.supersede_undelivered(session, event.id, connection.version, now)
    inserted = await replay_repo.insert_operations(session, event, fresh, now)
    status = outcome.status
    reason = outcome.reason
    if status == EventStatus.QUEUED and not inserted:
        # Everything the new mapping produces already reached Braze, or it produces nothing.
        status = EventStatus.DELIVERED if delivered else EventStatus.FILTERED
        reason = reason or (None if delivered else "the mapping produced no Braze objects")
    await replay_repo.record_remap(
        session,
        event.id,
        status=status,
        reason=reason,
        kind=outcome.kind,
        user_key=outcome.user_key,
        normalized=outcome.normalized,
        occurred_at=outcome.occurred_at,
        now=now,
    )
    if inserted:
        await replay_repo.notify_outbox(session)
    return ReplayResult(event.id, status, inserted, remapped=True)

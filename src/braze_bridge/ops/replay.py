"""Replay: one event now, or every event matching a filter as a background job with progress.

What a replay sends again is exactly what did not settle as `delivered`; a delivered object
is never updated, re-created or re-sent. Events whose mapping is stale (never mapped, or
mapped with older connection settings) are re-mapped from the raw body first (ops/remap.py).
Bulk jobs live in `replay_jobs`; any API process (or worker) runs them under a lease, so a
job whose runner died is picked up again and continues after the last event it finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.db.models import ReplayJob
from braze_bridge.db.repositories import replay as replay_repo
from braze_bridge.db.repositories.event_log import EventFilter
from braze_bridge.domain.mapping import MappingContext
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import EventStatus, ReplayStatus
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
        result = await _replay_one(
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


async def _replay_one(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    event_id: uuid.UUID,
    partners: PartnerLookup,
    now: datetime,
) -> ReplayResult | None:
    target = await replay_repo.lock_event(session, tenant_id, event_id)
    if target is None:
        return None
    event, connection = target.event, target.connection
    if connection.deleted_at is not None:
        raise ReplayRefused("the event's connection was deleted")
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


# --- bulk ---------------------------------------------------------------------------------------


async def start_bulk_replay(
    session: AsyncSession, principal: Principal, filters: EventFilter
) -> ReplayJob:
    """Record the job (scoped to the principal's tenant) and commit; a runner picks it up."""
    job = await replay_repo.create_job(session, principal.tenant_id, filters)
    await session.commit()
    log.info("replay.job_created", job_id=str(job.id), filters=job.filters)
    return job


async def get_replay_job(
    session: AsyncSession, principal: Principal, job_id: uuid.UUID
) -> ReplayJob:
    job = await replay_repo.get_job(session, principal.tenant_id, job_id)
    if job is None:
        raise NotFound(f"no replay job {job_id}")
    return job


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def run_next_replay_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    partners: PartnerLookup,
    *,
    owner: str,
    clock: Clock = utc_now,
    batch_size: int = 200,
    lease_seconds: float = 60.0,
    max_batches: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> bool:
    """Claim one open job and work it to the end; False when there was none.

    Each batch of events is one short transaction that also moves the job's progress and
    renews its lease, so progress is never ahead of what was committed. `max_batches` stops
    early (tests simulate a runner dying mid-job with it).
    """
    async with sessionmaker.begin() as session:
        job = await replay_repo.claim_job(session, owner, clock(), lease_seconds)
        if job is None:
            return False
        job_id = job.id
        if job.total is None:
            job.total = await replay_repo.count_job_events(session, job)
    log.info("replay.job_started", job_id=str(job_id), owner=owner)
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            if stopping():
                await _release(sessionmaker, job_id, owner)
                break
            batches += 1
            if not await _run_batch(
                sessionmaker, partners, job_id, owner, clock, batch_size, lease_seconds
            ):
                break
    except Exception as exc:
        # The class only: a database error's text holds the SQL and its parameters (emails,
        # coupon codes), which must reach neither the logs nor the job's API answer.
        log.error("replay.job_failed", job_id=str(job_id), error=type(exc).__name__)
        async with sessionmaker.begin() as session:
            failed = await replay_repo.lock_owned_job(session, job_id, owner)
            if failed is not None:
                failed.status = ReplayStatus.FAILED
                failed.error = f"the job stopped on an unexpected error ({type(exc).__name__})"
                failed.finished_at = clock()
                failed.lease_owner = None
                failed.lease_expires_at = None
    return True


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, owner: str
) -> None:
    """Hand the job back (this process is stopping): another runner continues it at once."""
    async with sessionmaker.begin() as session:
        job = await replay_repo.lock_owned_job(session, job_id, owner)
        if job is not None:
            job.lease_owner = None
            job.lease_expires_at = None
    log.info("replay.job_released", job_id=str(job_id), owner=owner)


async def _run_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    partners: PartnerLookup,
    job_id: uuid.UUID,
    owner: str,
    clock: Clock,
    batch_size: int,
    lease_seconds: float,
) -> bool:
    """Replay the next batch of the job; False once the job is finished (or not ours)."""
    requeued_total = 0
    async with sessionmaker.begin() as session:
        job = await replay_repo.lock_owned_job(session, job_id, owner)
        if job is None:
            log.warning("replay.job_lease_lost", job_id=str(job_id), owner=owner)
            return False
        now = clock()
        ids = await replay_repo.next_job_events(session, job, batch_size)
        if not ids:
            job.status = ReplayStatus.DONE
            job.finished_at = now
            job.lease_owner = None
            job.lease_expires_at = None
            log.info("replay.job_done", job_id=str(job_id), done=job.done, requeued=job.requeued)
            return False
        skipped = 0
        failed: list[str] = []
        for event_id in ids:
            try:
                async with session.begin_nested():
                    result = await _replay_one(session, job.tenant_id, event_id, partners, now)
            except ReplayRefused as refused:
                skipped += 1
                log.info(
                    "replay.event_skipped",
                    job_id=str(job_id),
                    event_id=str(event_id),
                    reason=refused.reason,
                )
                continue
            except Exception as exc:
                if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    raise  # the database went away: the whole batch retries later
                # One event the code cannot replay fails alone (its savepoint is rolled back);
                # the class only, as for a failed job.
                failed.append(f"{event_id} ({type(exc).__name__})")
                log.warning(
                    "replay.event_failed",
                    job_id=str(job_id),
                    event_id=str(event_id),
                    error=type(exc).__name__,
                )
                continue
            if result is not None:
                requeued_total += result.requeued
        job.done += len(ids) - len(failed)
        job.requeued += requeued_total
        job.skipped += skipped + len(failed)
        if failed:
            job.error = _failures_noted(job.error, failed)
        job.last_event_id = ids[-1]
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    metrics.objects_replayed(requeued_total)
    return True


FAILED_EVENTS_PREFIX = "events that could not be replayed (replay.event_failed in the logs): "


def _failures_noted(error: str | None, failed: list[str]) -> str:
    """The job's `error` listing the events that failed so far (ids and error classes only)."""
    listed = error + ", " if error else FAILED_EVENTS_PREFIX
    return (listed + ", ".join(failed))[:2000]


class ReplayRunner:
    """Runs bulk replay jobs in the background of a process until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        partners: PartnerLookup,
        *,
        poll_seconds: float = 2.0,
        lease_seconds: float = 60.0,
        batch_size: int = 200,
        clock: Clock = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.partners = partners
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.clock = clock
        self.owner = runner_id()
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        """A job was just created here: start it now rather than at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wakeup.clear()
            try:
                worked = await run_next_replay_job(
                    self.sessionmaker,
                    self.partners,
                    owner=self.owner,
                    clock=self.clock,
                    batch_size=self.batch_size,
                    lease_seconds=self.lease_seconds,
                    stopping=self._stop.is_set,
                )
            except Exception:
                # Database away: keep the API serving, try again at the next poll.
                log.exception("replay.runner_error")
                worked = False
            if worked:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_seconds)

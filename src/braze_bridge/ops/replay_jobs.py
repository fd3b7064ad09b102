"""Bulk replay jobs: the queue (`replay_jobs` rows), their claim under a lease, and the runner.

Any worker runs jobs as a side task: creating a job NOTIFYs `REPLAY_CHANNEL`, and a runner
also polls. A job whose runner died is picked up again once its lease expires and continues
after the last event it finished; a stopping runner hands its job back at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.db.models import ReplayJob
from braze_bridge.db.notify import REPLAY_CHANNEL, notify, wait_first
from braze_bridge.db.repositories import replay as replay_repo
from braze_bridge.db.repositories.event_log import EventFilter
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ReplayStatus
from braze_bridge.errors import NotFound
from braze_bridge.logging import get_logger
from braze_bridge.ops.remap import PartnerLookup
from braze_bridge.ops.replay import Clock, ReplayRefused, replay_in_session, utc_now

log = get_logger(__name__)


async def start_bulk_replay(
    session: AsyncSession, principal: Principal, filters: EventFilter
) -> ReplayJob:
    """Record the job (scoped to the principal's tenant) and commit; any worker picks it up."""
    job = await replay_repo.create_job(session, principal.tenant_id, filters)
    await notify(session, REPLAY_CHANNEL)
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
                    result = await replay_in_session(
                        session, job.tenant_id, event_id, partners, now
                    )
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
    """Runs bulk replay jobs, one after another, until its stop event is set."""

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

    def wake(self) -> None:
        """A job was just created (a NOTIFY): start it now rather than at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before looking, so a job created while we work is not missed.
            self._wakeup.clear()
            try:
                worked = await run_next_replay_job(
                    self.sessionmaker,
                    self.partners,
                    owner=self.owner,
                    clock=self.clock,
                    batch_size=self.batch_size,
                    lease_seconds=self.lease_seconds,
                    stopping=stop.is_set,
                )
            except Exception:
                # Database away: keep the process running, try again at the next poll.
                log.exception("replay.runner_error")
                worked = False
            if not worked:
                await wait_first(self._wakeup, stop, delay=self.poll_seconds)

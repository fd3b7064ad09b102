"""Retention: drop raw bodies and Braze attempts older than BRAZE_BRIDGE_RETENTION_DAYS.

Event rows, their normalized form and object statuses stay: the log still answers "what
happened", only the bulky bytes go. Deletion runs in small batches, each its own short
transaction, so ingest and delivery never wait behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.db.notify import wait_first
from braze_bridge.db.repositories import retention as retention_repo
from braze_bridge.logging import get_logger

log = get_logger(__name__)

# How often each worker purges; concurrent purges by several workers only split the work.
PURGE_INTERVAL_SECONDS = 600.0

DeleteBatch = Callable[[AsyncSession, datetime, int], Awaitable[int]]

TABLES: tuple[tuple[str, DeleteBatch], ...] = (
    ("event_bodies", retention_repo.delete_event_bodies_before),
    ("delivery_attempts", retention_repo.delete_attempts_before),
    ("replay_jobs", retention_repo.delete_finished_replay_jobs_before),
)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    deleted: dict[str, int]
    batches: int
    # False when `max_batches` stopped the run before everything old was gone.
    complete: bool


async def purge_expired(
    session_factory: async_sessionmaker[AsyncSession],
    retention_days: int,
    batch_size: int = 1000,
    *,
    now: datetime | None = None,
    max_batches: int = 1000,
) -> PurgeResult:
    """Delete what is older than `retention_days`, `batch_size` rows per transaction.

    Workers call this periodically (`purge_periodically`); `max_batches` bounds one call's
    work so a large backlog is worked off over several calls instead of one long one.
    """
    if retention_days < 1 or batch_size < 1:
        raise ValueError("retention_days and batch_size must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    deleted = {name: 0 for name, _ in TABLES}
    batches = 0
    complete = True
    for name, delete_batch in TABLES:
        while True:
            if batches >= max_batches:
                complete = False
                break
            async with session_factory.begin() as session:
                count = await delete_batch(session, cutoff, batch_size)
            batches += 1
            deleted[name] += count
            metrics.rows_purged(name, count)
            if count < batch_size:
                break
    if any(deleted.values()):
        log.info("retention.purged", cutoff=cutoff.isoformat(), batches=batches, **deleted)
    return PurgeResult(deleted, batches, complete)


async def purge_periodically(
    session_factory: async_sessionmaker[AsyncSession],
    retention_days: int,
    stop: asyncio.Event,
    *,
    interval_seconds: float = PURGE_INTERVAL_SECONDS,
) -> None:
    """Purge at start and then every `interval_seconds` until `stop` is set; never fatal."""
    while not stop.is_set():
        try:
            result = await purge_expired(session_factory, retention_days)
            log.info("retention.checked", result=repr(result))
        except Exception:
            log.exception("retention.purge_failed")
        await wait_first(stop, delay=interval_seconds)

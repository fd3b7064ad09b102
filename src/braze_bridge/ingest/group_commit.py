"""Group commit: concurrent webhook requests share one transaction, and so one WAL flush.

A per-request transaction waits for its own fsync, so a durable endpoint is bounded by the disk's
flush rate. Here each request puts its record on a queue and awaits a future; a committer task
takes everything queued (up to `max_batch`), writes it in one transaction and resolves each
future only after that COMMIT returned. While one batch commits, the next one fills up, so the
batch size follows the load with no added wait when the service is idle.

If a batch fails (a row the database refuses, a deadlock with another process), each of its
records is retried alone, so one bad request cannot fail the others.

Each committer keeps one pooled connection for its lifetime and sends each batch as a single
statement on it (`ingest_batch.store_events_on_driver`), which Postgres commits on its own: one round trip per batch.
Checking a connection out per batch cost a liveness ping (three round trips) and a BEGIN/COMMIT
pair more. A connection that breaks is discarded and the next batch checks out a fresh one.

Two committers, batches of at most 32: while Postgres runs one batch's statement (all of it in
one backend), this process parses and maps the next batch's requests, instead of the two
taking turns. Batches lock rows in key order, so their inserts cannot deadlock each other (nor
those of other API processes); only the Connected Content trim can, when two concurrent
batches change one reward of a user with more than 20 rewards: Postgres then cancels one after
a second and its records are retried. The committers' connections plan with sequential scans
off (`ingest_batch.BATCH_SESSION_SETTINGS`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.driver import HeldConnection
from braze_bridge.db.repositories.ingest_batch import (
    BATCH_SESSION_SETTINGS,
    IngestRecord,
    StoreResult,
    store_events_on_driver,
)
from braze_bridge.ingest.event_store import DirectStore
from braze_bridge.logging import get_logger

log = get_logger(__name__)


@dataclass(slots=True)
class _Pending:
    record: IngestRecord
    done: asyncio.Future[StoreResult]


class GroupCommitter:
    """An EventStore that batches concurrent `store()` calls into shared transactions."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 32, committers: int = 2) -> None:
        self._engine = engine
        self._direct = DirectStore(engine)
        self._max_batch = max_batch
        self._committers = committers
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0  # counters for the benchmark and tests
        self.records = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{n}")
            for n in range(self._committers)
        ]

    async def stop(self) -> None:
        """Commit what is queued, then stop the committers."""
        tasks, self._tasks = self._tasks, []
        for _ in tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def store(self, record: IngestRecord) -> StoreResult:
        if not self._tasks:
            return await self._direct.store(record)
        done: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(record, done))
        return await done

    async def _run(self) -> None:
        held = HeldConnection(self._engine, BATCH_SESSION_SETTINGS)
        try:
            while True:
                first = await self._queue.get()
                if first is None:
                    return
                batch = [first]
                stopping = False
                while len(batch) < self._max_batch and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                await self._commit(held, batch)
                if stopping:
                    return
        finally:
            await held.release()

    async def _commit(self, held: HeldConnection, batch: list[_Pending]) -> None:
        try:
            # One statement: atomic and durable when it returns, no BEGIN/COMMIT needed.
            results = await store_events_on_driver(await held.driver(), [p.record for p in batch])
        except Exception as exc:  # any failure: retry each record in its own transaction
            log.warning("ingest.batch_failed", size=len(batch), error=type(exc).__name__)
            await held.discard_if_broken()
            await self._commit_one_by_one(batch)
            return
        self.batches += 1
        self.records += len(batch)
        log.debug("ingest.batch_committed", size=len(batch))
        for pending, result in zip(batch, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(result)

    async def _commit_one_by_one(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                result = await self._direct.store(pending.record)
            except Exception as exc:  # reported to that request only
                if not pending.done.done():
                    pending.done.set_exception(exc)
            else:
                if not pending.done.done():
                    pending.done.set_result(result)

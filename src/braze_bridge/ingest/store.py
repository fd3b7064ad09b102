"""Writing accepted webhooks: one transaction per batch (event, body, operations, projection, NOTIFY).

`EventStore.store()` returns only after the COMMIT that holds the record's rows, so the route can
acknowledge right away. `DirectStore` uses one transaction per request; `GroupCommitter`
(group_commit.py) shares one transaction among concurrent requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.repositories import events as events_repo
from braze_bridge.db.repositories._driver import connection_driver
from braze_bridge.db.repositories.events import EventRecord, StoreResult


class EventStore(Protocol):
    async def store(self, record: EventRecord) -> StoreResult:
        """Durably store `record` (or find its original); return after COMMIT."""
        ...


async def write_batch(
    driver: asyncpg.Connection, records: Sequence[EventRecord]
) -> list[StoreResult]:
    """Every write of a batch of accepted webhooks (events, bodies, operations, the Connected
    Content projection, the outbox NOTIFY) in one statement: atomic on its own, or part of a
    transaction the caller opened on `driver`."""
    return await events_repo.store_events(driver, records)


class DirectStore:
    """One transaction per request: the simple path (tests, tools, the group committer's fallback)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def store(self, record: EventRecord) -> StoreResult:
        async with self._engine.begin() as conn:
            [result] = await write_batch(await connection_driver(conn), [record])
        return result

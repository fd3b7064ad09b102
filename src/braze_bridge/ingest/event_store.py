"""Writing accepted webhooks: one transaction per batch (event, body, operations, projection, NOTIFY).

`EventStore.store()` returns only after the COMMIT that holds the record's rows, so the route can
acknowledge right away. `DirectStore` uses one transaction per request; `GroupCommitter`
(group_commit.py) shares one transaction among concurrent requests.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from braze_bridge.db.repositories.ingest_batch import IngestRecord, StoreResult, store_events


class EventStore(Protocol):
    async def store(self, record: IngestRecord) -> StoreResult:
        """Durably store `record` (or find its original); return after COMMIT."""
        ...


class DirectStore:
    """One transaction per request: the simple path (tests, tools, the group committer's fallback)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def store(self, record: IngestRecord) -> StoreResult:
        async with AsyncSession(self._engine) as session, session.begin():
            [result] = await store_events(session, [record])
        return result

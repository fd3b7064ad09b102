"""Connection lookups shared by concurrent requests ("single flight").

Under load many webhooks for one connection arrive together. Each needs the connection row
(secrets, settings, deleted or not); rather than one query each, requests for the same id that
arrive while a query for it is running wait for that query's answer. Nothing is cached after the
query returns, so a deleted connection or a rotated secret is seen by the next request.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.repositories.live_connections import LiveConnection, get_live_connection


class ConnectionLookup:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._in_flight: dict[uuid.UUID, asyncio.Future[LiveConnection | None]] = {}

    async def get(self, connection_id: uuid.UUID) -> LiveConnection | None:
        pending = self._in_flight.get(connection_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(connection_id))
            self._in_flight[connection_id] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(connection_id, None))
        # shield: one caller giving up (client gone) must not cancel the query for the others.
        return await asyncio.shield(pending)

    async def _load(self, connection_id: uuid.UUID) -> LiveConnection | None:
        async with self._engine.connect() as conn:
            return await get_live_connection(conn, connection_id)

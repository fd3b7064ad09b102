"""Connection lookups for webhooks, batched across concurrent requests.

Under load many webhooks arrive together, each needing its connection row (secrets, settings,
deleted or not). One query runs at a time on a held connection: a request joins the running
query when it already asks for its id, otherwise it waits for the next one, which fetches every
id asked for meanwhile in one statement. Nothing is cached after a query returns, so a deleted
connection or a rotated secret is seen by the next request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.driver import HeldConnection
from braze_bridge.db.repositories.connections import LiveConnection, live_connections_on_driver

# Each request waits on a future of its own, so one giving up (client gone) cancels only its
# own wait, never the answer for the others, without `asyncio.shield` (one more future and one
# more event-loop hop per request).
_Waiters = dict[uuid.UUID, list[asyncio.Future[LiveConnection | None]]]


class ConnectionLookup:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        on_query_start: Callable[[list[uuid.UUID]], None] | None = None,
    ) -> None:
        """`on_query_start`: called with the ids of each query as it is sent (tests wait on it)."""
        self._held = HeldConnection(engine)
        self._on_query_start = on_query_start
        self._running: _Waiters = {}
        self._next: _Waiters = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, connection_id: uuid.UUID) -> LiveConnection | None:
        answer: asyncio.Future[LiveConnection | None] = asyncio.get_running_loop().create_future()
        waiting = self._running.get(connection_id) or self._next.get(connection_id)
        if waiting is None:
            waiting = self._next[connection_id] = []
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="connection-lookup")
        waiting.append(answer)
        return await answer

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._held.release()

    async def _run(self) -> None:
        while self._next:
            self._running, self._next = self._next, {}
            ids = list(self._running)
            if self._on_query_start is not None:
                self._on_query_start(ids)
            try:
                found = await self._fetch(ids)
            except Exception as exc:  # each waiting request fails (a 500), none hangs
                for waiting in self._running.values():
                    for answer in waiting:
                        if not answer.done():
                            answer.set_exception(exc)
            else:
                for connection_id, waiting in self._running.items():
                    connection = found.get(connection_id)
                    for answer in waiting:
                        if not answer.done():
                            answer.set_result(connection)
            finally:
                self._running = {}

    async def _fetch(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, LiveConnection]:
        try:
            return await live_connections_on_driver(await self._held.driver(), ids)
        except Exception:
            if not await self._held.discard_if_broken():
                raise
        # The held connection had died (e.g. Postgres restarted): once more on a fresh one.
        return await live_connections_on_driver(await self._held.driver(), ids)

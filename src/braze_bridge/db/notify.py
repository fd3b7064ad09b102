"""Wake-up channels: writers NOTIFY inside their transaction, workers LISTEN.

`OUTBOX_CHANNEL`: ingest and replay queued operations. `REPLAY_CHANNEL`: a bulk replay job was
created. `EVENTS_CHANNEL`: events were stored or changed status (ingest, roll-up); the API's
live feeds listen (ops/live_feed.py). A NOTIFY is only a hint that saves a poll interval; every loop also polls, so a lost
notification delays work but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.logging import get_logger

log = get_logger(__name__)

OUTBOX_CHANNEL = "braze_bridge_outbox"
REPLAY_CHANNEL = "braze_bridge_replay"
EVENTS_CHANNEL = "braze_bridge_events"

# A quiet LISTEN socket can die without the client noticing; a round trip this often tells.
PROBE_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 10.0
MAX_RECONNECT_BACKOFF_SECONDS = 30.0


async def notify(session: AsyncSession, channel: str) -> None:
    """NOTIFY `channel` when the session's transaction commits."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def wait_first(*events: asyncio.Event, delay: float) -> None:
    """Return once any of `events` is set, or after `delay` seconds."""
    if any(event.is_set() for event in events):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class OutboxListener:
    """LISTEN on a dedicated asyncpg connection and call a wake-up per channel; reconnect with
    backoff. On every (re)connect each wake-up is called once, to catch up on what arrived
    while nobody listened."""

    def __init__(
        self, dsn: str, wakes: Mapping[str, Callable[[], None]], *, log_as: str = "worker"
    ) -> None:
        self._dsn = dsn
        self._wakes = dict(wakes)
        self._log_as = log_as  # the first part of its log lines' event names
        # Set while LISTEN is in place (tests wait for it before they NOTIFY).
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled."""
        backoff = 0.5
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except Exception as exc:
                log.warning(f"{self._log_as}.listen_connect_failed", exc_info=exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF_SECONDS)
                continue
            backoff = 0.5
            try:
                await self._listen_on(connection)
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning(f"{self._log_as}.listen_lost", exc_info=exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _listen_on(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        for channel, wake in self._wakes.items():
            await connection.add_listener(channel, _callback(wake))
        self.listening.set()
        for wake in self._wakes.values():
            wake()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=PROBE_SECONDS)
            if not lost.is_set():
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PROBE_TIMEOUT_SECONDS)


def _callback(wake: Callable[[], None]) -> Callable[..., None]:
    return lambda *_: wake()

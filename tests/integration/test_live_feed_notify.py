"""What wakes the live feed: ingest and the delivery roll-up announce on EVENTS_CHANNEL, and one
FeedHub (one LISTEN) wakes every stream waiting on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.notify import EVENTS_CHANNEL, notify
from braze_bridge.db.repositories import outbox
from braze_bridge.domain.statuses import EventStatus, OperationStatus
from braze_bridge.ops.live_feed import FeedHub
from tests import extole_bodies as bodies
from tests.conftest import asyncpg_dsn
from tests.factories import MadeConnection, make_connection, make_tenant
from tests.integration.hooks_helpers import post_signed
from tests.ops_factories import make_event, reload_event

MARKER = "marker"


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Payloads NOTIFYed on EVENTS_CHANNEL from now on, in commit order."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.add_listener(EVENTS_CHANNEL, lambda *args: queue.put_nowait(args[3]))
    try:
        yield queue
    finally:
        await connection.close()


async def next_heard(queue: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(queue.get(), timeout=10)


async def mark(session: AsyncSession) -> None:
    """A NOTIFY after everything committed so far: what arrives before it came before it."""
    await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": EVENTS_CHANNEL, "p": MARKER})
    await session.commit()


@pytest.fixture
async def extole(session: AsyncSession) -> MadeConnection:
    return await make_connection(
        session, await make_tenant(session), settings={"reward_states": ["FULFILLED"]}
    )


async def test_a_stored_webhook_is_announced_to_live_feeds(
    client: httpx.AsyncClient,
    session: AsyncSession,
    extole: MadeConnection,
    heard: asyncio.Queue[str],
) -> None:
    response = await post_signed(client, extole, bodies.REWARD_FULFILLED)
    assert response.status_code == 200, response.text
    await mark(session)

    assert await next_heard(heard) == ""
    assert await next_heard(heard) == MARKER


async def test_a_redelivered_webhook_announces_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    extole: MadeConnection,
    heard: asyncio.Queue[str],
) -> None:
    first = await post_signed(client, extole, bodies.REWARD_FULFILLED)
    assert await next_heard(heard) == ""
    again = await post_signed(client, extole, bodies.REWARD_FULFILLED)
    await mark(session)

    assert again.json()["event_id"] == first.json()["event_id"]
    assert await next_heard(heard) == MARKER


async def test_the_roll_up_announces_events_that_settled_and_only_then(
    session: AsyncSession, extole: MadeConnection, heard: asyncio.Queue[str]
) -> None:
    settled = await make_event(
        session, extole, status=EventStatus.QUEUED, operations=[OperationStatus.DELIVERED]
    )
    open_one = await make_event(
        session, extole, status=EventStatus.QUEUED, operations=[OperationStatus.PENDING]
    )
    assert [await next_heard(heard), await next_heard(heard)] == ["", ""]  # the two inserts

    await outbox.roll_up_events(session, {open_one.id})  # still open: nothing changes
    await session.commit()
    await mark(session)
    assert await next_heard(heard) == MARKER

    await outbox.roll_up_events(session, {settled.id, open_one.id})
    await session.commit()
    assert await next_heard(heard) == ""
    assert (await reload_event(session, settled)).status == EventStatus.DELIVERED
    assert (await reload_event(session, open_one)).status == EventStatus.QUEUED


async def test_one_hub_wakes_every_waiting_stream_folds_bursts_and_ends_streams_at_close(
    database_url: str, session: AsyncSession
) -> None:
    hub = FeedHub(asyncpg_dsn(database_url), coalesce_seconds=0.3, safety_seconds=3600)
    await hub.start()
    try:
        listener = hub._listener
        assert listener is not None
        await asyncio.wait_for(listener.listening.wait(), 10)
        # The (re)connect wake-up: let it land so the burst below starts from a still hub.
        await asyncio.wait_for(hub.wait(hub.generation, 10), 10)
        start = hub.generation
        streams = [asyncio.create_task(hub.wait(start, 30)) for _ in range(5)]
        async with session.begin():
            await notify(session, EVENTS_CHANNEL)
        await asyncio.wait_for(asyncio.gather(*streams), 10)
        assert hub.generation == start + 1
        assert not hub.closing

        # A burst of wake-ups (many NOTIFYs arriving together) is one wake-up of the streams.
        burst_start = hub.generation
        waiting = asyncio.create_task(hub.wait(burst_start, 30))
        for _ in range(10):
            hub.changed()
        await asyncio.wait_for(waiting, 10)
        assert hub.generation == burst_start + 1

        waiting = asyncio.create_task(hub.wait(hub.generation, 30))
        hub.close()
        await asyncio.wait_for(waiting, 1)
        assert hub.closing
        await asyncio.wait_for(hub.wait(hub.generation, 30), 1)  # a new stream ends at once
    finally:
        await hub.stop()

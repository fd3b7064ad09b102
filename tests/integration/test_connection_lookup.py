"""The ingest connection lookup: concurrent requests share queries, answers are never stale."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from braze_bridge.db.models import Connection
from braze_bridge.ingest.lookup import ConnectionLookup
from tests.conftest import terminate_other_backends
from tests.factories import MadeConnection, make_connection, make_tenant


async def test_concurrent_lookups_answer_each_id_and_unknown_ids_with_none(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    tenant = await make_tenant(session)
    first = await make_connection(session, tenant)
    second = await make_connection(session, tenant)
    unknown = uuid.uuid4()
    lookup = ConnectionLookup(engine)
    try:
        asked = [first.id, second.id, unknown] * 20
        found = await asyncio.gather(*(lookup.get(c) for c in asked))
    finally:
        await lookup.close()

    assert [None if f is None else f.id for f in found] == [
        None if c == unknown else c for c in asked
    ]
    assert found[0] is not None
    assert found[0].tenant_id == tenant.id


@pytest.fixture
async def connection(session: AsyncSession) -> MadeConnection:
    return await make_connection(session, await make_tenant(session))


async def test_a_change_committed_before_the_request_is_seen(
    engine: AsyncEngine, session: AsyncSession, connection: MadeConnection
) -> None:
    lookup = ConnectionLookup(engine)
    try:
        before = await lookup.get(connection.id)
        await session.execute(
            update(Connection)
            .where(Connection.id == connection.id)
            .values(deleted_at=datetime.now(UTC))
        )
        await session.commit()
        after = await lookup.get(connection.id)
    finally:
        await lookup.close()

    assert before is not None
    assert after is None


async def test_a_lost_database_connection_is_replaced_without_failing_requests(
    engine: AsyncEngine, session: AsyncSession, connection: MadeConnection
) -> None:
    lookup = ConnectionLookup(engine)
    try:
        assert await lookup.get(connection.id) is not None
        await terminate_other_backends(session)  # the lookup's held connection dies too
        found = await lookup.get(connection.id)
    finally:
        await lookup.close()

    assert found is not None
    assert found.id == connection.id


async def test_a_request_that_gives_up_leaves_the_others_their_answer(
    engine: AsyncEngine, connection: MadeConnection
) -> None:
    queried: list[list[uuid.UUID]] = []
    started = asyncio.Event()

    def query_started(ids: list[uuid.UUID]) -> None:
        queried.append(ids)
        started.set()

    lookup = ConnectionLookup(engine, on_query_start=query_started)
    try:
        leaving = asyncio.create_task(lookup.get(connection.id))
        staying = asyncio.create_task(lookup.get(connection.id))
        await started.wait()  # the one query for both is on its way
        assert not staying.done()
        leaving.cancel()
        found = await staying
        again = await lookup.get(connection.id)
    finally:
        await lookup.close()

    assert leaving.cancelled()
    assert queried[0] == [connection.id]
    assert found is not None
    assert found.id == connection.id
    assert again is not None

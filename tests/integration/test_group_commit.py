"""The group committer: one transaction for concurrent requests, exact per-request outcomes."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from braze_bridge.db.driver import HeldConnection
from braze_bridge.db.models import Event
from braze_bridge.db.repositories.ingest_batch import (
    BATCH_SESSION_SETTINGS,
    IngestRecord,
    StoreResult,
)
from braze_bridge.domain.ids import uuid7
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.ingest.group_commit import GroupCommitter
from tests.conftest import terminate_other_backends
from tests.factories import MadeConnection, make_connection, make_tenant


def record(tenant_id: uuid.UUID, connection_id: uuid.UUID, key: str) -> IngestRecord:
    user = UserRef(external_id="u1")
    return IngestRecord(
        id=uuid7(),
        tenant_id=tenant_id,
        connection_id=connection_id,
        dedupe_key=key,
        status=EventStatus.QUEUED,
        received_at=datetime.now(UTC),
        body=b"{}",
        headers={},
        content_type="application/json",
        user_key=user.key,
        operations=[Operation.attributes(user, {"email": "a@b.co"})],
    )


async def test_one_batch_resolves_duplicates_and_isolates_a_bad_row(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    tenant = await make_tenant(session)
    connection = await make_connection(session, tenant)
    good = [record(tenant.id, connection.id, f"event:{n}") for n in range(5)]
    twin = record(tenant.id, connection.id, "event:0")  # same key as good[0], same batch
    orphan = record(tenant.id, uuid.uuid4(), "event:orphan")  # no such connection

    committer = GroupCommitter(engine, committers=1)
    await committer.start()
    try:
        results = await asyncio.gather(
            *(committer.store(r) for r in [*good, twin, orphan]), return_exceptions=True
        )
    finally:
        await committer.stop()

    *good_results, twin_result, orphan_result = results
    assert [getattr(r, "duplicate", None) for r in good_results] == [False] * 5
    assert twin_result == StoreResult(event_id=good[0].id, duplicate=True)
    assert isinstance(orphan_result, asyncpg.ForeignKeyViolationError)
    assert orphan_result.constraint_name == "fk_events_connection_id_connections"
    stored = await session.scalar(select(func.count()).select_from(Event))
    assert stored == 5


@pytest.fixture
async def committer(engine: AsyncEngine) -> AsyncIterator[GroupCommitter]:
    started = GroupCommitter(engine, committers=1)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def connection(session: AsyncSession) -> MadeConnection:
    return await make_connection(session, await make_tenant(session))


async def test_concurrent_stores_share_transactions(
    committer: GroupCommitter, connection: MadeConnection
) -> None:
    """All 50 are queued before the committer runs again, so it takes them in full batches."""
    await asyncio.gather(
        *(
            committer.store(record(connection.row.tenant_id, connection.id, f"k{n}"))
            for n in range(50)
        )
    )
    assert committer.records == 50
    assert committer.batches == math.ceil(50 / 32)  # the committer's default max_batch


async def test_a_lost_database_connection_costs_no_request(
    committer: GroupCommitter, connection: MadeConnection, session: AsyncSession
) -> None:
    await committer.store(record(connection.row.tenant_id, connection.id, "before"))
    # The committer's held connection dies with the others.
    await terminate_other_backends(session)
    during = await committer.store(record(connection.row.tenant_id, connection.id, "during"))
    after = await committer.store(record(connection.row.tenant_id, connection.id, "after"))

    assert not during.duplicate
    assert not after.duplicate
    keys = await session.scalars(select(Event.dedupe_key).order_by(Event.dedupe_key))
    assert list(keys) == ["after", "before", "during"]


async def test_a_held_connections_settings_last_until_it_is_released(engine: AsyncEngine) -> None:
    held = HeldConnection(engine, BATCH_SESSION_SETTINGS)
    driver = await held.driver()
    assert await driver.fetchval("SHOW enable_seqscan") == "off"

    await held.release()

    # Back in the pool as it came: other users of the connection plan as usual.
    assert await driver.fetchval("SHOW enable_seqscan") == "on"

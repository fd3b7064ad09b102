"""The worker against the in-process Braze sandbox: packing, merging, identity, statuses."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Event
from braze_bridge.domain.statuses import ObjectKind
from tests.delivery_support import drain, make_worker, op_states, sandbox_client
from tests.factories import make_connection, make_operations, make_tenant


async def test_backlog_goes_out_in_full_requests_and_every_object_is_delivered(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(session)
    conn = await make_connection(session, tenant)
    ops = await make_operations(session, conn, 300, users=300)
    http, sandbox = sandbox_client()
    async with http:
        worker = make_worker(sessionmaker, http)
        await drain(worker)
    states = await op_states(session, ops)
    assert {s.status for s in states} == {"delivered"}
    assert sandbox.counts["/users/track 201"] == 4
    assert sandbox.counts["objects.events"] == 300
    first = states[0].sent_object
    assert first == {
        "external_id": "user-0",
        "name": "test_event",
        "time": "2026-01-01T00:00:00Z",
        "properties": {"n": 0},
    }
    statuses = (await session.execute(select(Event.status))).scalars().all()
    assert set(statuses) == {"delivered"}
    attempts = await session.scalar(text("SELECT count(*) FROM delivery_attempts"))
    carried = await session.scalar(text("SELECT count(*) FROM attempt_operations"))
    assert (attempts, carried) == (4, 300)


async def test_one_users_attribute_objects_are_merged_in_order(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(session)
    conn = await make_connection(session, tenant)
    first = await make_operations(
        session, conn, kind=ObjectKind.ATTRIBUTES, payload={"tier": "silver", "city": "Oslo"}
    )
    second = await make_operations(
        session, conn, kind=ObjectKind.ATTRIBUTES, payload={"tier": "gold"}
    )
    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    track = [r for r in sandbox.received if r["endpoint"] == "/users/track"]
    assert len(track) == 1
    assert track[0]["body"] == {
        "attributes": [{"external_id": "user-1", "tier": "gold", "city": "Oslo"}]
    }
    assert [s.status for s in await op_states(session, first + second)] == ["delivered"] * 2

"""The claim statement on real Postgres: per-user order, no double claims, leases, held connections."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.repositories import attempts, outbox, rate_buckets
from braze_bridge.db.repositories.outbox import SettleRow
from braze_bridge.domain.statuses import ConnectionState, OperationStatus
from tests.factories import make_connection, make_operations, make_tenant


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], owner: str = "w1", limit: int = 100, **kw: int
) -> list[int]:
    async with sessionmaker.begin() as session:
        claimed = await outbox.claim_due_operations(
            session,
            owner=owner,
            limit=limit,
            lease_seconds=kw.get("lease", 60),
            run_cap=kw.get("run_cap", 16),
        )
    return [op.id for op in claimed]


async def test_a_users_later_objects_are_not_claimable_while_an_earlier_one_is_unsettled(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    alice = await make_operations(session, conn, 3, external_id="alice")
    bob = await make_operations(session, conn, 1, external_id="bob")
    # One claim takes alice's head with her run (up to run_cap) and bob.
    assert await claim(sessionmaker, run_cap=1) == [alice[0].id, alice[1].id, bob[0].id]
    # alice's third waits: her first two are in flight.
    assert await claim(sessionmaker, owner="w2") == []
    async with sessionmaker.begin() as s:
        await outbox.settle_operations(
            s, owner="w1", rows=[SettleRow(alice[0].id, OperationStatus.DELIVERED)]
        )
    assert await claim(sessionmaker, owner="w2") == []  # alice[1] still in flight
    async with sessionmaker.begin() as s:
        await outbox.settle_operations(
            s, owner="w1", rows=[SettleRow(alice[1].id, OperationStatus.FAILED, reason="x")]
        )
    assert await claim(sessionmaker, owner="w2") == [alice[2].id]


async def test_a_run_stops_at_an_object_scheduled_for_later(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 3, external_id="alice")
    await session.execute(
        text("UPDATE operations SET available_at = now() + interval '1 hour' WHERE id = :id"),
        {"id": ops[1].id},
    )
    await session.commit()
    assert await claim(sessionmaker) == [ops[0].id]


async def test_two_concurrent_claimers_never_share_an_operation(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 400, users=40)
    claimed: dict[str, list[int]] = {f"w{i}": [] for i in range(4)}

    async def claimer(owner: str) -> None:
        # A claimer that finds the lane locked by another gets nothing and tries again.
        for _ in range(400):
            if sum(map(len, claimed.values())) >= 400:
                return
            got = await claim(sessionmaker, owner=owner, limit=7, run_cap=3)
            claimed[owner] += got
            if got:
                async with sessionmaker.begin() as s:
                    await outbox.settle_operations(
                        s, owner=owner, rows=[SettleRow(i, OperationStatus.DELIVERED) for i in got]
                    )

    await asyncio.gather(*(claimer(owner) for owner in claimed))
    every = [op_id for ids in claimed.values() for op_id in ids]
    assert len(every) == len(set(every)) == 400
    assert sorted(every) == sorted(op.id for op in ops)


async def test_an_expired_lease_is_claimable_at_once_without_a_recovery_step(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    alice = await make_operations(session, conn, 2, external_id="alice")
    assert await claim(sessionmaker, owner="dead-worker") == [op.id for op in alice]
    await session.execute(
        text("UPDATE operations SET lease_expires_at = now() - interval '1 second'")
    )
    await session.commit()
    # The very next claim takes over the expired leases, head and follower, in order.
    assert await claim(sessionmaker, owner="w2") == [op.id for op in alice]
    rows = await session.execute(text("SELECT DISTINCT status, lease_owner FROM operations"))
    assert rows.all() == [("in_flight", "w2")]
    # The dead worker's late settle no longer applies.
    async with sessionmaker.begin() as s:
        touched = await outbox.settle_operations(
            s, owner="dead-worker", rows=[SettleRow(alice[0].id, OperationStatus.DELIVERED)]
        )
    assert (touched.event_ids, touched.statuses) == (set(), {})
    rows = await session.execute(text("SELECT DISTINCT status, lease_owner FROM operations"))
    assert rows.all() == [("in_flight", "w2")]


@pytest.mark.perf
async def test_a_claim_rewrites_no_index_entries(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A HOT update: no index names a column it changes, and the page has room (fillfactor)."""
    conn = await make_connection(session, await make_tenant(session))
    await make_operations(session, conn, 12, users=6)
    # Counters this backend has not reported yet: compare before and after each statement.
    hot_and_all = text(
        "SELECT pg_stat_get_xact_tuples_hot_updated('operations'::regclass),"
        " pg_stat_get_xact_tuples_updated('operations'::regclass)"
    )

    async def updates(s: AsyncSession) -> tuple[int, int]:
        hot, every = (await s.execute(hot_and_all)).one()
        return int(hot), int(every)

    async with sessionmaker.begin() as s:
        hot, every = await updates(s)
        claimed = await outbox.claim_due_operations(s, owner="w1", limit=100, lease_seconds=60)
        assert len(claimed) == 12
        assert await updates(s) == (hot + 12, every + 12)


async def test_a_graceful_stop_hands_back_exactly_its_own_leases(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    mine = await make_operations(session, conn, 2, users=2)
    theirs = await make_operations(session, conn, 1, external_id="carol")
    assert await claim(sessionmaker, owner="w1", limit=2) == [op.id for op in mine]
    assert await claim(sessionmaker, owner="w2") == [theirs[0].id]
    async with sessionmaker.begin() as s:
        assert await outbox.release_all_leases(s, owner="w1") == 2
    rows = await session.execute(
        text("SELECT id, status, lease_owner, attempts FROM operations ORDER BY id")
    )
    assert rows.all() == [
        (mine[0].id, "pending", None, 0),
        (mine[1].id, "pending", None, 0),
        (theirs[0].id, "in_flight", "w2", 0),
    ]
    assert await claim(sessionmaker, owner="w3") == [op.id for op in mine]


async def test_attempt_links_go_with_their_attempt_or_their_object(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """attempt_operations has no foreign keys; deletes still cascade (statement triggers)."""
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 3, users=3)
    await claim(sessionmaker)

    def record(op_ids: list[int]) -> attempts.AttemptWrite:
        return attempts.AttemptWrite(
            tenant_id=conn.row.tenant_id,
            connection_id=conn.id,
            endpoint="/users/track",
            worker_id="w1",
            request_json="{}",
            status_code=201,
            response_body="{}",
            response_headers=None,
            error=None,
            duration_ms=1.0,
            started_at=datetime.now(UTC),
            operations=[(op_id, "delivered") for op_id in op_ids],
        )

    async with sessionmaker.begin() as s:
        await attempts.record_attempts(s, [record([ops[0].id, ops[1].id]), record([ops[2].id])])
    links = text("SELECT attempt_id, operation_id FROM attempt_operations ORDER BY 2")
    (first, _), (_, _), (second, _) = (await session.execute(links)).all()

    await session.execute(text("DELETE FROM events WHERE id = :id"), {"id": ops[0].event_id})
    await session.commit()
    assert (await session.execute(links)).all() == [(first, ops[1].id), (second, ops[2].id)]
    await session.execute(text("DELETE FROM delivery_attempts WHERE id = :id"), {"id": first})
    await session.commit()
    assert (await session.execute(links)).all() == [(second, ops[2].id)]


@pytest.mark.parametrize("state", [ConnectionState.PAUSED, ConnectionState.AUTH_ERROR])
async def test_held_connections_are_never_claimed_and_nothing_goes_dead(
    state: ConnectionState, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(session)
    held = await make_connection(session, tenant, state=state)
    live = await make_connection(session, tenant)
    await make_operations(session, held, 3, users=3)
    live_ops = await make_operations(session, live, 2, users=2)
    assert await claim(sessionmaker) == [op.id for op in live_ops]
    statuses = await session.execute(
        text("SELECT status, attempts FROM operations WHERE connection_id = :id"), {"id": held.id}
    )
    assert statuses.all() == [("pending", 0)] * 3


async def test_a_rate_limited_connection_waits_until_its_time(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 1)
    await session.execute(
        text("UPDATE connections SET rate_limited_until = now() + interval '1 minute'")
    )
    await session.commit()
    assert await claim(sessionmaker) == []
    await session.execute(text("UPDATE connections SET rate_limited_until = now()"))
    await session.commit()
    assert await claim(sessionmaker) == [ops[0].id]


async def test_event_status_rolls_up_once_every_object_is_settled(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    cases = {
        "delivered": [OperationStatus.DELIVERED, OperationStatus.DELIVERED],
        "partially_delivered": [OperationStatus.DELIVERED, OperationStatus.FAILED],
        "dead": [OperationStatus.FAILED, OperationStatus.DEAD],
        "rejected": [OperationStatus.FAILED, OperationStatus.FAILED],
        "filtered": [OperationStatus.SKIPPED, OperationStatus.SKIPPED],
    }
    made = {name: await make_operations(session, conn, 2, users=2, per_event=2) for name in cases}
    await claim(sessionmaker, limit=100)
    async with sessionmaker.begin() as s:
        rows = [
            SettleRow(op.id, status, reason=None if status == "delivered" else "why")
            for name, statuses in cases.items()
            for op, status in zip(made[name], statuses, strict=True)
        ]
        settled = await outbox.settle_operations(s, owner="w1", rows=rows)
        await outbox.roll_up_events(s, settled.event_ids)
    for name, ops in made.items():
        status, reason = (
            await session.execute(
                text("SELECT status, reason FROM events WHERE id = :id"), {"id": ops[0].event_id}
            )
        ).one()
        assert status == name
        if name == "partially_delivered":
            assert reason == "1 of 2 objects not delivered: why"


async def test_concurrent_takers_never_get_more_tokens_than_the_bucket_holds(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async def take() -> int:
        async with sessionmaker.begin() as s:
            got = await rate_buckets.take_tokens(
                s, "track:test", wanted=3, capacity=20, refill_per_second=0.001
            )
        return got.granted

    granted = await asyncio.gather(*(take() for _ in range(15)))
    assert sum(granted) == 20

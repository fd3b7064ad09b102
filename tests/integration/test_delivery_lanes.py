"""Delivery lanes on real Postgres: the flush policy (full request or batch budget), one claimer
per lane across workers, fair rotation between tenants, and per-user order through a lane's cut.

Braze's `/users/track` takes at most 75 objects per request (braze-inc/braze-docs
`_docs/_api/endpoints/user_data/post_user_track.md`); a full request is 75 objects.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.repositories import outbox
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.domain.statuses import OperationStatus
from tests.factories import MadeConnection, make_connection, make_operations, make_tenant

# A budget no test run reaches by itself: only backdating the rows makes objects "old".
LONG_BUDGET_MS = 60_000


async def claim(
    session: AsyncSession, owner: str = "w1", limit: int = 300
) -> list[ClaimedOperation]:
    return await outbox.claim_due_operations(
        session, owner=owner, limit=limit, lease_seconds=60, run_cap=16
    )


async def claim_ids(sessionmaker: async_sessionmaker[AsyncSession], owner: str = "w1") -> list[int]:
    async with sessionmaker.begin() as session:
        return [op.id for op in await claim(session, owner)]


async def age(session: AsyncSession, connection: MadeConnection, seconds: float) -> None:
    """Move the connection's queued objects `seconds` into the past (the clock, injected)."""
    await session.execute(
        text(
            "UPDATE operations SET created_at = created_at - make_interval(secs => :s), "
            "available_at = available_at - make_interval(secs => :s) WHERE connection_id = :c"
        ),
        {"s": seconds, "c": connection.id},
    )
    await session.commit()


async def settle(
    sessionmaker: async_sessionmaker[AsyncSession], owner: str, ids: list[int]
) -> None:
    async with sessionmaker.begin() as session:
        await outbox.settle_operations(
            session, owner=owner, rows=[SettleRow(i, OperationStatus.DELIVERED) for i in ids]
        )


async def test_a_lane_goes_out_when_it_holds_a_full_request_and_only_whole_requests(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(
        session, await make_tenant(session), max_batch_wait_ms=LONG_BUDGET_MS
    )
    first = await make_operations(session, conn, 74, users=74)
    assert await claim_ids(sessionmaker) == []  # 74 fresh objects: a half-full request waits
    more = [
        op for n in range(10) for op in await make_operations(session, conn, external_id=f"u{n}")
    ]
    ids = await claim_ids(sessionmaker)
    # 84 due: one whole request of 75 goes, the oldest first; 9 wait for more or the budget.
    assert ids == sorted(op.id for op in [*first, *more][:75])
    assert await claim_ids(sessionmaker, "w2") == []


async def test_a_lone_object_goes_once_it_has_waited_the_budget(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session), max_batch_wait_ms=500)
    ops = await make_operations(session, conn, 3, users=3)
    await age(session, conn, 0.2)
    assert await claim_ids(sessionmaker) == []  # 200 ms of 500: still collecting
    await age(session, conn, 0.31)
    assert await claim_ids(sessionmaker) == [op.id for op in ops]


async def test_a_zero_budget_sends_at_once(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session), max_batch_wait_ms=0)
    ops = await make_operations(session, conn, 1)
    assert await claim_ids(sessionmaker) == [ops[0].id]


async def test_the_worker_sleeps_until_the_oldest_object_reaches_the_budget(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(
        session, await make_tenant(session), max_batch_wait_ms=LONG_BUDGET_MS
    )
    await make_operations(session, conn, 1)
    await age(session, conn, 15)
    async with sessionmaker() as s:
        due = await outbox.seconds_until_next_due(s)
    assert due is not None
    assert 44 < due <= 45


async def test_two_workers_never_split_one_lane_into_two_half_full_requests(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session), max_batch_wait_ms=500)
    ops = await make_operations(session, conn, 40, users=40)
    await age(session, conn, 1)
    async with sessionmaker.begin() as one:
        first = await claim(one, "w1")
        # While w1's claim is not committed, w2 skips the lane instead of taking the rest.
        async with sessionmaker.begin() as two:
            assert await claim(two, "w2") == []
    assert [op.id for op in first] == [op.id for op in ops]
    assert await claim_ids(sessionmaker, "w2") == []


async def test_a_second_worker_does_not_take_the_half_full_rest_of_a_lane(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(
        session, await make_tenant(session), max_batch_wait_ms=LONG_BUDGET_MS
    )
    await make_operations(session, conn, 100, users=100)
    assert len(await claim_ids(sessionmaker, "w1")) == 75
    assert await claim_ids(sessionmaker, "w2") == []  # 25 left: not a full request yet


async def test_another_tenants_trickle_is_claimed_while_one_tenant_has_a_backlog(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    big = await make_connection(session, await make_tenant(session), max_batch_wait_ms=500)
    await make_operations(session, big, 600, users=600)
    await age(session, big, 60)  # a backlog older than anything tenant B sends
    small = await make_connection(session, await make_tenant(session), max_batch_wait_ms=500)
    trickle = await make_operations(session, small, 1)
    await age(session, small, 1)
    async with sessionmaker.begin() as s:
        claimed = await claim(s, limit=100)
    by_connection: dict[uuid.UUID, int] = {}
    for op in claimed:
        by_connection[op.connection_id] = by_connection.get(op.connection_id, 0) + 1
    assert by_connection == {big.id: 100, small.id: 1}
    assert trickle[0].id in {op.id for op in claimed}


async def test_a_lanes_cut_keeps_each_users_order(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(
        session, await make_tenant(session), max_batch_wait_ms=LONG_BUDGET_MS
    )
    # 40 users with 2 objects each: 80 due, the cut at 75 falls inside users' runs.
    ops = await make_operations(session, conn, 80, users=40)
    by_user: dict[str, list[int]] = {}
    for op in ops:
        by_user.setdefault(op.user_key, []).append(op.id)
    first = await claim_ids(sessionmaker)
    assert len(first) == 75
    for ids in by_user.values():
        taken = [i for i in ids if i in set(first)]
        assert taken == ids[: len(taken)]  # a prefix of the user's objects, never a later one
    await settle(sessionmaker, "w1", first)
    await age(session, conn, 61)
    rest = await claim_ids(sessionmaker)
    assert sorted(first + rest) == sorted(op.id for op in ops)

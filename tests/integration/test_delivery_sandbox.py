"""The worker against the in-process Braze sandbox: packing, merging, identity, statuses."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.braze.client import BrazeClient
from braze_bridge.db.models import Event
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.delivery.identity import NoProfile
from braze_bridge.delivery.ratelimit import export_bucket
from braze_bridge.delivery.worker import DeliveryWorker
from braze_bridge.domain.statuses import ObjectKind
from braze_bridge.sandbox.app import SandboxConfig
from tests.delivery_support import drain, make_worker, op_states, sandbox_client
from tests.factories import SANDBOX_ENDPOINT, make_connection, make_operations, make_tenant


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


async def test_a_braze_account_capped_at_50_objects_still_gets_every_event(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The connection says 75 (the default) but the account is on the Monthly Active Users
    CY 24-25 plan (braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`:
    50 combined), so Braze answers 400 "Max Input Length Exceeded" (braze-inc/braze-docs
    `_docs/_api/errors.md`): the request is halved, nothing fails."""
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 75, users=75)
    http, sandbox = sandbox_client(SandboxConfig(seed=1, track_object_cap="combined_50"))
    async with http:
        await drain(make_worker(sessionmaker, http))
    assert {s.status for s in await op_states(session, ops)} == {"delivered"}
    assert sandbox.counts["/users/track 400"] == 1
    assert sandbox.counts["/users/track 201"] == 2
    assert sandbox.counts["objects.events"] == 75
    accepted = [r for r in sandbox.received if r["status"] == 201]
    assert all(len(r["body"]["events"]) <= 50 for r in accepted)


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


async def test_two_workers_draining_one_outbox_send_each_object_exactly_once(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(session)
    conn = await make_connection(session, tenant)
    ops = await make_operations(session, conn, 600, users=150)
    http, sandbox = sandbox_client()
    async with http:
        workers = [
            make_worker(sessionmaker, http, worker_id=f"w{i}", lanes=2, claim_limit=40, run_cap=2)
            for i in range(2)
        ]

        async def share(worker: DeliveryWorker) -> None:
            # One claimer per connection at a time: a claim that finds the lane taken by the
            # other worker gets nothing, and the worker claims again (as on its next wake-up).
            for _ in range(1000):
                if sum(w.stats.delivered for w in workers) >= len(ops):
                    return
                if not await worker.claim_and_deliver_once():
                    await asyncio.sleep(0)

        await asyncio.gather(*(share(w) for w in workers))
        assert all(w.stats.delivered > 0 for w in workers)
    assert {s.status for s in await op_states(session, ops)} == {"delivered"}
    sent = Counter(
        (event["external_id"], event["properties"]["n"])
        for request in sandbox.received
        if request["endpoint"] == "/users/track"
        for event in request["body"]["events"]
    )
    assert len(sent) == 600
    assert set(sent.values()) == {1}


async def test_concurrent_lookups_of_one_email_share_one_braze_call(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(session)
    conns = [await make_connection(session, tenant) for _ in range(2)]
    rows = [
        await make_operations(session, conn, 1, external_id=None, email="same@example.com")
        for conn in conns
    ]
    http, sandbox = sandbox_client()
    async with http:
        worker = make_worker(sessionmaker, http)
        async with sessionmaker() as s:
            loaded = await connection_repo.load_delivery_connections(s, [c.id for c in conns])
        client = BrazeClient(http, SANDBOX_ENDPOINT, "k")
        bucket = export_bucket(loaded[conns[0].id], "k")
        # Same connection, same email, asked three times at once: one call.
        answers = await asyncio.gather(
            *(
                worker.resolver.resolve_emails(
                    loaded[conns[0].id], client, bucket, {"same@example.com": [rows[0][0].id]}
                )
                for _ in range(3)
            )
        )
        assert sandbox.counts["/users/export/ids 201"] == 1
        assert all(isinstance(a["same@example.com"], NoProfile) for a in answers)
        # The cache is per connection: the other connection asks Braze itself.
        await worker.resolver.resolve_emails(
            loaded[conns[1].id], client, bucket, {"same@example.com": [rows[1][0].id]}
        )
        assert sandbox.counts["/users/export/ids 201"] == 2

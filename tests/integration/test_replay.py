"""Replay: one event or a filter; only what did not settle as delivered is sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.api.events import partner_lookup
from braze_bridge.db.models import AttemptOperation, Connection, Event, EventBody
from braze_bridge.db.notify import OUTBOX_CHANNEL, REPLAY_CHANNEL
from braze_bridge.domain.statuses import EventStatus, ObjectKind, OperationStatus
from braze_bridge.ops.remap import MAPPED_VERSION_KEY
from braze_bridge.ops.replay_jobs import run_next_replay_job
from braze_bridge.runtime import Runtime, build_worker
from tests.conftest import asyncpg_dsn
from tests.factories import SANDBOX_ENDPOINT
from tests.fake_partner import fake_partners
from tests.ops_factories import (
    ObjectSpec,
    Tenancy,
    make_attempt,
    make_event,
    operations_of,
    reload_event,
)

pytestmark = pytest.mark.rollback

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def delivered_event_payload() -> dict[str, Any]:
    return {"name": "extole_reward_fulfilled", "time": RECEIVED.isoformat()}


@pytest.fixture
def with_fake_partners(app: FastAPI) -> None:
    app.dependency_overrides[partner_lookup] = lambda: fake_partners


async def replay(client: httpx.AsyncClient, tenancy: Tenancy, event_id: object) -> httpx.Response:
    return await client.post(f"/v1/events/{event_id}/replay", headers=tenancy.headers_a())


async def change_settings(session: AsyncSession, tenancy: Tenancy, **settings: Any) -> None:
    connection = await session.get(Connection, tenancy.conn_a.id)
    assert connection is not None
    connection.settings = settings
    connection.version += 1
    await session.commit()


REMAP_BODY = {"type": "reward_fulfilled", "partner_user_id": "u-1"}


async def event_mapped_before_a_change(
    session: AsyncSession,
    tenancy: Tenancy,
    *,
    status: EventStatus = EventStatus.DEAD,
    operations: Sequence[ObjectSpec | OperationStatus] = (OperationStatus.DEAD,),
    body: dict[str, Any] | None = None,
    **new_settings: Any,
) -> Event:
    """An event mapped under the connection's settings version 1; the settings then change."""
    event = await make_event(
        session,
        tenancy.conn_a,
        status=status,
        received_at=RECEIVED,
        body=body if body is not None else REMAP_BODY,
        normalized={MAPPED_VERSION_KEY: 1},
        operations=operations,
    )
    await change_settings(session, tenancy, **new_settings)
    return event


@pytest.fixture
async def dead_event_with_old_mapping(session: AsyncSession, tenancy: Tenancy) -> Event:
    """A dead event whose one object was mapped before the connection's settings changed."""
    return await event_mapped_before_a_change(
        session, tenancy, operations=[ObjectSpec(OperationStatus.DEAD, payload={"name": "old"})]
    )


class TestReplayOneEvent:
    async def test_only_objects_not_delivered_go_back_to_pending(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DEAD,
            received_at=RECEIVED,
            operations=[
                OperationStatus.DELIVERED,
                OperationStatus.FAILED,
                OperationStatus.DEAD,
                OperationStatus.IN_FLIGHT,
                OperationStatus.SKIPPED,
            ],
        )
        before = await operations_of(session, event)
        await make_attempt(session, tenancy.conn_a, before[:3], status_code=500, outcome="retry")
        delivered_settled_at = before[0].settled_at

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 200
        assert response.json() == {
            "event_id": str(event.id),
            "status": "queued",
            "requeued": 3,
            "remapped": False,
        }
        after = await operations_of(session, event)
        assert [op.status for op in after] == [
            OperationStatus.DELIVERED,
            OperationStatus.PENDING,
            OperationStatus.PENDING,
            OperationStatus.IN_FLIGHT,
            OperationStatus.PENDING,
        ]
        assert after[0].settled_at == delivered_settled_at
        assert after[0].attempts == 1
        assert after[3].lease_owner == "worker-1"
        assert all(
            op.lease_owner is None and op.settled_at is None
            for op in (after[1], after[2], after[4])
        )
        assert (await reload_event(session, event)).status == EventStatus.QUEUED
        links = await session.scalar(select(func.count()).select_from(AttemptOperation))
        assert links == 3  # attempts stay as history

    async def test_a_fully_delivered_event_sends_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DELIVERED,
            operations=[OperationStatus.DELIVERED, OperationStatus.DELIVERED],
        )

        response = await replay(client, tenancy, event.id)

        assert response.json()["requeued"] == 0
        assert response.json()["status"] == "delivered"
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.DELIVERED
        ] * 2
        assert (await reload_event(session, event)).status == EventStatus.DELIVERED

    @pytest.mark.fresh_database  # NOTIFY is delivered at commit, which the rollback tier never does
    async def test_requeue_wakes_the_workers(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy, database_url: str
    ) -> None:
        event = await make_event(
            session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(asyncpg_dsn(database_url))
        await listener.add_listener(OUTBOX_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        try:
            await replay(client, tenancy, event.id)
            payload = await asyncio.wait_for(heard.get(), timeout=5)
        finally:
            await listener.close()

        assert payload == "replay"

    async def test_unknown_event_is_404(self, client: httpx.AsyncClient, tenancy: Tenancy) -> None:
        response = await replay(client, tenancy, "0190a3a0-0000-7000-8000-000000000000")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("with_fake_partners")
class TestReplayRemaps:
    async def test_settings_change_remaps_from_the_raw_body_without_resending_delivered(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await event_mapped_before_a_change(
            session,
            tenancy,
            status=EventStatus.PARTIALLY_DELIVERED,
            operations=[
                ObjectSpec(OperationStatus.DELIVERED, payload=delivered_event_payload()),
                ObjectSpec(OperationStatus.DEAD, kind=ObjectKind.ATTRIBUTES, payload={"pts": "x"}),
            ],
            loyalty_attribute="loyalty_points",
        )

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 200, response.text
        assert response.json() == {
            "event_id": str(event.id),
            "status": "queued",
            "requeued": 1,
            "remapped": True,
        }
        ops = await operations_of(session, event)
        assert [(op.status, op.payload) for op in ops] == [
            (OperationStatus.DELIVERED, delivered_event_payload()),
            (OperationStatus.SKIPPED, {"pts": "x"}),
            (OperationStatus.PENDING, {"loyalty_points": 10}),
        ]
        assert ops[1].reason is not None
        assert ops[1].reason.startswith("superseded by re-map")
        assert ops[2].user_key == "id:u-1"
        assert ops[2].external_id == "u-1"
        refreshed = await reload_event(session, event)
        assert refreshed.status == EventStatus.QUEUED
        assert refreshed.normalized is not None
        assert refreshed.normalized[MAPPED_VERSION_KEY] == 2

    async def test_a_remap_waits_for_a_live_lease_but_not_for_an_expired_one(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await event_mapped_before_a_change(
            session,
            tenancy,
            status=EventStatus.QUEUED,
            operations=[ObjectSpec(OperationStatus.IN_FLIGHT, payload={"name": "old"})],
            loyalty_attribute="loyalty_points",
        )
        expire = text("UPDATE operations SET lease_expires_at = now() + :shift * interval '1 s'")

        await session.execute(expire, {"shift": 60})
        await session.commit()
        live = await replay(client, tenancy, event.id)
        assert live.status_code == 409, live.text
        assert "being sent right now" in live.text

        # A worker that died holding it: no claim has run since, the row still says in_flight.
        await session.execute(expire, {"shift": -1})
        await session.commit()
        expired = await replay(client, tenancy, event.id)
        assert expired.status_code == 200, expired.text
        old, *fresh = await operations_of(session, event)
        assert (old.status, old.lease_owner) == (OperationStatus.SKIPPED, None)
        assert old.reason is not None
        assert old.reason.startswith("superseded by re-map")
        assert fresh
        assert {op.status for op in fresh} == {OperationStatus.PENDING}

    async def test_a_second_replay_never_revives_superseded_objects(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        dead_event_with_old_mapping: Event,
    ) -> None:
        event = dead_event_with_old_mapping
        await replay(client, tenancy, event.id)
        ops = await operations_of(session, event)
        ops[1].status = OperationStatus.DEAD  # the new object fails too
        await session.commit()

        second = await replay(client, tenancy, event.id)

        assert second.json()["requeued"] == 1
        assert second.json()["remapped"] is False
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.SKIPPED,
            OperationStatus.PENDING,
        ]

    async def test_a_rejected_event_is_delivered_after_the_fix(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.REJECTED,
            reason="unknown shape",
            user=None,
            received_at=RECEIVED,
            body={"type": "reward_fulfilled", "partner_user_id": "u-9"},
        )

        response = await replay(client, tenancy, event.id)

        assert response.json()["status"] == "queued"
        assert response.json()["requeued"] == 1
        refreshed = await reload_event(session, event)
        assert (refreshed.status, refreshed.reason, refreshed.user_key) == (
            EventStatus.QUEUED,
            None,
            "id:u-9",
        )
        (op,) = await operations_of(session, event)
        assert op.payload == delivered_event_payload()

    @pytest.mark.parametrize(
        ("body", "new_settings", "status", "reason"),
        [
            ({"type": "shared"}, {}, "rejected", "no user identifier"),
            (
                {"type": "shared", "partner_user_id": "u"},
                {"enabled": False},
                "filtered",
                "shared is not enabled",
            ),
        ],
    )
    async def test_remap_can_end_filtered_or_rejected_and_sends_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        body: dict[str, Any],
        new_settings: dict[str, Any],
        status: str,
        reason: str,
    ) -> None:
        event = await event_mapped_before_a_change(session, tenancy, body=body, **new_settings)

        response = await replay(client, tenancy, event.id)

        assert response.json()["status"] == status
        assert response.json()["requeued"] == 0
        refreshed = await reload_event(session, event)
        assert (refreshed.status.value, refreshed.reason) == (status, reason)
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.SKIPPED
        ]

    async def test_remap_without_the_raw_body_is_409_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        dead_event_with_old_mapping: Event,
    ) -> None:
        event = dead_event_with_old_mapping
        await session.delete(await session.get(EventBody, event.id))  # purged by retention
        await session.commit()

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"
        assert "purged" in response.json()["error"]["message"]
        assert [op.status for op in await operations_of(session, event)] == [OperationStatus.DEAD]
        assert (await reload_event(session, event)).status == EventStatus.DEAD


# A job takes the events received up to its creation; inside one transaction now() is the
# transaction's start, before the test's events, so jobs need a database of their own.
@pytest.mark.fresh_database
class TestBulkReplay:
    async def test_job_replays_matching_events_and_reports_progress(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        dead = [
            await make_event(
                session,
                tenancy.conn_a,
                status=EventStatus.DEAD,
                operations=[OperationStatus.DELIVERED, OperationStatus.DEAD],
            )
            for _ in range(3)
        ]
        delivered = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DELIVERED,
            operations=[OperationStatus.DELIVERED],
        )
        other_tenant = await make_event(
            session, tenancy.conn_b, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )

        created = await client.post(
            "/v1/events/replay", json={"status": "dead"}, headers=tenancy.headers_a()
        )
        assert created.status_code == 202
        job = created.json()
        assert (job["status"], job["done"], job["filters"]) == ("queued", 0, {"status": "dead"})

        assert await run_next_replay_job(sessionmaker, fake_partners, owner="t", batch_size=2)
        progress = (
            await client.get(f"/v1/replays/{job['id']}", headers=tenancy.headers_a())
        ).json()

        assert {k: progress[k] for k in ("status", "total", "done", "requeued", "skipped")} == {
            "status": "done",
            "total": 3,
            "done": 3,
            "requeued": 3,
            "skipped": 0,
        }
        for event in dead:
            assert [op.status for op in await operations_of(session, event)] == [
                OperationStatus.DELIVERED,
                OperationStatus.PENDING,
            ]
        assert [op.status for op in await operations_of(session, delivered)] == [
            OperationStatus.DELIVERED
        ]
        assert [op.status for op in await operations_of(session, other_tenant)] == [
            OperationStatus.DEAD
        ]

    async def test_a_job_whose_runner_died_resumes_where_it_stopped(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        events = [
            await make_event(
                session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
            )
            for _ in range(5)
        ]
        job = (await client.post("/v1/events/replay", json={}, headers=tenancy.headers_a())).json()
        now = datetime.now(UTC)

        # The first runner finishes one batch of two, then "dies" holding the lease.
        await run_next_replay_job(
            sessionmaker,
            fake_partners,
            owner="dies",
            batch_size=2,
            max_batches=1,
            clock=lambda: now,
        )
        halfway = (await client.get(f"/v1/replays/{job['id']}", headers=tenancy.headers_a())).json()
        # While the lease holds, nobody else takes the job.
        assert not await run_next_replay_job(
            sessionmaker, fake_partners, owner="b", clock=lambda: now
        )
        later = now + timedelta(minutes=5)
        assert await run_next_replay_job(
            sessionmaker, fake_partners, owner="b", batch_size=2, clock=lambda: later
        )
        final = (await client.get(f"/v1/replays/{job['id']}", headers=tenancy.headers_a())).json()

        assert (halfway["status"], halfway["done"], halfway["total"]) == ("running", 2, 5)
        assert (final["status"], final["done"], final["requeued"]) == ("done", 5, 5)
        for event in events:
            assert [op.status for op in await operations_of(session, event)] == [
                OperationStatus.PENDING
            ]

    @pytest.mark.fresh_database  # NOTIFY is delivered at commit
    async def test_a_new_job_notifies_the_workers(
        self, client: httpx.AsyncClient, tenancy: Tenancy, database_url: str
    ) -> None:
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(asyncpg_dsn(database_url))
        await listener.add_listener(REPLAY_CHANNEL, lambda *args: heard.put_nowait(args[2]))
        try:
            await client.post("/v1/events/replay", json={}, headers=tenancy.headers_a())
            channel = await asyncio.wait_for(heard.get(), timeout=5)
        finally:
            await listener.close()

        assert channel == REPLAY_CHANNEL

    @pytest.mark.fresh_database  # a worker of its own: its connections see only committed rows
    async def test_a_worker_alone_runs_the_job_the_api_queued(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
        runtime: Runtime,
    ) -> None:
        """The API process only records the job; a `braze-bridge worker` process runs it."""
        event = await make_event(
            session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
        progress: dict[str, Any] = {}
        with respx.mock:
            respx.post(f"{SANDBOX_ENDPOINT}/users/track").respond(201, json={"message": "success"})
            async with httpx.AsyncClient() as http:
                worker = build_worker(runtime, sessionmaker, http)
                running = asyncio.create_task(worker.run())
                try:
                    await asyncio.wait_for(worker.listening.wait(), timeout=10)
                    job = (
                        await client.post(
                            "/v1/events/replay",
                            json={"connection_id": str(tenancy.conn_a.id), "status": "dead"},
                            headers=tenancy.headers_a(),
                        )
                    ).json()
                    for _ in range(200):  # bounded: the worker was woken by the job's NOTIFY
                        progress = (
                            await client.get(
                                f"/v1/replays/{job['id']}", headers=tenancy.headers_a()
                            )
                        ).json()
                        if progress["status"] == "done":
                            break
                        await asyncio.sleep(0.05)
                finally:
                    worker.stop()
                    await running

        assert (progress["status"], progress["done"], progress["requeued"]) == ("done", 1, 1)
        assert [op.status for op in await operations_of(session, event)] != [OperationStatus.DEAD]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"status": "lost"}, "status"),
            ({"colour": "red"}, "colour"),
            ({"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T11:00:00Z"}, ""),
            ({"since": "yesterday"}, "since"),
        ],
    )
    async def test_bad_filters_are_422_and_create_no_job(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        body: dict[str, Any],
        field: str,
    ) -> None:
        from braze_bridge.db.models import ReplayJob

        response = await client.post("/v1/events/replay", json=body, headers=tenancy.headers_a())

        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert any(d["field"] == field for d in error["details"])
        assert await session.scalar(select(func.count()).select_from(ReplayJob)) == 0

    async def test_another_tenants_connection_and_job_are_404(
        self, client: httpx.AsyncClient, tenancy: Tenancy
    ) -> None:
        refused = await client.post(
            "/v1/events/replay",
            json={"connection_id": str(tenancy.conn_b.id)},
            headers=tenancy.headers_a(),
        )
        theirs = (
            await client.post("/v1/events/replay", json={}, headers=tenancy.headers_b())
        ).json()
        peek = await client.get(f"/v1/replays/{theirs['id']}", headers=tenancy.headers_a())

        assert refused.status_code == 404
        assert peek.status_code == 404
        assert peek.json()["error"]["code"] == "not_found"


@pytest.mark.fresh_database
async def test_a_stopping_runner_hands_its_job_back_for_another_to_finish(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    for _ in range(3):
        await make_event(
            session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
    job = (await client.post("/v1/events/replay", json={}, headers=tenancy.headers_a())).json()
    calls = iter([False, True])  # one batch, then the process is told to stop

    await run_next_replay_job(
        sessionmaker, fake_partners, owner="a", batch_size=2, stopping=lambda: next(calls)
    )
    # No lease to wait out: another runner takes the job straight away.
    assert await run_next_replay_job(sessionmaker, fake_partners, owner="b", batch_size=2)
    final = (await client.get(f"/v1/replays/{job['id']}", headers=tenancy.headers_a())).json()

    assert (final["status"], final["done"], final["requeued"]) == ("done", 3, 3)

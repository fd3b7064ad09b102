"""Connection health, /metrics values and retention purges, against real Postgres."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.db.models import AttemptOperation, Connection, DeliveryAttempt, Event, EventBody
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, EventStatus, OperationStatus
from braze_bridge.ops import events as event_service
from braze_bridge.ops.retention import purge_expired
from braze_bridge.runtime import Runtime, build_worker
from tests.factories import SANDBOX_ENDPOINT
from tests.ops_factories import Tenancy, make_attempt, make_event, operations_of

pytestmark = pytest.mark.rollback


async def set_connection(session: AsyncSession, tenancy: Tenancy, **values: object) -> None:
    connection = await session.get(Connection, tenancy.conn_a.id)
    assert connection is not None
    for key, value in values.items():
        setattr(connection, key, value)
    await session.commit()


class TestConnectionHealth:
    async def test_a_quiet_connection_is_ok(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DELIVERED,
            operations=[OperationStatus.DELIVERED],
        )
        await make_event(session, tenancy.conn_a, status=EventStatus.FILTERED)

        response = await client.get(
            f"/v1/connections/{tenancy.conn_a.id}/health", headers=tenancy.headers_a()
        )

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert (body["queue_depth"], body["oldest_pending_age_seconds"]) == (0, None)
        assert body["counts_last_hour"] == {"delivered": 1, "filtered": 1}
        assert body["data_points_saved"] == 0
        assert body["name"] == "Acme referral → Braze"

    async def test_queue_depth_and_oldest_age_count_unsettled_objects(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        created = datetime.now(UTC)
        await make_event(
            session,
            tenancy.conn_a,
            received_at=created - timedelta(minutes=30),
            operations=[OperationStatus.PENDING, OperationStatus.IN_FLIGHT],
        )
        await make_event(
            session, tenancy.conn_a, operations=[OperationStatus.PENDING, OperationStatus.DELIVERED]
        )

        body = (
            await client.get(
                f"/v1/connections/{tenancy.conn_a.id}/health", headers=tenancy.headers_a()
            )
        ).json()
        elapsed = (datetime.now(UTC) - created).total_seconds()

        assert body["queue_depth"] == 3
        # Health reads the app's clock at the request, which fell within `elapsed`.
        assert 30 * 60 <= body["oldest_pending_age_seconds"] <= 30 * 60 + elapsed
        assert body["status"] == "degraded"  # older than 15 minutes: delivery is not keeping up
        assert body["counts_last_hour"] == {"queued": 2}

    @pytest.mark.parametrize(
        ("values", "event_status", "expected"),
        [
            ({"state": ConnectionState.PAUSED}, None, "paused"),
            (
                {"state": ConnectionState.AUTH_ERROR, "last_error": "401 from Braze: invalid key"},
                None,
                "auth_error",
            ),
            (
                {"rate_limited_until": timedelta(minutes=5)},
                None,
                "rate_limited",
            ),
            ({"rate_limited_until": -timedelta(minutes=5)}, None, "ok"),
            ({}, EventStatus.DEAD, "degraded"),
            (
                {"last_error": "503 from Braze", "last_error_at": timedelta(0)},
                None,
                "degraded",
            ),
        ],
    )
    async def test_status_words(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        values: dict[str, object],
        event_status: EventStatus | None,
        expected: str,
    ) -> None:
        # A timedelta is a moment relative to now: parameters are built at collection time.
        now = datetime.now(UTC)
        await set_connection(
            session,
            tenancy,
            **{k: now + v if isinstance(v, timedelta) else v for k, v in values.items()},
        )
        if event_status is not None:
            await make_event(
                session, tenancy.conn_a, status=event_status, operations=[OperationStatus.DEAD]
            )

        body = (
            await client.get(
                f"/v1/connections/{tenancy.conn_a.id}/health", headers=tenancy.headers_a()
            )
        ).json()

        assert body["status"] == expected
        assert body["last_error"] == values.get("last_error")

    async def test_overview_lists_only_the_tenants_connections(
        self, client: httpx.AsyncClient, tenancy: Tenancy, operator_headers: dict[str, str]
    ) -> None:
        mine = (await client.get("/v1/health", headers=tenancy.headers_a())).json()
        everyone = (await client.get("/v1/health", headers=operator_headers)).json()

        assert [c["connection_id"] for c in mine["connections"]] == [str(tenancy.conn_a.id)]
        assert {c["connection_id"] for c in everyone["connections"]} == {
            str(tenancy.conn_a.id),
            str(tenancy.conn_b.id),
        }


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestMetrics:
    def test_only_settled_words_move_the_object_counters(self) -> None:
        """Delivery reports every settle; `in_flight` or a count of 0 must not count."""
        names = {
            status: f"braze_bridge_objects_{status}_total"
            for status in ("delivered", "failed", "dead")
        }
        before = {status: sample(name, connection_id="c1") for status, name in names.items()}

        metrics.objects_settled("c1", "delivered", 73)
        metrics.objects_settled("c1", "dead", 2)
        metrics.objects_settled("c1", "failed", 0)
        metrics.objects_settled("c1", "in_flight", 5)

        moved = {s: sample(n, connection_id="c1") - before[s] for s, n in names.items()}
        assert moved == {"delivered": 73, "failed": 0, "dead": 2}

    def test_a_rounds_latencies_land_in_the_buckets_one_observation_each_would(self) -> None:
        # Edges included: a value equal to a bucket bound belongs to that bucket (le), negative
        # ages count as 0, and beyond the last bound is +Inf.
        ages = [-1.0, 0.0, 0.05, 0.0500001, 1.0, 2.4, 10.0, 86400.0, 90000.0, 3.0, 3.0]
        bounds = ["0.05", "0.1", "1.0", "2.5", "10.0", "86400.0", "+Inf"]

        def snapshot() -> dict[str, float]:
            values = {
                b: sample("braze_bridge_delivery_latency_seconds_bucket", le=b) for b in bounds
            }
            values["count"] = sample("braze_bridge_delivery_latency_seconds_count")
            values["sum"] = sample("braze_bridge_delivery_latency_seconds_sum")
            return values

        start = snapshot()
        for age in ages:
            metrics.delivery_latency(age)
        one_by_one = snapshot()
        metrics.delivery_latencies(ages)
        in_bulk = snapshot()
        metrics.delivery_latencies([])

        assert snapshot() == in_bulk
        for key in [*bounds, "count"]:
            assert in_bulk[key] - one_by_one[key] == one_by_one[key] - start[key], key
        assert in_bulk["count"] - one_by_one["count"] == len(ages)
        assert in_bulk["sum"] - one_by_one["sum"] == pytest.approx(one_by_one["sum"] - start["sum"])

    async def test_endpoint_exposes_counters_and_queue_gauges_from_the_database(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        # The gauge reads the database's clock, which stands still inside the test's transaction.
        database_now = await session.scalar(select(func.now()))
        assert database_now is not None
        old = database_now - timedelta(minutes=10)
        await make_event(
            session, tenancy.conn_a, received_at=old, operations=[OperationStatus.PENDING] * 2
        )
        await make_event(session, tenancy.conn_a, operations=[OperationStatus.DELIVERED])
        before = sample("braze_bridge_replayed_objects_total")
        metrics.objects_replayed(4)

        response = await client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert (
            f'braze_bridge_queue_depth_objects{{connection_id="{tenancy.conn_a.id}"}} 2.0' in text
        )
        assert (
            f'braze_bridge_queue_depth_objects{{connection_id="{tenancy.conn_b.id}"}} 0.0' in text
        )
        age_line = next(
            line
            for line in text.splitlines()
            if line.startswith(
                f'braze_bridge_queue_oldest_age_seconds{{connection_id="{tenancy.conn_a.id}"'
            )
        )
        assert float(age_line.rsplit(" ", 1)[1]) == 600.0
        assert f"braze_bridge_replayed_objects_total {before + 4}" in text

    def test_processes_started_apart_add_up_in_multiprocess_mode(self, tmp_path: Path) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        bump = textwrap.dedent(
            """
            from braze_bridge import metrics
            metrics.braze_request("/users/track", 201)
            metrics.objects_settled("c9", "delivered", 5)
            """
        )
        for _ in range(2):  # an "api" and a "worker"
            subprocess.run([sys.executable, "-c", bump], env=env, check=True, timeout=60)  # noqa: S603
        render = "from braze_bridge import metrics; import sys; sys.stdout.write(metrics.render_latest([]).decode())"

        out = subprocess.run(  # noqa: S603
            [sys.executable, "-c", render],
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        ).stdout

        assert 'braze_bridge_braze_requests_total{endpoint="/users/track",status="201"} 2.0' in out
        assert 'braze_bridge_objects_delivered_total{connection_id="c9"} 10.0' in out


class TestRetention:
    async def test_purges_only_rows_older_than_the_retention_in_small_batches(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        now = datetime.now(UTC)
        old = now - timedelta(days=31)
        recent = now - timedelta(days=29)
        old_events = [
            await make_event(
                session,
                tenancy.conn_a,
                received_at=old,
                status=EventStatus.DELIVERED,
                operations=[OperationStatus.DELIVERED],
            )
            for _ in range(5)
        ]
        recent_event = await make_event(
            session, tenancy.conn_a, received_at=recent, operations=[OperationStatus.DELIVERED]
        )
        for event in old_events[:3]:
            await make_attempt(
                session, tenancy.conn_a, await operations_of(session, event), started_at=old
            )
        kept_attempt = await make_attempt(
            session, tenancy.conn_a, await operations_of(session, recent_event), started_at=recent
        )

        result = await purge_expired(sessionmaker, retention_days=30, batch_size=2, now=now)

        assert result.deleted == {"event_bodies": 5, "delivery_attempts": 3, "replay_jobs": 0}
        # 5 bodies → batches of 2, 2, 1; 3 attempts → 2, 1; replay jobs → 1 empty batch.
        assert result.batches == 6
        assert result.complete
        bodies = set(await session.scalars(select(EventBody.event_id)))
        assert bodies == {recent_event.id}
        attempts = list(await session.scalars(select(DeliveryAttempt.id)))
        assert attempts == [kept_attempt.id]
        assert await session.scalar(select(func.count()).select_from(AttemptOperation)) == 1
        # The event log itself stays: ops still see what happened, without the bytes.
        assert await session.scalar(select(func.count()).select_from(Event)) == 6

    async def test_a_bounded_run_leaves_the_rest_for_the_next_call(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        old = datetime.now(UTC) - timedelta(days=40)
        for _ in range(5):
            await make_event(session, tenancy.conn_a, received_at=old)

        first = await purge_expired(sessionmaker, retention_days=30, batch_size=2, max_batches=2)
        second = await purge_expired(sessionmaker, retention_days=30, batch_size=2)

        assert (first.deleted["event_bodies"], first.complete) == (4, False)
        assert (second.deleted["event_bodies"], second.complete) == (1, True)

    @pytest.mark.fresh_database  # a worker of its own: its connections see only committed rows
    async def test_a_worker_alone_purges_when_it_starts(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
        runtime: Runtime,
    ) -> None:
        """The purge is a side task of every worker (as `braze-bridge worker` builds it): a
        deployment without an API process still forgets old bodies."""
        event = await make_event(
            session, tenancy.conn_a, received_at=datetime.now(UTC) - timedelta(days=40)
        )
        bodies = select(func.count()).select_from(EventBody).where(EventBody.event_id == event.id)
        left = await session.scalar(bodies)
        await session.commit()
        assert left == 1
        with respx.mock(assert_all_called=False):
            respx.post(f"{SANDBOX_ENDPOINT}/users/track").respond(201, json={"message": "success"})
            async with httpx.AsyncClient() as http:
                worker = build_worker(runtime, sessionmaker, http)
                running = asyncio.create_task(worker.run())
                try:
                    for _ in range(200):  # bounded: the purge runs as the worker starts
                        left = await session.scalar(bodies)
                        await session.commit()
                        if left == 0:
                            break
                        await asyncio.sleep(0.05)
                finally:
                    worker.stop()
                    await running

        assert left == 0

    async def test_invalid_arguments_are_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            await purge_expired(sessionmaker, retention_days=0)


class TestLiveFeed:
    async def test_feed_shows_new_events_and_status_changes_for_its_tenant_only(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        feed = event_service.EventFeed(
            sessionmaker,
            Principal(token_id=tenancy.tenant_a.id, tenant_id=tenancy.tenant_a.id),
            event_service.EventFilter(),
            after=None,
        )
        await make_event(session, tenancy.conn_a)  # before the feed started: not shown
        await feed.start_at_newest()
        assert await feed.poll() == []

        mine = await make_event(session, tenancy.conn_a, status=EventStatus.QUEUED)
        await make_event(session, tenancy.conn_b, status=EventStatus.QUEUED)
        first = await feed.poll()
        row = await session.get(Event, mine.id)
        assert row is not None
        row.status = EventStatus.DELIVERED
        await session.commit()
        second = await feed.poll()

        assert [(i.change, i.event.id) for i in first] == [("created", mine.id)]
        assert [(i.change, i.event.id, i.event.status) for i in second] == [
            ("updated", mine.id, EventStatus.DELIVERED)
        ]
        assert await feed.poll() == []

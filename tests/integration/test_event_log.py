"""GET /v1/events and GET /v1/events/{id}: filters, keyset pages, detail, tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.domain.statuses import EventStatus, OperationStatus
from tests.ops_factories import (
    ObjectSpec,
    Tenancy,
    make_attempt,
    make_event,
    operations_of,
)

pytestmark = pytest.mark.rollback

ITEM_FIELDS = {
    "id",
    "connection_id",
    "source_event_id",
    "kind",
    "status",
    "reason",
    "user",
    "received_at",
    "next_retry_at",
    "notes",
}


async def all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int, **params: str
) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    for _ in range(1000):
        query: dict[str, str | int] = {**params, "limit": limit}
        if cursor:
            query["cursor"] = cursor
        response = await client.get("/v1/events", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


class TestListEvents:
    async def test_items_have_exactly_the_contract_fields_newest_first(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        base = datetime.now(UTC) - timedelta(minutes=5)
        older = await make_event(session, tenancy.conn_a, received_at=base, user="u-old")
        newer = await make_event(
            session,
            tenancy.conn_a,
            received_at=base + timedelta(seconds=1),
            status=EventStatus.REJECTED,
            reason="no user identifier",
            user=None,
        )

        response = await client.get("/v1/events", headers=tenancy.headers_a())

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert [item["id"] for item in body["items"]] == [str(newer.id), str(older.id)]
        assert all(set(item) == ITEM_FIELDS for item in body["items"])
        assert body["items"][0]["status"] == "rejected"
        assert body["items"][0]["reason"] == "no user identifier"
        assert body["items"][0]["user"] is None
        assert body["items"][1]["user"] == "u-old"
        assert body["items"][1]["connection_id"] == str(tenancy.conn_a.id)
        assert body["next_cursor"] is None

    async def test_pages_walk_every_event_once_in_order(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        base = datetime.now(UTC) - timedelta(hours=1)
        made = [
            await make_event(session, tenancy.conn_a, received_at=base + timedelta(seconds=i))
            for i in range(23)
        ]

        items = await all_pages(client, tenancy.headers_a(), limit=5)

        assert [item["id"] for item in items] == [str(e.id) for e in reversed(made)]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "dead"}, {"dead-u1"}),
            ({"kind": "shared"}, {"shared-u2"}),
            ({"user": "u2"}, {"shared-u2", "queued-u2"}),
            ({"user": "Ada@Example.com"}, {"email-ada"}),
            ({"status": "queued", "user": "u2"}, {"queued-u2"}),
        ],
    )
    async def test_filters_select_matching_events(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        params: dict[str, str],
        expected: set[str],
    ) -> None:
        made = {
            "dead-u1": await make_event(
                session, tenancy.conn_a, status=EventStatus.DEAD, user="u1"
            ),
            "shared-u2": await make_event(
                session, tenancy.conn_a, kind="shared", status=EventStatus.DELIVERED, user="u2"
            ),
            "queued-u2": await make_event(
                session, tenancy.conn_a, status=EventStatus.QUEUED, user="u2"
            ),
            "email-ada": await make_event(
                session, tenancy.conn_a, status=EventStatus.DELIVERED, user=None
            ),
        }
        made["email-ada"].user_key = "email:ada@example.com"
        await session.commit()
        names = {str(event.id): name for name, event in made.items()}

        response = await client.get("/v1/events", params=params, headers=tenancy.headers_a())

        assert response.status_code == 200
        assert {names[item["id"]] for item in response.json()["items"]} == expected

    async def test_connection_and_time_range_filters(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        second = await _second_connection(session, tenancy)
        base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        early = await make_event(session, tenancy.conn_a, received_at=base)
        middle = await make_event(session, tenancy.conn_a, received_at=base + timedelta(hours=1))
        late = await make_event(session, tenancy.conn_a, received_at=base + timedelta(hours=2))
        other = await make_event(session, second, received_at=base + timedelta(hours=1))

        window = await client.get(
            "/v1/events",
            params={
                "since": (base + timedelta(minutes=30)).isoformat(),
                "until": (base + timedelta(hours=2)).isoformat(),
            },
            headers=tenancy.headers_a(),
        )
        by_connection = await client.get(
            "/v1/events", params={"connection_id": str(second.id)}, headers=tenancy.headers_a()
        )

        assert {i["id"] for i in window.json()["items"]} == {str(middle.id), str(other.id)}
        assert [i["id"] for i in by_connection.json()["items"]] == [str(other.id)]
        assert str(early.id) not in {i["id"] for i in window.json()["items"]}
        assert str(late.id) not in {i["id"] for i in window.json()["items"]}

    @pytest.mark.parametrize(
        ("params", "status", "code", "field"),
        [
            ({"cursor": "not-a-cursor"}, 400, "bad_request", None),
            ({"cursor": "ZTF4eXo"}, 400, "bad_request", None),
            ({"limit": "0"}, 422, "validation_error", "limit"),
            ({"limit": "201"}, 422, "validation_error", "limit"),
            ({"status": "lost"}, 422, "validation_error", "status"),
            ({"since": "2026-11-20T12:00:00"}, 422, "validation_error", "since"),
            (
                {"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T11:00:00Z"},
                422,
                "validation_error",
                "since",
            ),
            ({"connection_id": "42"}, 422, "validation_error", "connection_id"),
        ],
    )
    async def test_bad_query_answers_with_the_error_shape(
        self,
        client: httpx.AsyncClient,
        tenancy: Tenancy,
        params: dict[str, str],
        status: int,
        code: str,
        field: str | None,
    ) -> None:
        response = await client.get("/v1/events", params=params, headers=tenancy.headers_a())

        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code
        if field is not None:
            assert any(field in d["field"] for d in error["details"])

    async def test_without_a_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/events")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


class TestPaginationUnderConcurrentInserts:
    async def test_no_event_is_skipped_or_repeated_while_new_ones_arrive(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenancy: Tenancy,
    ) -> None:
        base = datetime.now(UTC) - timedelta(minutes=10)
        existing = [
            await make_event(session, tenancy.conn_a, received_at=base + timedelta(milliseconds=i))
            for i in range(40)
        ]
        inserted: list[uuid.UUID] = []

        # Each page read is followed by one new event, committed before the next page.
        seen: list[str] = []
        cursor: str | None = None
        async with sessionmaker() as other:
            while True:
                params: dict[str, str | int] = {"limit": 3}
                if cursor:
                    params["cursor"] = cursor
                body = (
                    await client.get("/v1/events", params=params, headers=tenancy.headers_a())
                ).json()
                seen.extend(item["id"] for item in body["items"])
                inserted.append((await make_event(other, tenancy.conn_a)).id)
                cursor = body["next_cursor"]
                if cursor is None:
                    break

        assert inserted, "the writer inserted nothing while paging"
        assert len(seen) == len(set(seen)), "an event appeared on two pages"
        expected_old = [str(e.id) for e in reversed(existing)]
        assert [i for i in seen if i in set(expected_old)] == expected_old
        # Events that arrived after paging began are newer than page 1: never mixed in below.
        assert not set(seen) & {str(i) for i in inserted}


class TestEventDetail:
    async def test_shows_raw_body_without_secrets_objects_and_attempts(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.PARTIALLY_DELIVERED,
            headers={
                "content-type": "application/json",
                "X-Extole-Signature": "sha256=deadbeef",
                "Authorization": "Bearer whsec_123",
                "user-agent": "Extole-Webhooks/1.0",
            },
            operations=[
                ObjectSpec(OperationStatus.DELIVERED, payload={"name": "extole_reward_fulfilled"}),
                ObjectSpec(
                    OperationStatus.FAILED,
                    payload={"name": "bad"},
                    reason="Braze: 'time' is not a valid time",
                ),
            ],
        )
        delivered, failed = await operations_of(session, event)
        attempt = await make_attempt(
            session,
            tenancy.conn_a,
            [delivered, failed],
            status_code=201,
            response_body='{"message":"success","errors":[{"type":"bad time","input_array":"events","index":1}]}',
        )

        response = await client.get(f"/v1/events/{event.id}", headers=tenancy.headers_a())

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "partially_delivered"
        assert body["raw"]["json"]["type"] == "reward_fulfilled"
        assert body["raw"]["headers"] == {
            "content-type": "application/json",
            "X-Extole-Signature": "[redacted]",
            "Authorization": "[redacted]",
            "user-agent": "Extole-Webhooks/1.0",
        }
        assert "whsec_123" not in response.text
        assert "deadbeef" not in response.text
        assert [(o["status"], o["reason"]) for o in body["objects"]] == [
            ("delivered", None),
            ("failed", "Braze: 'time' is not a valid time"),
        ]
        (shown,) = body["attempts"]
        assert shown["id"] == attempt.id
        assert shown["status_code"] == 201
        assert shown["duration_ms"] == 42.5
        assert shown["worker_id"] == "worker-1"
        assert shown["request_body"] == {
            "events": [{"name": "extole_reward_fulfilled"}, {"name": "bad"}]
        }
        assert "bad time" in shown["response_body"]
        assert {o["object_id"] for o in shown["objects"]} == {delivered.id, failed.id}

    async def test_purged_body_is_null_not_an_error(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        event = await make_event(session, tenancy.conn_a, store_body=False)

        response = await client.get(f"/v1/events/{event.id}", headers=tenancy.headers_a())

        assert response.status_code == 200
        assert response.json()["raw"] is None


class TestTenantIsolation:
    async def test_a_tenant_sees_only_its_own_events(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        operator_headers: dict[str, str],
    ) -> None:
        mine = await make_event(session, tenancy.conn_a)
        theirs = await make_event(session, tenancy.conn_b)

        listed_a = await all_pages(client, tenancy.headers_a(), limit=50)
        listed_op = await all_pages(client, operator_headers, limit=50)

        assert [i["id"] for i in listed_a] == [str(mine.id)]
        assert {i["id"] for i in listed_op} == {str(mine.id), str(theirs.id)}

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/events/{event}"),
            ("POST", "/v1/events/{event}/replay"),
            ("GET", "/v1/events?connection_id={connection}"),
            ("GET", "/v1/connections/{connection}/health"),
        ],
    )
    async def test_another_tenants_ids_answer_404(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        method: str,
        path: str,
    ) -> None:
        theirs = await make_event(
            session, tenancy.conn_b, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
        url = path.format(event=theirs.id, connection=tenancy.conn_b.id)

        response = await client.request(method, url, headers=tenancy.headers_a())

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert (
            str(theirs.id) not in response.text or "no event" in response.json()["error"]["message"]
        )
        (op,) = await operations_of(session, theirs)
        assert op.status == OperationStatus.DEAD  # the refused replay changed nothing


class TestIndexes:
    """Each filter is served by an index whose last column is id (keyset, no sort, no OFFSET)."""

    @pytest.mark.parametrize(
        ("where", "index"),
        [
            ("tenant_id = :tenant", "ix_events_tenant_id"),
            ("tenant_id = :tenant AND status = 'dead'", "ix_events_tenant_status"),
            ("connection_id = :connection", "ix_events_connection_id"),
            ("connection_id = :connection AND status = 'dead'", "ix_events_connection_status"),
            ("connection_id = :connection AND user_key IN ('u', 'id:u')", "ix_events_user"),
            # With one connection in the table, (connection_id, user_key, id) costs the same as
            # (user_key, id) and the planner may take either; with many it takes the latter.
            ("tenant_id = :tenant AND user_key IN ('u', 'id:u')", "ix_events_user"),
            ("user_key IN ('u', 'id:u')", "ix_events_user"),
            ("true", "pk_events"),
        ],
    )
    async def test_filter_plans_use_an_index(
        self, session: AsyncSession, tenancy: Tenancy, where: str, index: str
    ) -> None:
        await session.execute(
            text(
                """
                INSERT INTO events (id, tenant_id, connection_id, dedupe_key, kind, status, user_key, received_at)
                SELECT gen_random_uuid(), :tenant, :connection, 'k' || g, 'shared',
                       CASE WHEN g % 100 = 0 THEN 'dead' ELSE 'delivered' END,
                       'id:user-' || (g % 1000), now() - (g || ' seconds')::interval
                FROM generate_series(1, 5000) AS g
                """
            ),
            {"tenant": tenancy.tenant_a.id, "connection": tenancy.conn_a.id},
        )
        await session.execute(text("ANALYZE events"))
        plan = await session.execute(
            text(f"EXPLAIN SELECT id FROM events WHERE {where} ORDER BY id DESC LIMIT 51"),  # noqa: S608 - parametrized here
            {"tenant": tenancy.tenant_a.id, "connection": tenancy.conn_a.id},
        )
        lines = "\n".join(row[0] for row in plan)
        await session.rollback()

        assert index in lines, lines
        assert "Seq Scan" not in lines, lines


async def _second_connection(session: AsyncSession, tenancy: Tenancy):  # type: ignore[no-untyped-def]
    from tests.factories import make_connection

    return await make_connection(session, tenancy.tenant_a, name="Acme second")

"""GET /v1/events tells the truth: a user found by the email its events carry, a prefix search,
reward states as kinds, why a queued event waits and when it retries, the mapping's notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Connection, Event, OutboxOperation
from braze_bridge.db.repositories.event_log import EventFilter, filtered_events
from braze_bridge.domain.events import EventKind
from braze_bridge.domain.statuses import ConnectionState, EventStatus, OperationStatus
from tests.ops_factories import ObjectSpec, Tenancy, make_event, operations_of

pytestmark = pytest.mark.rollback

GRACE = {"external_id": "grace-1", "email": "Grace@Example.com"}


async def event_of(
    session: AsyncSession,
    connection: Any,
    user: dict[str, str | None],
    *,
    kind: str = "reward_fulfilled",
    status: EventStatus = EventStatus.DELIVERED,
) -> Event:
    """An event as ingest stores it: user_key from the external id (else the email), and the
    normalized event carrying both."""
    event = await make_event(
        session,
        connection,
        kind=kind,
        status=status,
        user=user["external_id"],
        normalized={"kind": kind, "user": user},
    )
    if user["external_id"] is None and user["email"]:
        event.user_key = f"email:{user['email'].lower()}"
        await session.commit()
    return event


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestUserFilter:
    async def test_an_email_finds_the_events_of_a_user_keyed_by_external_id(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        grace = await event_of(session, tenancy.conn_a, GRACE)
        email_only = await event_of(
            session, tenancy.conn_a, {"external_id": None, "email": "grace@example.com"}
        )
        await event_of(session, tenancy.conn_a, {"external_id": "ada-1", "email": "ada@x.io"})

        for value in ("grace@example.com", "GRACE@example.COM", " grace@example.com "):
            items = await listed(client, tenancy.headers_a(), user=value)
            assert [i["id"] for i in items] == [str(email_only.id), str(grace.id)], value
        by_id = await listed(client, tenancy.headers_a(), user="grace-1")
        assert [i["id"] for i in by_id] == [str(grace.id)]
        assert by_id[0]["user"] == "grace-1"

    async def test_another_tenants_events_with_that_email_stay_hidden(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        operator_headers: dict[str, str],
    ) -> None:
        mine = await event_of(session, tenancy.conn_a, GRACE)
        theirs = await event_of(session, tenancy.conn_b, GRACE)

        for params in ({"user": "grace@example.com"}, {"user_prefix": "gra"}):
            assert [i["id"] for i in await listed(client, tenancy.headers_a(), **params)] == [
                str(mine.id)
            ]
            assert [i["id"] for i in await listed(client, tenancy.headers_b(), **params)] == [
                str(theirs.id)
            ]
            everyone = await listed(client, operator_headers, **params)
            assert {i["id"] for i in everyone} == {str(mine.id), str(theirs.id)}


class TestUserPrefix:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("gra", {"grace-id", "grace-email-only", "graham"}),
            ("grace", {"grace-id", "grace-email-only"}),
            ("GRACE@", {"grace-id", "grace-email-only"}),  # emails: any case
            ("Gra", {"grace-id", "grace-email-only"}),  # by email; no external id is "Gra…"
            ("grace-", {"grace-id"}),
            ("gr_", set()),  # `_` and `%` are characters, not wildcards
            ("g%", set()),
            ("zz", set()),
        ],
    )
    async def test_matches_external_ids_and_emails_that_start_with_it(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        prefix: str,
        expected: set[str],
    ) -> None:
        made = {
            "grace-id": await event_of(session, tenancy.conn_a, GRACE),
            "grace-email-only": await event_of(
                session, tenancy.conn_a, {"external_id": None, "email": "grace@example.com"}
            ),
            "graham": await event_of(
                session, tenancy.conn_a, {"external_id": "graham", "email": None}
            ),
            "ada": await event_of(
                session, tenancy.conn_a, {"external_id": "ada", "email": "a@x.io"}
            ),
        }
        names = {str(event.id): name for name, event in made.items()}

        items = await listed(client, tenancy.headers_a(), user_prefix=prefix)

        assert {names[i["id"]] for i in items} == expected

    async def test_pages_of_a_prefix_walk_every_match_once(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        made = [
            await event_of(session, tenancy.conn_a, {"external_id": f"gr-{n}", "email": None})
            for n in range(7)
        ]
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"user_prefix": "gr-", "limit": "3", **({"cursor": cursor} if cursor else {})}
            body = (
                await client.get("/v1/events", params=params, headers=tenancy.headers_a())
            ).json()
            seen += [i["id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [str(e.id) for e in reversed(made)]


def _query_error(field: str, message: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind, **extra}


KIND_WORDS = [kind.value for kind in EventKind]
KIND_MESSAGE = (
    "Input should be " + ", ".join(f"'{k}'" for k in KIND_WORDS[:-1]) + f" or '{KIND_WORDS[-1]}'"
)


class TestBadFilterValues:
    @pytest.mark.parametrize(
        ("params", "body"),
        [
            (
                {"user": "grace@example.com", "user_prefix": "gra"},
                {
                    "error": {
                        "code": "validation_error",
                        "message": "invalid request: give user or user_prefix, not both",
                        "details": [
                            _query_error(
                                "user_prefix", "give user or user_prefix, not both", "value_error"
                            )
                        ],
                    }
                },
            ),
            (
                {"user_prefix": "g"},
                {
                    "error": {
                        "code": "validation_error",
                        "message": "invalid request: query.user_prefix",
                        "details": [
                            _query_error(
                                "query.user_prefix",
                                "String should have at least 2 characters",
                                "string_too_short",
                            )
                        ],
                    }
                },
            ),
            (
                {"user_prefix": " g "},
                {
                    "error": {
                        "code": "validation_error",
                        "message": "invalid request: user_prefix",
                        "details": [
                            _query_error(
                                "user_prefix",
                                "at least 2 characters besides spaces",
                                "string_too_short",
                            )
                        ],
                    }
                },
            ),
            (
                {"kind": "reward_fulfiled"},
                {
                    "error": {
                        "code": "validation_error",
                        "message": "invalid request: query.kind",
                        "details": [_query_error("query.kind", KIND_MESSAGE, "enum")],
                    }
                },
            ),
        ],
    )
    async def test_answer_422_with_the_field_named(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        params: dict[str, str],
        body: dict[str, Any],
    ) -> None:
        event = await event_of(session, tenancy.conn_a, GRACE)

        response = await client.get("/v1/events", params=params, headers=tenancy.headers_a())

        assert response.status_code == 422
        assert response.json() == body
        # Nothing stored changed, and the same filter without the mistake still works.
        assert [i["id"] for i in await listed(client, tenancy.headers_a())] == [str(event.id)]

    async def test_bulk_replay_refuses_an_unknown_kind_too(
        self, client: httpx.AsyncClient, tenancy: Tenancy
    ) -> None:
        response = await client.post(
            "/v1/events/replay", json={"kind": "fulfilled"}, headers=tenancy.headers_a()
        )
        assert response.status_code == 422
        (detail,) = response.json()["error"]["details"]
        assert (detail["field"], detail["type"]) == ("kind", "enum")


class TestWhyItWaits:
    async def _retrying(
        self, session: AsyncSession, tenancy: Tenancy, due: datetime
    ) -> tuple[Event, list[OutboxOperation]]:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.QUEUED,
            operations=[
                ObjectSpec(OperationStatus.DELIVERED),
                ObjectSpec(OperationStatus.PENDING, reason="Braze answered 503"),
                ObjectSpec(OperationStatus.PENDING),
            ],
        )
        ops = await operations_of(session, event)
        await session.execute(
            update(OutboxOperation)
            .where(OutboxOperation.id == ops[1].id)
            .values(attempts=2, available_at=due)
        )
        await session.commit()
        return event, ops

    async def test_a_retrying_event_shows_the_objects_reason_and_the_next_retry(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        due = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        event, _ = await self._retrying(session, tenancy, due)

        (item,) = await listed(client, tenancy.headers_a())
        detail = (await client.get(f"/v1/events/{event.id}", headers=tenancy.headers_a())).json()

        for shown in (item, detail):
            assert shown["status"] == "queued"
            assert shown["reason"] == "Braze answered 503"
            assert shown["next_retry_at"] == "2030-01-02T03:04:05Z"

    async def test_a_rate_limit_that_lifts_later_moves_the_next_retry(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        await self._retrying(session, tenancy, datetime(2030, 1, 2, tzinfo=UTC))
        await session.execute(
            update(Connection)
            .where(Connection.id == tenancy.conn_a.id)
            .values(rate_limited_until=datetime(2030, 1, 3, tzinfo=UTC))
        )
        await session.commit()

        (item,) = await listed(client, tenancy.headers_a())

        assert item["next_retry_at"] == "2030-01-03T00:00:00Z"

    @pytest.mark.parametrize("state", [ConnectionState.AUTH_ERROR, ConnectionState.PAUSED])
    async def test_a_held_event_shows_why_and_no_retry_time(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
        state: ConnectionState,
    ) -> None:
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.QUEUED,
            operations=[ObjectSpec(OperationStatus.PENDING, reason="Braze answered 401")],
        )
        await session.execute(
            update(Connection).where(Connection.id == tenancy.conn_a.id).values(state=state)
        )
        await session.commit()

        (item,) = await listed(client, tenancy.headers_a())
        detail = (await client.get(f"/v1/events/{event.id}", headers=tenancy.headers_a())).json()

        for shown in (item, detail):
            assert (shown["reason"], shown["next_retry_at"]) == ("Braze answered 401", None)

    async def test_a_settled_event_has_no_retry_time_and_keeps_its_own_reason(
        self, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
    ) -> None:
        await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DEAD,
            reason="Braze answered 503; retries ran out",
            operations=[ObjectSpec(OperationStatus.DEAD, reason="Braze answered 503")],
        )
        fresh = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.QUEUED,
            operations=[ObjectSpec(OperationStatus.PENDING)],
        )

        new, dead = await listed(client, tenancy.headers_a())

        assert new["id"] == str(fresh.id)
        assert (new["reason"], new["next_retry_at"]) == (None, None)
        assert (dead["reason"], dead["next_retry_at"]) == (
            "Braze answered 503; retries ran out",
            None,
        )


class TestIndexes:
    """The user filters are index scans on a seeded table (EXPLAIN of the very statement)."""

    @pytest.mark.parametrize(
        ("filters", "indexes"),
        [
            (EventFilter(user="grace@example.com"), {"ix_events_user_key", "ix_events_user_email"}),
            (EventFilter(user="user-7"), {"ix_events_user_key", "ix_events_user_email"}),
            (EventFilter(user_prefix="user-1234"), {"ix_events_user_key", "ix_events_user_email"}),
            (EventFilter(user_prefix="gra"), {"ix_events_user_key", "ix_events_user_email"}),
        ],
    )
    async def test_user_filters_plan_index_scans(
        self, session: AsyncSession, tenancy: Tenancy, filters: EventFilter, indexes: set[str]
    ) -> None:
        await session.execute(
            text(
                """
                INSERT INTO events (id, tenant_id, connection_id, dedupe_key, kind, status,
                                    user_key, normalized, received_at)
                SELECT gen_random_uuid(), :tenant, :connection, 'k' || g, 'shared', 'delivered',
                       'id:user-' || g,
                       jsonb_build_object('user', jsonb_build_object(
                           'external_id', 'user-' || g, 'email', 'person' || g || '@example.com')),
                       now() - (g || ' seconds')::interval
                FROM generate_series(1, 20000) AS g
                """
            ),
            {"tenant": tenancy.tenant_a.id, "connection": tenancy.conn_a.id},
        )
        await session.execute(text("ANALYZE events"))
        stmt = filtered_events(tenancy.tenant_a.id, filters).order_by(Event.id.desc()).limit(51)
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {sql}")))
        await session.rollback()

        for index in indexes:
            assert index in plan, plan
        assert "Seq Scan" not in plan, plan

"""GET /v1/connections/{id}/stats: hourly buckets from the event and attempt logs, closed hours
kept in the rollup, tenant isolation, and a bad `hours` answered with the 422 shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import ConnectionStatsHour
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import EventStatus, OperationStatus
from braze_bridge.ops import stats as stats_service
from tests.ops_factories import Tenancy, make_attempt, make_event, operations_of

pytestmark = pytest.mark.rollback

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def principal_of(tenancy: Tenancy) -> Principal:
    return Principal(token_id=uuid.uuid4(), tenant_id=tenancy.tenant_a.id)


async def seed_hour(
    session: AsyncSession, tenancy: Tenancy, at: datetime, *, delivered: int, dead: int = 0
) -> None:
    """`delivered + dead` webhooks at `at`, one object each: a 201 attempt for the delivered
    ones, a 503 then a timeout for the dead ones."""
    good = [
        await make_event(
            session, tenancy.conn_a, received_at=at, operations=[OperationStatus.DELIVERED]
        )
        for _ in range(delivered)
    ]
    bad = [
        await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.DEAD,
            received_at=at,
            operations=[OperationStatus.DEAD],
        )
        for _ in range(dead)
    ]
    if good:
        ops = [op for event in good for op in await operations_of(session, event)]
        await make_attempt(session, tenancy.conn_a, ops, started_at=at + timedelta(seconds=5))
    if bad:
        ops = [op for event in bad for op in await operations_of(session, event)]
        await make_attempt(
            session, tenancy.conn_a, ops, status_code=503, outcome="retry", started_at=at
        )
        await make_attempt(
            session,
            tenancy.conn_a,
            ops,
            status_code=None,
            response_body="",
            error="ReadTimeout",
            outcome="dead",
            started_at=at + timedelta(seconds=30),
        )


async def test_buckets_count_each_hour_and_the_open_hour_live(
    session: AsyncSession, tenancy: Tenancy
) -> None:
    three_ago = NOW.replace(minute=0) - 3 * HOUR + timedelta(minutes=10)
    await seed_hour(session, tenancy, three_ago, delivered=2, dead=1)
    await seed_hour(session, tenancy, NOW - timedelta(minutes=5), delivered=1)
    rate_limited = await make_event(
        session, tenancy.conn_a, received_at=NOW - HOUR, operations=[OperationStatus.PENDING]
    )
    await make_attempt(
        session,
        tenancy.conn_a,
        await operations_of(session, rate_limited),
        status_code=429,
        outcome="rate_limited",
        started_at=NOW - HOUR,
    )
    await make_event(session, tenancy.conn_b, received_at=three_ago)  # another tenant's

    stats = await stats_service.connection_stats(
        session, principal_of(tenancy), tenancy.conn_a.id, hours=24, now=NOW
    )

    assert len(stats.buckets) == 24
    assert stats.buckets[-1].hour == NOW.replace(minute=0)
    assert stats.end == NOW.replace(minute=0) + HOUR
    by_hour = {b.hour: b for b in stats.buckets}
    old = by_hour[three_ago.replace(minute=0)]
    assert (old.received, old.delivered, old.failed, old.dead) == (3, 2, 0, 1)
    assert (old.answers_2xx, old.answers_5xx, old.answers_network) == (1, 1, 1)
    last = by_hour[(NOW - HOUR).replace(minute=0)]
    assert (last.received, last.answers_429, last.delivered) == (1, 1, 0)
    current = stats.buckets[-1]
    assert (current.received, current.delivered, current.answers_2xx) == (1, 1, 1)
    others = [b for b in stats.buckets if b not in (old, last, current)]
    assert all(b.received == b.delivered == b.answers_2xx == 0 for b in others)


async def test_closed_hours_are_counted_once_open_hours_on_every_read(
    session: AsyncSession, tenancy: Tenancy
) -> None:
    closed = NOW.replace(minute=0) - 2 * HOUR
    await seed_hour(session, tenancy, closed + timedelta(minutes=1), delivered=1)
    principal = principal_of(tenancy)

    first = await stats_service.connection_stats(
        session, principal, tenancy.conn_a.id, hours=24, now=NOW
    )
    kept = await session.scalar(
        select(func.count()).where(ConnectionStatsHour.connection_id == tenancy.conn_a.id)
    )
    # A row written into the closed hour now (it cannot happen after the grace period) is not
    # counted again; one in the open hour is.
    await make_event(session, tenancy.conn_a, received_at=closed + timedelta(minutes=2))
    await make_event(session, tenancy.conn_a, received_at=NOW - timedelta(minutes=1))
    second = await stats_service.connection_stats(
        session, principal, tenancy.conn_a.id, hours=24, now=NOW
    )

    # 24 buckets: 22 closed (ended 10 min before NOW or earlier), the previous hour (ended
    # 30 min ago) too; only the current one is open.
    assert kept == 23
    assert [b.received for b in first.buckets][-3:] == [1, 0, 0]
    assert [b.received for b in second.buckets][-3:] == [1, 0, 1]


async def test_the_last_hour_stays_live_during_the_grace_period(
    session: AsyncSession, tenancy: Tenancy
) -> None:
    just_after = NOW.replace(minute=3)
    await stats_service.connection_stats(
        session, principal_of(tenancy), tenancy.conn_a.id, hours=3, now=just_after
    )
    late = await make_event(session, tenancy.conn_a, received_at=just_after - timedelta(minutes=4))
    stats = await stats_service.connection_stats(
        session, principal_of(tenancy), tenancy.conn_a.id, hours=3, now=just_after
    )

    assert late.received_at.hour == 11
    assert [b.received for b in stats.buckets] == [0, 1, 0]


async def test_api_answers_the_buckets_and_hides_other_tenants(
    client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    await seed_hour(session, tenancy, datetime.now(UTC) - timedelta(seconds=1), delivered=2)

    mine = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/stats", headers=tenancy.headers_a()
    )
    theirs = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/stats", headers=tenancy.headers_b()
    )
    small = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/stats?hours=2", headers=tenancy.headers_a()
    )

    assert mine.status_code == 200
    body = mine.json()
    assert body["connection_id"] == str(tenancy.conn_a.id)
    assert len(body["buckets"]) == 24
    assert sum(b["received"] for b in body["buckets"]) == 2
    assert sum(b["delivered"] for b in body["buckets"]) == 2
    assert sum(b["answers_2xx"] for b in body["buckets"]) == 1
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "not_found"
    assert len(small.json()["buckets"]) == 2


@pytest.mark.parametrize("hours", ["0", "169", "-1", "a day", "1.5"])
async def test_a_bad_hours_is_a_422_naming_it(
    client: httpx.AsyncClient, tenancy: Tenancy, hours: str
) -> None:
    response = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/stats",
        params={"hours": hours},
        headers=tenancy.headers_a(),
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == ["query.hours"]


async def test_unknown_connection_and_no_token(client: httpx.AsyncClient, tenancy: Tenancy) -> None:
    unknown = await client.get(f"/v1/connections/{uuid.uuid4()}/stats", headers=tenancy.headers_a())
    anonymous = await client.get(f"/v1/connections/{tenancy.conn_a.id}/stats")

    assert unknown.status_code == 404
    assert anonymous.status_code == 401

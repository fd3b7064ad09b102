"""How each class of Braze answer settles the outbox (Braze faked with respx)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.domain.statuses import ObjectKind
from tests.delivery_support import drain, make_due, make_worker, op_states
from tests.factories import SANDBOX_ENDPOINT, make_connection, make_operations, make_tenant

TRACK = f"{SANDBOX_ENDPOINT}/users/track"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"message": "success"})


async def event_statuses(session: AsyncSession) -> list[tuple[str, str | None]]:
    rows = await session.execute(text("SELECT status, reason FROM events ORDER BY received_at, id"))
    return [(r[0], r[1]) for r in rows]


def braze_taking_at_most(
    limit: int, counts: list[int]
) -> Callable[[httpx.Request], httpx.Response]:
    """A /users/track that notes each request's event count and answers Braze's 400 "Max Input
    Length Exceeded" (braze-inc/braze-docs `_docs/_api/errors.md`) above `limit` objects."""

    def braze(request: httpx.Request) -> httpx.Response:
        count = len(json.loads(request.content)["events"])
        counts.append(count)
        if count > limit:
            return httpx.Response(400, json={"message": "Max Input Length Exceeded"})
        return httpx.Response(201, json={"message": "success", "events_processed": count})

    return braze


async def test_2xx_with_errors_fails_only_the_indexed_objects(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 3, users=3)
    with respx.mock:
        respx.post(TRACK).respond(
            201,
            json={
                "message": "success",
                "events_processed": 2,
                "errors": [{"type": "'time' is not valid", "input_array": "events", "index": 1}],
            },
        )
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    states = await op_states(session, ops)
    assert [(s.status, s.reason) for s in states] == [
        ("delivered", None),
        ("failed", "'time' is not valid"),
        ("delivered", None),
    ]
    assert states[1].sent_object is not None
    assert states[1].sent_object["external_id"] == "user-1"


async def test_400_on_a_single_object_fails_it_with_brazes_message(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 1)
    with respx.mock:
        route = respx.post(TRACK).respond(400, json={"message": "Bad Request"})
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    (state,) = await op_states(session, ops)
    assert (state.status, state.reason, state.attempts) == ("failed", "braze 400: Bad Request", 0)
    assert route.call_count == 1
    assert await event_statuses(session) == [("rejected", "braze 400: Bad Request")]


async def test_400_on_a_multi_object_request_is_split_and_only_the_bad_object_fails(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 10, users=10)

    def braze(request: httpx.Request) -> httpx.Response:
        names = [e["external_id"] for e in json.loads(request.content)["events"]]
        if "user-6" in names:
            return httpx.Response(400, json={"message": "Bad Request"})
        return httpx.Response(201, json={"message": "success"})

    with respx.mock:
        respx.post(TRACK).mock(side_effect=braze)
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    states = await op_states(session, ops)
    assert [s.status for s in states] == ["delivered"] * 6 + ["failed"] + ["delivered"] * 3
    assert "isolated by splitting" in (states[6].reason or "")
    outcomes = await session.execute(
        text("SELECT outcome, count(*) FROM attempt_operations GROUP BY outcome ORDER BY 1")
    )
    assert dict(outcomes.all())["delivered"] == 9


async def test_every_braze_call_names_the_partner_in_user_agent(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """braze-inc/braze-docs `_docs/_partners/isv_partners/api_partner.md`:
    `User-Agent: partner-OrganizationName-ProductName/ProductVersion` on all partner traffic,
    here on the email lookup (export/ids) and on /users/track."""
    conn = await make_connection(session, await make_tenant(session))
    await make_operations(session, conn, 1, external_id=None, email="a@example.com")
    with respx.mock:
        export = respx.post(f"{SANDBOX_ENDPOINT}/users/export/ids").respond(
            201, json={"users": [{"external_id": "u-1"}], "message": "success"}
        )
        track = respx.post(TRACK).mock(side_effect=ok)
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    agents = {c.request.headers["User-Agent"] for c in [*export.calls, *track.calls]}
    assert agents == {f"partner-BrazeBridge-BrazeBridge/{version('braze-bridge')}"}
    assert export.call_count == track.call_count == 1


async def test_max_input_length_exceeded_splits_and_delivers_every_event(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A Braze that takes at most 50 objects (braze-inc/braze-docs
    `_docs/_api/endpoints/user_data/post_user_track.md`: 50 combined on the Monthly Active Users
    CY 24-25 plan) and answers 400 "Max Input Length Exceeded" (braze-inc/braze-docs
    `_docs/_api/errors.md`) above that: nothing fails, every accepted request holds ≤ 50
    objects, and later rounds no longer exceed what Braze took."""
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 75, users=75)
    counts: list[int] = []
    braze = braze_taking_at_most(50, counts)

    with respx.mock:
        respx.post(TRACK).mock(side_effect=braze)
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            states = await op_states(session, ops)
            assert [s.status for s in states] == ["delivered"] * 75
            assert counts == [75, 38, 37]
            more = await make_operations(session, conn, 75, users=75)
            counts.clear()
            await drain(worker)
    assert [s.status for s in await op_states(session, more)] == ["delivered"] * 75
    assert max(counts) <= 38
    assert sum(counts) == 75


async def test_a_combined_50_connection_never_sends_more_than_50_objects(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`: accounts on
    the Monthly Active Users CY 24-25 plan take 50 objects combined per request."""
    conn = await make_connection(
        session, await make_tenant(session), track_object_cap="combined_50"
    )
    ops = await make_operations(session, conn, 75, users=75)
    counts: list[int] = []
    braze = braze_taking_at_most(50, counts)

    with respx.mock:
        respx.post(TRACK).mock(side_effect=braze)
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    assert [s.status for s in await op_states(session, ops)] == ["delivered"] * 75
    assert counts == [50, 25]


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_auth_errors_hold_the_connection_and_burn_no_attempt(
    status: int, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 3, users=3)
    with respx.mock:
        route = respx.post(TRACK).respond(status, json={"message": "Invalid API Key"})
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            assert await worker.claim_and_deliver_once() == 0  # held: nothing claimable
    assert route.call_count == 1
    states = await op_states(session, ops)
    assert {(s.status, s.attempts) for s in states} == {("pending", 0)}
    row = (
        await session.execute(
            text("SELECT state, last_error FROM connections WHERE id = :id"), {"id": conn.id}
        )
    ).one()
    assert row[0] == "auth_error"
    assert row[1].startswith(f"braze {status}: Invalid API Key")
    recorded = await session.scalar(text("SELECT status_code FROM delivery_attempts"))
    assert recorded == status
    assert await event_statuses(session) == [("queued", None)] * 3


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "30"},
        {"X-Ratelimit-Retry-After": "30"},
        {"X-RateLimit-Reset": str(int(NOW.timestamp()) + 30)},
        {"X-RateLimit-Reset": "30"},
    ],
    ids=["retry-after", "x-ratelimit-retry-after", "reset-epoch", "reset-seconds"],
)
async def test_429_holds_the_whole_connection_for_the_announced_wait(
    headers: dict[str, str], session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 2, users=2)
    with respx.mock:
        respx.post(TRACK).respond(429, json={"message": "rate limited"}, headers=headers)
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http, clock=Clock())
            await worker.claim_and_deliver_once()
    states = await op_states(session, ops)
    assert {(s.status, s.attempts, s.available_at) for s in states} == {
        ("pending", 1, NOW + timedelta(seconds=30))
    }
    until = await session.scalar(
        text("SELECT rate_limited_until FROM connections WHERE id = :id"), {"id": conn.id}
    )
    assert until == NOW + timedelta(seconds=30)
    headers_kept = await session.scalar(text("SELECT response_headers FROM delivery_attempts"))
    assert {k.lower() for k in headers_kept} >= {k.lower() for k in headers}


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="<html>Service Unavailable</html>"),
        httpx.Response(500, json={"message": "Internal Server Error"}),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["503-html", "500", "timeout", "connect-error"],
)
async def test_outages_back_off_exponentially_with_jitter(
    failure: httpx.Response | Exception,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 1)
    clock = Clock()
    with respx.mock:
        route = respx.post(TRACK)
        route.side_effect = failure if isinstance(failure, Exception) else None
        if isinstance(failure, httpx.Response):
            route.return_value = failure
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http, clock=clock)
            await worker.claim_and_deliver_once()
            (first,) = await op_states(session, ops)
            await make_due(session)
            clock.at = NOW + timedelta(seconds=5)
            await worker.claim_and_deliver_once()
            (second,) = await op_states(session, ops)
    # base 2 s, equal jitter at 0.5: 1.5 s after the 1st failure, 3 s after the 2nd.
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.available_at == NOW + timedelta(seconds=1.5)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.available_at == NOW + timedelta(seconds=8)
    assert first.reason is not None
    assert first.reason.startswith(("braze 5", "timeout", "cannot reach"))


async def test_past_the_retry_horizon_objects_go_dead(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 1)
    clock = Clock()
    with respx.mock:
        respx.post(TRACK).respond(503)
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http, clock=clock, horizon_seconds=3600)
            await worker.claim_and_deliver_once()
            await make_due(session)
            clock.at = NOW + timedelta(minutes=59)
            await worker.claim_and_deliver_once()
            (alive,) = await op_states(session, ops)
            await make_due(session)
            clock.at = NOW + timedelta(minutes=61)
            await worker.claim_and_deliver_once()
    (dead,) = await op_states(session, ops)
    assert alive.status == "pending"
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert "retry horizon of 1 h passed" in (dead.reason or "")
    assert [s for s, _ in await event_statuses(session)] == ["dead"]
    outcomes = await session.execute(text("SELECT outcome FROM attempt_operations ORDER BY 1"))
    assert sorted(r[0] for r in outcomes) == ["dead", "retry", "retry"]


async def test_order_for_one_user_holds_across_a_retry_and_others_are_not_blocked(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    first = await make_operations(session, conn, 2, external_id="alice")
    sent: list[list[tuple[str, int]]] = []
    answers = iter([503])

    def braze(request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content).get("events", [])
        sent.append([(e["external_id"], e["properties"]["n"]) for e in events])
        return httpx.Response(next(answers, 201), json={"message": "success"})

    with respx.mock:
        respx.post(TRACK).mock(side_effect=braze)
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)  # alice's two events: 503, both back off
            later = await make_operations(session, conn, 1, external_id="alice")
            bob = await make_operations(session, conn, 1, external_id="bob")
            await drain(worker)  # bob goes; alice's third waits behind her first two
            assert [s.status for s in await op_states(session, bob)] == ["delivered"]
            assert [s.status for s in await op_states(session, later)] == ["pending"]
            await make_due(session)
            await drain(worker)
    assert sent == [
        [("alice", 0), ("alice", 1)],
        [("bob", 0)],
        [("alice", 0), ("alice", 1), ("alice", 0)],
    ]
    assert {s.status for s in await op_states(session, first + later)} == {"delivered"}


async def test_email_only_users_are_resolved_once_and_unknown_ones_become_aliases(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    known = await make_operations(session, conn, 2, external_id=None, email="Known@Example.com")
    unknown = await make_operations(
        session,
        conn,
        1,
        external_id=None,
        email="new@example.com",
        kind=ObjectKind.ATTRIBUTES,
        payload={"email": "new@example.com"},
    )
    skipped = await make_operations(
        session, conn, 1, external_id=None, email="ghost@example.com", unknown_user="skip"
    )

    def export(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["fields_to_export"] == [
            "external_id",
            "braze_id",
            "created_at",
            "custom_events",
            "purchases",
            "apps",
        ]
        if body["email_address"] == "known@example.com":
            return httpx.Response(
                201, json={"users": [{"external_id": "crm-7"}], "message": "success"}
            )
        return httpx.Response(201, json={"users": [], "message": "success"})

    with respx.mock:
        lookups = respx.post(f"{SANDBOX_ENDPOINT}/users/export/ids").mock(side_effect=export)
        track = respx.post(TRACK).mock(side_effect=ok)
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            assert lookups.call_count == 3
            again = await make_operations(
                session, conn, 1, external_id=None, email="known@example.com"
            )
            await drain(worker)
            assert lookups.call_count == 3  # answered from the Postgres cache
    states = await op_states(session, known + unknown + skipped + again)
    assert [s.status for s in states] == [
        "delivered",
        "delivered",
        "delivered",
        "skipped",
        "delivered",
    ]
    assert states[0].sent_object is not None
    assert states[0].sent_object["external_id"] == "crm-7"
    assert states[2].sent_object == {
        "user_alias": {"alias_name": "new@example.com", "alias_label": "email"},
        "_update_existing_only": False,
        "email": "new@example.com",
    }
    assert states[3].reason == "unknown_user_skipped"
    assert track.call_count == 2
    cached = await session.execute(text("SELECT email, status FROM identities ORDER BY email"))
    assert cached.all() == [
        ("ghost@example.com", "not_found"),
        ("known@example.com", "found"),
        ("new@example.com", "not_found"),
    ]


@pytest.mark.parametrize(("remaining", "paused"), [("0", True), ("12", False)])
async def test_an_accepted_answer_with_no_budget_left_pauses_the_workspace_until_reset(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    remaining: str,
    paused: bool,
) -> None:
    """Braze sends its rate-limit headers on every answer, not only on a 429.

    braze-inc/braze-docs `_docs/_api/api_limits.md`: `X-RateLimit-Limit`, `-Remaining` and
    `-Reset` (UTC epoch seconds). A 201 that says nothing is left in the window pauses the
    workspace until the reset, instead of spending the next request on a 429.
    """
    conn = await make_connection(session, await make_tenant(session))
    await make_operations(session, conn, 2, users=2)
    reset = int(datetime.now(UTC).timestamp()) + 40
    headers = {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": str(reset)}
    with respx.mock:
        route = respx.post(TRACK).respond(201, json={"message": "success"}, headers=headers)
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
    assert route.call_count == 1
    blocked = await session.scalar(text("SELECT max(blocked_until) FROM rate_buckets"))
    if paused:
        assert blocked is not None
        assert abs(blocked.timestamp() - reset) <= 2
    else:
        assert blocked is None or blocked <= datetime.now(UTC)

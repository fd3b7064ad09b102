"""Connection health tells the truth: one failed attempt of any class reads `degraded` with
`last_error`, a success reads `ok` again, a fixed key clears an auth error's message.

Real worker rounds against real Postgres, Braze faked with respx; health read through the API.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.delivery import worker as worker_module
from tests.delivery_support import drain, make_due, make_worker
from tests.factories import SANDBOX_ENDPOINT, make_operations
from tests.ops_factories import Tenancy

pytestmark = pytest.mark.rollback

TRACK = f"{SANDBOX_ENDPOINT}/users/track"
EXPORT = f"{SANDBOX_ENDPOINT}/users/export/ids"
EMAIL = "grace@example.com"


async def health(client: httpx.AsyncClient, tenancy: Tenancy) -> dict[str, Any]:
    response = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/health", headers=tenancy.headers_a()
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def one_round(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with httpx.AsyncClient() as http:
        return await make_worker(sessionmaker, http).claim_and_deliver_once()


async def recover(sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession) -> None:
    """Every retry due now, and a Braze that accepts everything."""
    await make_due(session)
    with respx.mock:
        respx.post(EXPORT).respond(
            201, json={"users": [{"external_id": "u-1"}], "message": "success"}
        )
        respx.post(TRACK).respond(201, json={"message": "success"})
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))


FAILURES = [
    pytest.param(
        {"status_code": 503, "json": {"message": f"overloaded; {EMAIL}"}},
        "braze 503 on /users/track (server error)",
        id="5xx",
    ),
    pytest.param(
        {"status_code": 500, "text": "<html>Internal Server Error</html>"},
        "braze 500 on /users/track (server error)",
        id="500-html",
    ),
    pytest.param(
        {"status_code": 418, "json": {"message": "?"}},
        "braze 418 on /users/track (unexpected answer)",
        id="unexpected-4xx",
    ),
    pytest.param(httpx.ReadTimeout("slow"), "timeout calling Braze /users/track", id="timeout"),
    pytest.param(
        httpx.ConnectError("refused"),
        "cannot reach Braze /users/track: ConnectError",
        id="connection-error",
    ),
]


@pytest.mark.parametrize(("answer", "expected_error"), FAILURES)
async def test_one_failed_track_attempt_reads_degraded_and_a_success_reads_ok(
    answer: dict[str, Any] | Exception,
    expected_error: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """braze-inc/braze-docs `_docs/_api/errors.md`: 5xx answers and no answer at all are
    retried; the connection says so after the first one, in our words (Braze's body can echo
    what we sent: the email must not reach `last_error`)."""
    await make_operations(session, tenancy.conn_a, 2, users=2)
    assert (await health(client, tenancy))["status"] == "ok"

    with respx.mock:
        route = respx.post(TRACK)
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.respond(**answer)
        assert await one_round(sessionmaker) == 2

    degraded = await health(client, tenancy)
    assert degraded["status"] == "degraded"
    assert degraded["last_error"] == expected_error
    assert degraded["last_error_at"] is not None
    assert degraded["queue_depth"] == 2

    await recover(sessionmaker, session)

    healed = await health(client, tenancy)
    assert (healed["status"], healed["last_error"], healed["last_error_at"]) == ("ok", None, None)
    assert healed["queue_depth"] == 0


async def test_an_error_stays_until_a_success_however_old(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """A 4-minute outage and longer: the age of the last failure does not make it `ok`."""
    await make_operations(session, tenancy.conn_a, 1)
    with respx.mock:
        respx.post(TRACK).respond(502)
        await one_round(sessionmaker)
    await session.execute(
        text("UPDATE connections SET last_error_at = now() - interval '3 hours' WHERE id = :id"),
        {"id": tenancy.conn_a.id},
    )
    await session.commit()

    assert (await health(client, tenancy))["status"] == "degraded"


async def test_a_429_storm_reads_rate_limited_then_degraded_until_a_success(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """braze-inc/braze-docs `_docs/_api/api_limits.md`: a 429 carries when to try again. While
    that holds the connection is `rate_limited`; once it passed with no success yet, `degraded`."""
    await make_operations(session, tenancy.conn_a, 1)
    with respx.mock:
        respx.post(TRACK).respond(429, headers={"Retry-After": "30"}, json={"message": "slow"})
        await one_round(sessionmaker)

    limited = await health(client, tenancy)
    assert limited["status"] == "rate_limited"
    assert limited["last_error"] == "braze 429: rate limited"

    await session.execute(text("UPDATE connections SET rate_limited_until = NULL"))
    await session.commit()
    after_hold = await health(client, tenancy)
    assert (after_hold["status"], after_hold["last_error"]) == (
        "degraded",
        "braze 429: rate limited",
    )

    await recover(sessionmaker, session)
    assert (await health(client, tenancy))["status"] == "ok"


@pytest.mark.parametrize(
    ("answer", "expected_error"),
    [
        pytest.param(
            {"status_code": 503, "json": {"message": f"no {EMAIL}"}},
            "braze 503 on /users/export/ids",
            id="5xx",
        ),
        pytest.param(
            httpx.ConnectTimeout("slow"), "timeout calling Braze /users/export/ids", id="timeout"
        ),
        pytest.param(
            {"status_code": 429, "headers": {"Retry-After": "60"}},
            "braze 429 on /users/export/ids (rate limited)",
            id="429",
        ),
    ],
)
async def test_an_export_ids_failure_reads_degraded(
    answer: dict[str, Any] | Exception,
    expected_error: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/export/user_data/post_users_identifier.md`:
    an email-only user is looked up first; when that lookup fails nothing reaches /users/track,
    and health says why."""
    await make_operations(session, tenancy.conn_a, 1, external_id=None, email=EMAIL)
    with respx.mock:
        route = respx.post(EXPORT)
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.respond(**answer)
        track = respx.post(TRACK).respond(201, json={"message": "success"})
        await one_round(sessionmaker)
        assert track.call_count == 0

    body = await health(client, tenancy)
    assert (body["status"], body["last_error"]) == ("degraded", expected_error)

    await recover(sessionmaker, session)
    assert (await health(client, tenancy))["status"] == "ok"


async def test_a_new_key_clears_the_auth_error_and_its_message(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """braze-inc/braze-docs `_docs/_api/errors.md`: 401 means the key is wrong; the red line
    goes once a new key is set, and delivery then succeeds with it."""
    await make_operations(session, tenancy.conn_a, 1)
    with respx.mock:
        respx.post(TRACK).respond(401, json={"message": "Invalid API Key"})
        await one_round(sessionmaker)
    held = await health(client, tenancy)
    assert held["status"] == "auth_error"
    assert held["last_error"].startswith("braze 401: Invalid API Key")

    patched = await client.patch(
        f"/v1/connections/{tenancy.conn_a.id}",
        headers=tenancy.headers_a(),
        json={"braze": {"api_key": "a-new-working-key"}},
    )
    assert patched.status_code == 200
    assert patched.json()["state"] == "active"
    assert patched.json()["last_error"] is None

    fixed = await health(client, tenancy)
    assert (fixed["status"], fixed["last_error"], fixed["last_error_at"]) == ("ok", None, None)
    with respx.mock:
        track = respx.post(TRACK).respond(201, json={"message": "success"})
        async with httpx.AsyncClient() as http:
            await drain(make_worker(sessionmaker, http))
        assert track.calls.last.request.headers["Authorization"] == "Bearer a-new-working-key"
    assert (await health(client, tenancy))["status"] == "ok"


async def test_a_resume_without_a_fix_is_held_again_by_the_next_401(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """A success never clears an auth hold's message, a resume alone does not either."""
    await make_operations(session, tenancy.conn_a, 1)
    with respx.mock:
        respx.post(TRACK).respond(401, json={"message": "Invalid API Key"})
        await one_round(sessionmaker)
        resumed = await client.post(
            f"/v1/connections/{tenancy.conn_a.id}/resume", headers=tenancy.headers_a()
        )
        assert resumed.status_code == 200
        assert (await health(client, tenancy))["status"] == "degraded"  # message kept
        await one_round(sessionmaker)
    again = await health(client, tenancy)
    assert again["status"] == "auth_error"
    assert again["last_error"].startswith("braze 401")


async def test_a_round_with_one_failed_request_reads_degraded(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """Two requests in one round, one answered 201 and one 503: a partial outage is degraded."""
    await make_operations(session, tenancy.conn_a, 150, users=150)
    answers = iter([httpx.Response(201, json={"message": "success"}), httpx.Response(503)])
    with respx.mock:
        respx.post(TRACK).mock(side_effect=lambda request: next(answers))
        await one_round(sessionmaker)
    body = await health(client, tenancy)
    assert (body["status"], body["last_error"]) == (
        "degraded",
        "braze 503 on /users/track (server error)",
    )


async def test_our_own_error_in_a_round_reads_degraded(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A round that fails in our code retries its objects; health names the error type only."""

    async def broken(*args: object) -> object:
        raise RuntimeError(f"secret detail {EMAIL}")

    monkeypatch.setattr(worker_module, "deliver_round", broken)
    await make_operations(session, tenancy.conn_a, 1)
    await one_round(sessionmaker)
    body = await health(client, tenancy)
    assert (body["status"], body["last_error"]) == (
        "degraded",
        "internal error: RuntimeError in delivery",
    )
    monkeypatch.undo()
    await recover(sessionmaker, session)
    assert (await health(client, tenancy))["status"] == "ok"

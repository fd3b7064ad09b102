"""Identity modes and identify later, webhook → worker → Braze (sandbox, or respx for exact bodies).

docs/delivery.md, "Identity" and "Identify later". Braze pages followed: braze-inc/braze-docs
`_docs/_api/endpoints/user_data/post_user_track.md` (the `email` identifier: the most recently
updated profile with an external id, else an email-only profile), `_docs/_api/objects_filters/
event_object.md` (a `user_alias` event is always "update only"),
`_docs/_api/endpoints/user_data/post_user_identify.md` and
`_docs/_api/endpoints/export/user_data/post_users_identifier.md`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db import migrate
from braze_bridge.db.repositories import identities as identity_repo
from tests import extole_bodies as bodies
from tests.delivery_support import drain, make_due, make_worker, op_states, sandbox_client
from tests.factories import (
    SANDBOX_ENDPOINT,
    MadeConnection,
    make_connection,
    make_operations,
    make_tenant,
)
from tests.integration.admin_support import (
    TenantWithToken,
    error_of,
    extole_body,
    fields_of,
)
from tests.integration.hooks_helpers import post_signed

EMAIL = "april@example.com"
EXTERNAL_ID = "019mr8mf4r"
ALIAS = {"alias_name": EMAIL, "alias_label": "email"}


def email_only(event_id: str) -> dict[str, Any]:
    body = {k: v for k, v in bodies.SHARED.items() if k != "partner_user_id"}
    return {**body, "event_id": event_id}


def with_external_id(event_id: str) -> dict[str, Any]:
    return {**bodies.SHARED, "event_id": event_id}


async def connection_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(text("SELECT count(*) FROM connections")) or 0)


def received(sandbox: Any, endpoint: str) -> list[dict[str, Any]]:
    return [r["body"] for r in sandbox.received if r["endpoint"] == endpoint]


async def extole(session: AsyncSession, identity: str | None) -> MadeConnection:
    settings = {} if identity is None else {"identity": identity}
    return await make_connection(session, await make_tenant(session), settings=settings)


async def test_email_mode_sends_the_email_identifier_without_lookup_or_alias(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A new connection's default: Braze itself finds (or creates) the profile by email."""
    connection = await extole(session, None)
    assert (await post_signed(client, connection, email_only("e-1"))).status_code == 200
    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    assert received(sandbox, "/users/export/ids") == []
    [track] = received(sandbox, "/users/track")
    assert track["attributes"] == [
        {"email": EMAIL, "first_name": "April", "last_name": "Spring"},
    ]
    [event] = track["events"]
    assert event["email"] == EMAIL
    assert "user_alias" not in event
    assert "external_id" not in event
    [profile] = sandbox.with_email(EMAIL)
    assert (profile.external_id, profile.aliases) == (None, [])
    assert profile.custom_events["extole_shared"].count == 1


async def test_skip_mode_skips_an_email_braze_does_not_know(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await extole(session, "skip")
    reply = await post_signed(client, connection, email_only("e-1"))
    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    assert [b["email_address"] for b in received(sandbox, "/users/export/ids")] == [EMAIL]
    assert received(sandbox, "/users/track") == []
    rows = await session.execute(
        text("SELECT status, reason FROM operations WHERE event_id = :e"),
        {"e": reply.json()["event_id"]},
    )
    assert set(rows.all()) == {("skipped", "unknown_user_skipped")}


async def test_lookup_then_alias_creates_the_alias_profile_ahead_of_its_first_event(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The user's first object is an event: an event by `user_alias` is update only, so an
    attributes object with `_update_existing_only: false` goes first in the same request."""
    connection = await extole(session, "lookup_then_alias")
    ops = await make_operations(session, connection, 2, external_id=None, email="New@Example.com")
    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    [track] = received(sandbox, "/users/track")
    alias = {"alias_name": "new@example.com", "alias_label": "email"}
    assert track["attributes"] == [{"user_alias": alias, "_update_existing_only": False}]
    assert [e["user_alias"] for e in track["events"]] == [alias, alias]
    [profile] = [u for u in sandbox.users.values() if u.aliases]
    assert profile.custom_events["test_event"].count == 2  # nothing dropped
    assert [s.status for s in await op_states(session, ops)] == ["delivered"] * 2
    # The attempt carried two operations: the creating object is none of them.
    carried = await session.scalar(text("SELECT count(*) FROM attempt_operations"))
    assert carried == 2 + 2  # export/ids lookup + track


async def test_without_the_creating_object_the_sandbox_drops_an_alias_event_as_braze_does(
    session: AsyncSession,
) -> None:
    """The sandbox is as strict as Braze: what the fix above prevents is visible there."""
    http, sandbox = sandbox_client()
    async with http:
        reply = await http.post(
            "/users/track",
            json={"events": [{"user_alias": ALIAS, "name": "x", "time": "2026-01-01T00:00:00Z"}]},
            headers={"Authorization": "Bearer k"},
        )
    assert reply.status_code == 201
    assert sandbox.users == {}
    assert "update only" in sandbox.received[-1]["sandbox_note"]


async def test_several_profiles_per_email_picks_the_one_braze_would(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Three profiles share an email: an identified one active long ago, an identified one
    active lately, an alias-only one active last. Braze updates the latest identified one;
    lookup_then_alias must address the same profile the email identifier reaches."""
    http, sandbox = sandbox_client()

    async def seed(identifier: dict[str, Any], when: str) -> None:
        body = {
            "attributes": [
                {**identifier, "email": "shared@example.com", "_update_existing_only": False}
            ],
            "events": [{**identifier, "name": "seen", "time": when}],
        }
        reply = await http.post("/users/track", json=body, headers={"Authorization": "Bearer k"})
        assert reply.status_code == 201

    connection = await extole(session, "lookup_then_alias")
    await make_operations(session, connection, 1, external_id=None, email="shared@example.com")
    async with http:
        await seed({"external_id": "old"}, "2026-01-01T00:00:00Z")
        await seed({"external_id": "recent"}, "2026-06-01T00:00:00Z")
        await seed(
            {"user_alias": {"alias_name": "x", "alias_label": "crm"}}, "2026-07-01T00:00:00Z"
        )
        await drain(make_worker(sessionmaker, http))
        [export] = [r for r in sandbox.received if r["endpoint"] == "/users/export/ids"]
        assert export["body"]["fields_to_export"] == [
            "external_id",
            "braze_id",
            "created_at",
            "custom_events",
            "purchases",
            "apps",
        ]
        [track] = [r["body"] for r in sandbox.received if r["endpoint"] == "/users/track"][-1:]
        assert [e["external_id"] for e in track["events"]] == ["recent"]
        # The email identifier, sent straight to the sandbox, reaches the same profile.
        assert sandbox.by_email_identifier("shared@example.com").external_id == "recent"


async def test_an_alias_profile_is_identified_once_before_the_users_next_track_object(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    operator_headers: dict[str, str],
) -> None:
    connection = await extole(session, "lookup_then_alias")
    http, sandbox = sandbox_client()
    async with http:
        worker = make_worker(sessionmaker, http)
        await post_signed(client, connection, email_only("e-1"))
        await drain(worker)
        second = await post_signed(client, connection, with_external_id("e-2"))
        await drain(worker)
        await post_signed(client, connection, with_external_id("e-3"))
        await drain(worker)
    endpoints = [r["endpoint"] for r in sandbox.received]
    assert endpoints == [
        "/users/export/ids",
        "/users/track",
        "/users/identify",
        "/users/track",
        "/users/track",
    ]
    assert received(sandbox, "/users/identify") == [
        {"aliases_to_identify": [{"external_id": EXTERNAL_ID, "user_alias": ALIAS}]}
    ]
    # One person, one profile: the alias-only profile was identified, its event kept.
    [profile] = sandbox.with_email(EMAIL)
    assert profile.external_id == EXTERNAL_ID
    assert profile.aliases == [ALIAS]
    assert profile.custom_events["extole_shared"].count == 3
    marks = await session.execute(
        text("SELECT created_as, identified_external_id FROM identities WHERE email = :e"),
        {"e": EMAIL},
    )
    assert marks.all() == [("alias", EXTERNAL_ID)]
    detail = (
        await client.get(f"/v1/events/{second.json()['event_id']}", headers=operator_headers)
    ).json()
    identify = [a for a in detail["attempts"] if a["endpoint"] == "/users/identify"]
    assert [(a["status_code"], {o["outcome"] for o in a["objects"]}) for a in identify] == [
        (201, {"identified"})
    ]
    assert identify[0]["request_body"] == received(sandbox, "/users/identify")[0]


async def test_an_email_only_profile_is_identified_with_a_prioritization(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await extole(session, "email")
    http, sandbox = sandbox_client()
    async with http:
        worker = make_worker(sessionmaker, http)
        await post_signed(client, connection, email_only("e-1"))
        await drain(worker)
        await post_signed(client, connection, with_external_id("e-2"))
        await drain(worker)
    assert received(sandbox, "/users/identify") == [
        {
            "emails_to_identify": [
                {
                    "external_id": EXTERNAL_ID,
                    "email": EMAIL,
                    "prioritization": ["unidentified", "most_recently_updated"],
                }
            ]
        }
    ]
    [profile] = sandbox.with_email(EMAIL)
    assert profile.external_id == EXTERNAL_ID
    assert profile.custom_events["extole_shared"].count == 2


async def test_a_failed_identify_holds_back_that_users_track_objects_until_it_succeeds(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Per-user order covers the identify call; another user's objects are not held."""
    connection = await extole(session, "lookup_then_alias")
    async with sessionmaker.begin() as s:
        await identity_repo.mark_created(s, connection.id, {EMAIL: "alias"})
    held = await make_operations(session, connection, 2, external_id=EXTERNAL_ID, email=EMAIL)
    other = await make_operations(session, connection, 1, external_id="someone-else")
    answers = iter(
        [
            httpx.Response(500, json={"message": "oops"}),
            httpx.Response(201, json={"aliases_processed": 1, "message": "success"}),
        ]
    )
    with respx.mock:
        identify = respx.post(f"{SANDBOX_ENDPOINT}/users/identify").mock(
            side_effect=lambda _: next(answers)
        )
        track = respx.post(f"{SANDBOX_ENDPOINT}/users/track").mock(
            return_value=httpx.Response(201, json={"message": "success"})
        )
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            first_tracks = [json.loads(c.request.content) for c in track.calls]
            states = await op_states(session, held + other)
            assert [s.status for s in states] == ["pending", "pending", "delivered"]
            assert states[0].reason == "braze 500 on /users/identify: oops"
            assert states[0].attempts == 1
            await make_due(session)
            await drain(worker)
            tracks = [json.loads(c.request.content) for c in track.calls]
            bodies_sent = [json.loads(c.request.content) for c in identify.calls]
    assert first_tracks == [
        {
            "events": [
                {
                    "external_id": "someone-else",
                    "name": "test_event",
                    "time": "2026-01-01T00:00:00Z",
                    "properties": {"n": 0},
                }
            ]
        }
    ]
    assert (
        bodies_sent
        == [{"aliases_to_identify": [{"external_id": EXTERNAL_ID, "user_alias": ALIAS}]}] * 2
    )
    assert [e["external_id"] for e in tracks[-1]["events"]] == [EXTERNAL_ID] * 2
    assert [s.status for s in await op_states(session, held)] == ["delivered"] * 2


async def test_identifies_are_batched_fifty_to_a_request(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    connection = await extole(session, "lookup_then_alias")
    emails = {f"p{n}@example.com": "alias" if n % 2 else "email" for n in range(60)}
    async with sessionmaker.begin() as s:
        await identity_repo.mark_created(s, connection.id, emails)
    for n in range(60):
        await make_operations(
            session, connection, 1, external_id=f"id-{n}", email=f"p{n}@example.com"
        )
    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    sent = received(sandbox, "/users/identify")
    sizes = sorted(sum(len(v) for v in body.values()) for body in sent)
    assert sizes == [10, 50]
    entries = [e for body in sent for v in body.values() for e in v]
    assert len({e["external_id"] for e in entries}) == 60
    left = await session.scalar(
        text("SELECT count(*) FROM identities WHERE identified_external_id IS NULL")
    )
    assert left == 0


class TestSettings:
    """`settings.identity` over the admin API (docs/admin-api.md, docs/extole.md)."""

    async def test_a_new_connection_defaults_to_email_and_a_patch_changes_it(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await client.post("/v1/connections", json=extole_body(), headers=tenant_a.headers)
        assert created.json()["settings"]["identity"] == "email"
        url = f"/v1/connections/{created.json()['id']}"
        patched = await client.patch(
            url, json={"settings": {"identity": "lookup_then_alias"}}, headers=tenant_a.headers
        )
        assert patched.status_code == 200, patched.text
        shown = (await client.get(url, headers=tenant_a.headers)).json()["settings"]
        assert shown["identity"] == "lookup_then_alias"
        assert "unknown_user" not in shown

    async def test_the_former_unknown_user_is_read_as_identity(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await client.post(
            "/v1/connections",
            json=extole_body(settings={"unknown_user": "alias"}),
            headers=tenant_a.headers,
        )
        assert created.json()["settings"]["identity"] == "lookup_then_alias"
        url = f"/v1/connections/{created.json()['id']}"
        patched = await client.patch(
            url, json={"settings": {"unknown_user": "skip"}}, headers=tenant_a.headers
        )
        assert patched.json()["settings"]["identity"] == "skip"
        assert "unknown_user" not in patched.json()["settings"]

    async def test_identity_and_the_former_name_disagreeing_is_a_422(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            "/v1/connections",
            json=extole_body(settings={"unknown_user": "skip", "identity": "email"}),
            headers=tenant_a.headers,
        )
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert fields_of(response) == ["settings"]
        assert "send identity alone" in error["details"][0]["message"]
        assert await connection_count(sessionmaker) == 0

    async def test_an_unknown_mode_is_a_422_and_changes_nothing(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await client.post("/v1/connections", json=extole_body(), headers=tenant_a.headers)
        url = f"/v1/connections/{created.json()['id']}"
        response = await client.patch(
            url, json={"settings": {"identity": "guess"}}, headers=tenant_a.headers
        )
        assert response.status_code == 422
        assert fields_of(response) == ["settings.identity"]
        shown = (await client.get(url, headers=tenant_a.headers)).json()
        assert (shown["settings"]["identity"], shown["version"]) == ("email", 1)


async def test_migration_0003_keeps_existing_connections_on_their_mode(
    database_url: str, session: AsyncSession
) -> None:
    """Connections stored before the modes (`unknown_user` alias or skip) keep what they did."""
    tenant = await make_tenant(session)
    alias = await make_connection(session, tenant, settings={"unknown_user": "alias"})
    skip = await make_connection(session, tenant, settings={"unknown_user": "skip"})
    await asyncio.to_thread(migrate.downgrade, database_url, "0002_extole_settings_names")
    await asyncio.to_thread(migrate.upgrade, database_url, "head")
    rows = await session.execute(
        text("SELECT id, settings FROM connections WHERE id IN (:a, :s)"),
        {"a": alias.id, "s": skip.id},
    )
    stored = {row[0]: row[1] for row in rows}
    assert stored[alias.id] == {"identity": "lookup_then_alias"}
    assert stored[skip.id] == {"identity": "skip"}


async def test_identify_refused_for_the_key_holds_the_connection_and_a_429_waits(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_identify.md`: the key
    needs `users.identify`; `_docs/_api/api_limits.md`: a 429 says when to come back. Neither
    burns an attempt of the objects held back, and nothing goes to /users/track for them."""
    connection = await extole(session, "lookup_then_alias")
    async with sessionmaker.begin() as s:
        await identity_repo.mark_created(s, connection.id, {EMAIL: "alias"})
    ops = await make_operations(session, connection, 1, external_id=EXTERNAL_ID, email=EMAIL)
    with respx.mock:
        identify = respx.post(f"{SANDBOX_ENDPOINT}/users/identify").mock(
            side_effect=[
                httpx.Response(403, json={"message": "Access Denied"}),
                httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "30"}),
            ]
        )
        track = respx.post(f"{SANDBOX_ENDPOINT}/users/track").mock(
            return_value=httpx.Response(201, json={"message": "success"})
        )
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            [held] = await op_states(session, ops)
            state = await session.scalar(
                text("SELECT state FROM connections WHERE id = :c"), {"c": connection.id}
            )
            assert (held.status, held.attempts, state) == ("pending", 0, "auth_error")
            assert "users.identify" in (held.reason or "")
            await session.execute(
                text("UPDATE connections SET state = 'active' WHERE id = :c"), {"c": connection.id}
            )
            await session.commit()
            await make_due(session)
            await drain(worker)
            [waiting] = await op_states(session, ops)
            assert (waiting.status, waiting.attempts) == ("pending", 0)
            assert waiting.reason == "braze 429 on /users/identify: slow down"
            assert identify.call_count == 2
            assert track.call_count == 0
    outcomes = await session.execute(
        text(
            "SELECT a.status_code, o.outcome FROM delivery_attempts a "
            "JOIN attempt_operations o ON o.attempt_id = a.id ORDER BY a.id"
        )
    )
    assert outcomes.all() == [(403, "held"), (429, "rate_limited")]

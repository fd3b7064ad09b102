"""Forgetting a person (docs/privacy.md): after webhook → worker → sandbox, no table of the
database holds the person's email or external id any more; other people and other tenants
keep every row as it was.

Braze's side: braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_delete.md`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import jwt
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.repositories import forget as forget_repo
from braze_bridge.db.repositories import outbox
from braze_bridge.db.repositories.outbox import SettleRow
from braze_bridge.domain.privacy import Person
from braze_bridge.domain.statuses import OperationStatus, Source, WebhookAuthMode
from tests.delivery_support import drain, make_worker, op_states, sandbox_client
from tests.factories import (
    SANDBOX_ENDPOINT,
    MadeConnection,
    TenantWithToken,
    make_connection,
    make_operations,
)
from tests.integration.hooks_helpers import post_signed

P_ID, P_EMAIL = "ada-ext-9137", "ada.lovelace@example.com"
Q_ID, Q_EMAIL = "bob-ext-5521", "bob.builder@example.com"
# Someone else whose address contains P's: another person, not a copy of P.
R_ID, R_EMAIL = "sada-ext-3310", f"s{P_EMAIL}"
ANTAVO_SETTINGS = {
    "sync_mode": "changed_only",
    "field_mappings": [
        {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
        {"loyalty_field": "email", "braze_attribute": "loyalty_email", "type": "string"},
    ],
}


def reward(event_id: str, user: str | None, email: str, reward_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": "reward_fulfilled",
        "email": email,
        "first_name": "Ada" if email == P_EMAIL else "Bob",
        "reward_id": reward_id,
        "face_value": "10.00",
        "face_value_type": "USD",
        "partner_reward_id": f"COUPON-{reward_id}",
        "event_time": "2026-11-20T10:00:00Z",
    }
    if user is not None:
        body["partner_user_id"] = user
    return body


def share_link(event_id: str, user: str, email: str, code: str) -> dict[str, Any]:
    return {
        "event": "Share Link Created",
        "event_id": event_id,
        "email": email,
        "partner_user_id": user,
        "timestamp": "2026-11-20T09:00:00Z",
        "share_link": f"share.example.com/{code}",
        "share_code": code,
    }


def shared_with_friend(event_id: str) -> dict[str, Any]:
    """Q shares with P: Q's event names P's email (Extole's `friend_emails`)."""
    return {
        "event": "extole_shared",
        "event_id": event_id,
        "event_time": "2026-11-20T11:00:00Z",
        "partner_user_id": Q_ID,
        "email": Q_EMAIL,
        "share_link": "https://share.example.com/bob",
        "friend_emails": [P_EMAIL],
    }


async def post_antavo(
    client: httpx.AsyncClient, connection: MadeConnection, body: dict[str, Any]
) -> httpx.Response:
    now = int(time.time())
    bearer = jwt.encode(
        {"iss": "antavo", "iat": now, "exp": now + 300}, connection.webhook_secret, "HS256"
    )
    return await client.post(
        f"/v1/hooks/{connection.id}",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"},
    )


async def dump(session: AsyncSession) -> dict[str, list[str]]:
    """Every row of every table of the test database, as text."""
    tables = await session.scalars(
        text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    )
    rows: dict[str, list[str]] = {}
    for table in list(tables):
        # A bytea prints as hex in the row text: its bytes are added as text too.
        binary = await session.scalars(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = :t AND data_type = 'bytea'"
            ),
            {"t": table},
        )
        decoded = "".join(f" || ' ' || encode(t.\"{c}\", 'escape')" for c in binary)
        query = f'SELECT t::text{decoded} FROM "{table}" t'  # noqa: S608 - names from the catalog
        rows[table] = sorted(await session.scalars(text(query)))
    await session.commit()
    return rows


async def stored_data(session: AsyncSession) -> dict[str, list[str]]:
    """The dump without `api_tokens` (each request records when its token was last used)."""
    rows = await dump(session)
    del rows["api_tokens"]
    return rows


def mentioning(rows: dict[str, list[str]], *needles: str) -> dict[str, list[str]]:
    """Rows holding one of `needles` (any case) not as part of a longer address or id."""
    patterns = [
        re.compile(rf"(?<![\w.%+-]){re.escape(n)}(?![\w.-])", re.IGNORECASE) for n in needles
    ]
    found = {t: [r for r in rs if any(p.search(r) for p in patterns)] for t, rs in rows.items()}
    return {t: rs for t, rs in found.items() if rs}


def occurrences(rows: dict[str, list[str]], needle: str) -> dict[str, int]:
    """How often each table names `needle` (any case), across its rows."""
    counts = {t: sum(r.lower().count(needle.lower()) for r in rs) for t, rs in rows.items()}
    return {t: n for t, n in counts.items() if n}


def rows_naming(rows: dict[str, list[str]], marks: list[str]) -> dict[str, list[str]]:
    """Rows that carry one of `marks` (a connection id, an event id)."""
    return mentioning(rows, *marks)


async def accepted(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def forget(
    client: httpx.AsyncClient, who: TenantWithToken, connection_id: uuid.UUID, **body: str
) -> httpx.Response:
    return await client.post(
        f"/v1/connections/{connection_id}/users/forget", json=body, headers=who.headers
    )


async def test_forget_leaves_no_copy_of_the_person_and_nothing_else_changes(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: TenantWithToken,
    tenant_b: TenantWithToken,
) -> None:
    extole = await make_connection(session, tenant_a.tenant)
    antavo = await make_connection(
        session,
        tenant_a.tenant,
        source=Source.ANTAVO,
        auth_mode=WebhookAuthMode.JWT_HS256,
        settings=ANTAVO_SETTINGS,
    )
    other_tenant = await make_connection(session, tenant_b.tenant)

    await accepted(await post_signed(client, extole, reward("p-1", P_ID, P_EMAIL, "r-p1")))
    await accepted(await post_signed(client, extole, share_link("p-2", P_ID, P_EMAIL, "ada01")))
    # Email only, another case: the worker looks it up in Braze (identity cache, alias).
    await accepted(await post_signed(client, extole, reward("p-3", None, P_EMAIL.upper(), "r-p3")))
    # Unreadable: stored as rejected, its raw body naming the person.
    await accepted(await post_signed(client, extole, {"color": "blue", "email": P_EMAIL}))
    q_reward = await accepted(
        await post_signed(client, extole, reward("q-1", Q_ID, Q_EMAIL, "r-q1"))
    )
    await accepted(await post_signed(client, extole, shared_with_friend("q-2")))
    r_reward = await accepted(
        await post_signed(client, extole, reward("r-1", R_ID, R_EMAIL, "r-r1"))
    )
    b_events = [
        await accepted(
            await post_signed(client, other_tenant, reward("p-1", P_ID, P_EMAIL, "r-p1"))
        ),
        await accepted(
            await post_signed(client, other_tenant, share_link("p-2", P_ID, P_EMAIL, "ada01"))
        ),
    ]
    antavo_identify = {
        "type": "identify",
        "userId": P_ID,
        "traits": {"score": 10, "email": P_EMAIL},
    }
    await accepted(await post_antavo(client, antavo, antavo_identify))
    await accepted(
        await post_antavo(
            client, antavo, {"type": "identify", "userId": Q_ID, "traits": {"score": 3}}
        )
    )

    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))
    # Queued after the drain: still pending when the person is forgotten.
    pending = await accepted(
        await post_signed(client, extole, reward("p-4", P_ID, P_EMAIL, "r-p4"))
    )
    await accepted(
        await post_antavo(
            client, antavo, {"type": "identify", "userId": P_ID, "traits": {"score": 11}}
        )
    )

    before = await dump(session)
    held = mentioning(before, P_EMAIL, P_ID)
    # Everything the brief names held the person before.
    assert {
        "event_bodies",
        "events",
        "operations",
        "delivery_attempts",
        "identities",
        "content_profiles",
        "content_rewards",
        "user_values",
        "user_values_pending",
    } <= set(held)

    by_email = await forget(client, tenant_a, extole.id, email=P_EMAIL.title())
    by_id = await forget(client, tenant_a, antavo.id, external_id=P_ID)

    assert by_email.status_code == 200, by_email.text
    assert by_id.status_code == 200, by_id.text
    removed = by_email.json()["removed"]
    assert by_email.json()["identifiers_linked"] == 2  # the email led to the external id
    assert by_email.json()["braze"] is None
    assert removed["objects_cancelled"] == 2  # p-4's attributes and event
    assert removed["identities_deleted"] == 1
    assert removed["content_rows_deleted"] == 3  # the share link, rewards r-p1 and r-p4
    assert removed["raw_bodies_deleted"] == 6  # p-1..p-4, the rejected one, Q's share
    assert by_id.json()["removed"]["recorded_values_deleted"] >= 2

    after = await dump(session)
    other_tenants_rows = [str(other_tenant.id), *b_events]
    left = mentioning(after, P_EMAIL, P_ID)
    not_b = {
        table: [r for r in rs if not any(mark in r for mark in other_tenants_rows)]
        for table, rs in left.items()
    }
    assert {t: rs for t, rs in not_b.items() if rs} == {}
    # The other tenant's identical person is untouched, row for row.
    assert rows_naming(after, other_tenants_rows) == rows_naming(before, other_tenants_rows)
    # So is the other person's own event in the same connection (event, body, objects).
    assert rows_naming(after, [q_reward]) == rows_naming(before, [q_reward])
    assert rows_naming(after, [r_reward]) == rows_naming(before, [r_reward]) != {}
    # The rejected body's hash was its dedupe key: it is gone with the body.
    hashed = [r for r in before["events"] if "sha256:" in r and str(extole.id) in r]
    assert len(hashed) == 1
    assert [r for r in after["events"] if "sha256:" in r and str(extole.id) in r] == []
    # Attempts that carried P's objects with R's lost P's only: R is named as often as before.
    assert occurrences(after, R_EMAIL) == occurrences(before, R_EMAIL)
    q_values = [r for r in after["user_values"] if Q_ID in r]
    assert q_values == [r for r in before["user_values"] if Q_ID in r] != []

    # The audit trail of events stays, without the person: statuses and counts.
    detail = await client.get(f"/v1/events/{pending}", headers=tenant_a.headers)
    assert detail.status_code == 200, detail.text
    assert detail.json()["status"] == "filtered"
    assert [(o["status"], o["reason"]) for o in detail.json()["objects"]] == [
        ("skipped", "forgotten"),
        ("skipped", "forgotten"),
    ]
    audit = await client.get(f"/v1/connections/{extole.id}/audit", headers=tenant_a.headers)
    [entry] = [e for e in audit.json()["items"] if e["action"] == "forget"]
    assert entry["counts"] == removed
    assert entry["actor_token_id"] is not None
    assert "objects_cancelled" in entry["fields"]
    # The sandbox kept what it received; Braze was not asked to delete anything.
    assert [r for r in sandbox.received if r["endpoint"] == "/users/delete"] == []


async def test_another_tenant_gets_the_same_404_and_nothing_is_forgotten(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant_a: TenantWithToken,
    tenant_b: TenantWithToken,
) -> None:
    extole = await make_connection(session, tenant_a.tenant)
    await accepted(await post_signed(client, extole, reward("p-1", P_ID, P_EMAIL, "r-p1")))
    before = await stored_data(session)

    refused = await forget(client, tenant_b, extole.id, email=P_EMAIL)
    missing = await client.get(f"/v1/connections/{extole.id}", headers=tenant_b.headers)

    assert refused.status_code == 404
    assert (
        refused.json()
        == missing.json()
        == {
            "error": {"code": "not_found", "message": f"no connection {extole.id}", "details": None}
        }
    )
    assert await stored_data(session) == before


async def test_exactly_one_identifier_or_422(
    client: httpx.AsyncClient, session: AsyncSession, tenant_a: TenantWithToken
) -> None:
    extole = await make_connection(session, tenant_a.tenant)
    await accepted(await post_signed(client, extole, reward("p-1", P_ID, P_EMAIL, "r-p1")))
    before = await stored_data(session)
    one_of = {
        "field": "",
        "message": "Value error, give exactly one of external_id or email",
        "type": "value_error",
    }
    cases: list[tuple[Any, list[dict[str, str]]]] = [
        ({}, [one_of]),
        ({"external_id": P_ID, "email": P_EMAIL}, [one_of]),
        (
            {"external_id": ""},
            [
                {
                    "field": "external_id",
                    "message": "String should have at least 1 character",
                    "type": "string_too_short",
                }
            ],
        ),
        (
            {"email": P_EMAIL, "name": "Ada"},
            [
                {
                    "field": "name",
                    "message": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ],
        ),
    ]
    for body, details in cases:
        response = await client.post(
            f"/v1/connections/{extole.id}/users/forget", json=body, headers=tenant_a.headers
        )
        named = ", ".join(d["field"] or "body" for d in details)
        assert response.status_code == 422, body
        assert response.json() == {
            "error": {
                "code": "validation_error",
                "message": f"invalid request: {named}",
                "details": details,
            }
        }, body
    assert await stored_data(session) == before


async def test_delete_in_braze_sends_users_delete_and_off_sends_nothing(
    client: httpx.AsyncClient, session: AsyncSession, tenant_a: TenantWithToken
) -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_delete.md`: one kind of
    identifier per request (`external_ids`, `user_aliases`, `email_addresses`), up to 50."""
    on = await make_connection(
        session, tenant_a.tenant, settings={"privacy": {"delete_in_braze": True}}
    )
    off = await make_connection(session, tenant_a.tenant)
    for connection in (on, off):
        await accepted(await post_signed(client, connection, reward("p-1", P_ID, P_EMAIL, "r-p1")))

    with respx.mock(assert_all_called=False) as braze:
        route = braze.post(f"{SANDBOX_ENDPOINT}/users/delete").respond(
            201, json={"deleted": 1, "message": "success"}
        )
        enabled = await forget(client, tenant_a, on.id, external_id=P_ID)
        sent = [json.loads(call.request.content) for call in route.calls]
        auth = {call.request.headers["authorization"] for call in route.calls}
        disabled = await forget(client, tenant_a, off.id, external_id=P_ID)
        calls_after_disabled = route.call_count

    assert enabled.status_code == 200, enabled.text
    assert sent == [
        {"external_ids": [P_ID]},
        {"user_aliases": [{"alias_name": P_EMAIL, "alias_label": "email"}]},
        {"email_addresses": [P_EMAIL]},
    ]
    assert auth == {f"Bearer {on.api_key}"}
    assert enabled.json()["braze"] == {"requests": 3, "failed": 0, "statuses": [201, 201, 201]}
    assert enabled.json()["removed"]["braze_delete_requests"] == 3
    assert disabled.status_code == 200
    assert disabled.json()["braze"] is None
    assert calls_after_disabled == 3


async def test_an_object_in_flight_is_cancelled_and_its_workers_settle_changes_nothing(
    session: AsyncSession, tenant_a: TenantWithToken
) -> None:
    connection = await make_connection(session, tenant_a.tenant)
    delivered, sending = await make_operations(
        session, connection, 2, external_id=P_ID, per_event=2
    )
    claimed = await outbox.claim_due_operations(session, owner="w1", limit=10, lease_seconds=60)
    assert [op.id for op in claimed] == [delivered.id, sending.id]
    await outbox.settle_operations(
        session, owner="w1", rows=[SettleRow(delivered.id, OperationStatus.DELIVERED)]
    )
    await session.commit()

    await forget_repo.erase_person(session, connection.id, tenant_a.id, Person.of(external_id=P_ID))
    await session.commit()
    late = await outbox.settle_operations(
        session, owner="w1", rows=[SettleRow(sending.id, OperationStatus.DELIVERED)]
    )
    await session.commit()

    assert late.statuses == {}
    states = await op_states(session, [delivered, sending])
    assert [(s.status, s.reason) for s in states] == [
        ("delivered", None),
        ("skipped", "forgotten"),
    ]
    event = await session.scalar(
        text("SELECT status || ' / ' || reason FROM events WHERE id = :id"),
        {"id": delivered.event_id},
    )
    assert event == "partially_delivered / 1 of 2 objects not delivered: forgotten"


async def test_a_forgotten_event_cannot_be_replayed(
    client: httpx.AsyncClient, session: AsyncSession, tenant_a: TenantWithToken
) -> None:
    extole = await make_connection(session, tenant_a.tenant)
    event_id = await accepted(
        await post_signed(client, extole, reward("p-1", P_ID, P_EMAIL, "r-p1"))
    )
    assert (await forget(client, tenant_a, extole.id, external_id=P_ID)).status_code == 200

    replay = await client.post(f"/v1/events/{event_id}/replay", headers=tenant_a.headers)

    assert replay.status_code == 409
    assert replay.json()["error"]["message"] == (
        "the event's person was forgotten: nothing is left to send"
    )
    statuses = await session.scalars(
        text("SELECT status FROM operations WHERE event_id = :id"), {"id": uuid.UUID(event_id)}
    )
    assert set(statuses) == {"skipped"}


async def test_a_braze_failure_is_reported_and_the_local_erasure_still_happens(
    client: httpx.AsyncClient, session: AsyncSession, tenant_a: TenantWithToken
) -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_delete.md`."""
    on = await make_connection(
        session, tenant_a.tenant, settings={"privacy": {"delete_in_braze": True}}
    )
    await accepted(await post_signed(client, on, reward("p-1", P_ID, P_EMAIL, "r-p1")))

    with respx.mock(assert_all_called=False) as braze:
        braze.post(f"{SANDBOX_ENDPOINT}/users/delete").respond(500, json={"message": "boom"})
        response = await forget(client, tenant_a, on.id, email=P_EMAIL)

    assert response.status_code == 200, response.text
    assert response.json()["braze"] == {"requests": 3, "failed": 3, "statuses": [500, 500, 500]}
    assert response.json()["removed"]["braze_delete_failed"] == 3
    assert mentioning(await dump(session), P_EMAIL, P_ID) == {}

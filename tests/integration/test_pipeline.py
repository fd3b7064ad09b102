"""The whole path a user relies on: webhook → stored → worker → Braze (sandbox) → visible.

Ingest runs through the real app; delivery through a real worker whose Braze is the project's
sandbox in-process; what the user then sees comes from the event log API.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.domain.statuses import Source, WebhookAuthMode
from braze_bridge.security.webhook_auth import sign_hmac_sha256
from tests.delivery_support import drain, make_worker, sandbox_client
from tests.factories import make_connection, make_tenant
from tests.integration.admin_support import TenantWithToken, extole_body
from tests.integration.hooks_helpers import post_signed

REWARD = {
    "event_id": "evt-pipeline-1",
    "type": "reward_fulfilled",
    "partner_user_id": "user-42",
    "email": "ada@example.com",
    "first_name": "Ada",
    "reward_id": "r-1",
    "face_value": "10.00",
    "face_value_type": "USD",
    "partner_reward_id": "COUPON-10",
    "event_time": "2026-11-20T10:00:00Z",
}


def track_bodies(state: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in state.received if r["endpoint"] == "/users/track"]


async def event_detail(
    client: httpx.AsyncClient, headers: dict[str, str], event_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/events/{event_id}", headers=headers)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def test_an_extole_reward_reaches_braze_and_the_event_log_shows_how(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    operator_headers: dict[str, str],
) -> None:
    connection = await make_connection(session, await make_tenant(session))
    accepted = await post_signed(client, connection, REWARD)
    assert accepted.status_code == 200
    event_id = accepted.json()["event_id"]

    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))

    [sent] = track_bodies(sandbox)
    [event] = sent["events"]
    assert event["external_id"] == "user-42"
    assert event["name"] == "extole_reward_fulfilled"
    assert event["time"].startswith("2026-11-20T10:00:00")
    assert event["properties"]["face_value"] == 10.0
    assert event["properties"]["coupon_code"] == "COUPON-10"
    [attributes] = sent["attributes"]
    assert attributes["external_id"] == "user-42"
    assert attributes["email"] == "ada@example.com"

    detail = await event_detail(client, operator_headers, event_id)
    assert detail["status"] == "delivered"
    assert {obj["status"] for obj in detail["objects"]} == {"delivered"}
    assert [attempt["status_code"] for attempt in detail["attempts"]] == [201]

    again = await post_signed(client, connection, REWARD)
    assert again.json() == {"status": "duplicate", "event_id": event_id}
    second_http, _ = sandbox_client()
    async with second_http:
        assert await drain(make_worker(sessionmaker, second_http)) == 0


async def test_an_email_only_user_unknown_to_braze_becomes_an_alias_profile(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await make_connection(
        session, await make_tenant(session), settings={"identity": "lookup_then_alias"}
    )
    body = {k: v for k, v in REWARD.items() if k != "partner_user_id"}
    assert (await post_signed(client, connection, body)).status_code == 200

    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))

    lookups = [r for r in sandbox.received if r["endpoint"] == "/users/export/ids"]
    assert [r["body"]["email_address"] for r in lookups] == ["ada@example.com"]
    [sent] = track_bodies(sandbox)
    for obj in sent["events"] + sent["attributes"]:
        assert obj["user_alias"] == {"alias_name": "ada@example.com", "alias_label": "email"}
        assert obj["_update_existing_only"] is False


async def test_antavo_changed_only_sends_each_value_once_braze_accepted_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    operator_headers: dict[str, str],
) -> None:
    connection = await make_connection(
        session,
        await make_tenant(session),
        source=Source.ANTAVO,
        auth_mode=WebhookAuthMode.JWT_HS256,
        settings={
            "sync_mode": "changed_only",
            "field_mappings": [
                {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
                {"loyalty_field": "tier", "braze_attribute": "loyalty_tier", "type": "string"},
            ],
        },
    )

    async def identify(message_id: str, traits: dict[str, Any]) -> None:
        now = int(time.time())
        bearer = jwt.encode({"iat": now, "exp": now + 300}, connection.webhook_secret, "HS256")
        response = await client.post(
            f"/v1/hooks/{connection.id}",
            json={"type": "identify", "userId": "m-1", "messageId": message_id, "traits": traits},
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert response.json()["status"] == "accepted", response.text

    http, sandbox = sandbox_client()
    async with http:
        await identify("m1", {"score": 10, "tier": "Gold"})
        await drain(make_worker(sessionmaker, http))
        await identify("m2", {"score": 25, "tier": "Gold"})
        await drain(make_worker(sessionmaker, http))

    first, second = track_bodies(sandbox)
    assert first["attributes"] == [
        {"external_id": "m-1", "loyalty_points": 10, "loyalty_tier": "Gold"}
    ]
    assert second["attributes"] == [{"external_id": "m-1", "loyalty_points": 25}]
    health = await client.get(f"/v1/connections/{connection.id}/health", headers=operator_headers)
    assert health.json()["data_points_saved"] == 1


async def test_an_export_rate_preset_set_over_the_api_paces_the_email_lookups(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: TenantWithToken,
) -> None:
    """braze-inc/braze-docs `_includes/rate_limits.md` ("users export ids") and
    `_docs/_api/endpoints/export/user_data/post_users_identifier.md`: a workspace onboarded
    before 2024-08-22 has 2,500 /users/export/ids requests a minute, not the 250 of newer ones;
    `fields_to_export` is required."""
    created = await client.post(
        "/v1/connections",
        # max_batch_wait_ms 0: the one object is due at once, so one drain sends it.
        json=extole_body(
            limits={"export_rate_preset": "onboarded_before_2024_08_22", "max_batch_wait_ms": 0},
            settings={"reward_states": ["FULFILLED", "EARNED"], "identity": "lookup_then_alias"},
        ),
        headers=tenant_a.headers,
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    content = json.dumps({k: v for k, v in REWARD.items() if k != "partner_user_id"}).encode()
    signature = sign_hmac_sha256(created.json()["webhook_secret"], content)
    accepted = await client.post(
        f"/v1/hooks/{connection_id}",
        content=content,
        headers={"Content-Type": "application/json", "X-Extole-Signature": signature},
    )
    assert accepted.status_code == 200, accepted.text

    http, sandbox = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))

    lookups = [r["body"] for r in sandbox.received if r["endpoint"] == "/users/export/ids"]
    assert lookups == [
        {
            "email_address": "ada@example.com",
            "fields_to_export": [
                "external_id",
                "braze_id",
                "created_at",
                "custom_events",
                "purchases",
                "apps",
            ],
        }
    ]
    async with sessionmaker() as s:
        buckets = (
            await s.execute(
                text(
                    "SELECT capacity, refill_per_second FROM rate_buckets WHERE key LIKE 'export:%'"
                )
            )
        ).all()
    assert [(row[0], round(row[1], 3)) for row in buckets] == [(2500.0, round(2500 / 60, 3))]

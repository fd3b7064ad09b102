"""The HTTP edge of POST /v1/hooks/{connection_id}: what is kept of a webhook's headers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import EventBody
from tests import extole_bodies as bodies
from tests.factories import BOX, MadeConnection, make_connection, make_tenant
from tests.integration.hooks_helpers import post_signed

PREVIOUS_SECRET = "whsec_previous-0123456789abcdef0123456789"


async def grace_connection(session: AsyncSession) -> MadeConnection:
    """A connection whose secret was rotated an hour ago, the old one still valid for a day."""
    tenant = await make_tenant(session)
    return await make_connection(
        session,
        tenant,
        previous_webhook_secret_enc=BOX.encrypt(PREVIOUS_SECRET),
        previous_secret_expires_at=datetime.now(UTC) + timedelta(days=1),
    )


class TestStoredHeaders:
    async def test_secret_in_custom_headers_is_neither_stored_nor_shown(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
    ) -> None:
        connection = await grace_connection(session)
        current = connection.webhook_secret
        sent = {
            "X-Auth": current,
            "X-Api-Key": current,
            "X-Webhook-Secret": PREVIOUS_SECRET,
            "X-Extole-Client-Key": current,
            "X-Sig": current,
            "X-Custom": f"whsec-in-{current}",
            "X-Other": f"prefix {PREVIOUS_SECRET} suffix",
            # An allowlisted name does not make a secret value storable.
            "User-Agent": f"partner/1.0 ({current})",
            "X-Request-Id": "req-42",
        }

        response = await post_signed(client, connection, bodies.REWARD_FULFILLED_RAW, headers=sent)

        assert response.status_code == 200
        event_id = response.json()["event_id"]
        detail = await client.get(f"/v1/events/{event_id}", headers=operator_headers)
        assert detail.status_code == 200
        for secret in (current, PREVIOUS_SECRET):
            assert secret not in detail.text
        shown = detail.json()["raw"]["headers"]
        assert shown["x-request-id"] == "req-42"
        assert shown["content-type"] == "application/json"
        assert not {"x-auth", "x-sig", "x-custom", "user-agent", "x-extole-signature"} & set(shown)

        stored = await session.get(EventBody, uuid.UUID(event_id))
        assert stored is not None
        assert stored.headers == {
            "content-type": "application/json",
            "content-length": str(len(bodies.REWARD_FULFILLED_RAW)),
            "x-request-id": "req-42",
        }

    async def test_event_detail_hides_custom_headers_of_rows_stored_before_the_allowlist(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
    ) -> None:
        connection = await grace_connection(session)
        response = await post_signed(client, connection, bodies.REWARD_FULFILLED_RAW)
        event_id = response.json()["event_id"]
        stored = await session.get(EventBody, uuid.UUID(event_id))
        assert stored is not None
        stored.headers = {"content-type": "application/json", "x-sig": "old-leak"}
        await session.commit()

        detail = await client.get(f"/v1/events/{event_id}", headers=operator_headers)

        assert detail.json()["raw"]["headers"] == {"content-type": "application/json"}

"""Connected Content endpoint and the preview route."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests import extole_bodies as bodies
from tests.factories import MadeConnection, make_connection, make_tenant, make_token
from tests.integration.hooks_helpers import count_rows, post_signed

ALL_STATES = ["EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED"]


@pytest.fixture
async def extole(session: AsyncSession) -> MadeConnection:
    tenant = await make_tenant(session)
    return await make_connection(session, tenant, settings={"reward_states": ALL_STATES})


def content_headers(connection: MadeConnection) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection.content_token}"}


class TestConnectedContent:
    async def test_share_link_and_rewards_newest_first(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        share = {**bodies.SHARE_LINK_CREATED, "partner_user_id": "1036950001"}
        for body in (share, bodies.REWARD_FULFILLED, bodies.REWARD_EARNED):
            await post_signed(client, extole, body)
        # EARNED of another reward for another user does not show up here.
        response = await client.get(
            f"/v1/content/{extole.id}/1036950001", headers=content_headers(extole)
        )

        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, max-age=300"
        assert response.json() == {
            "share_link": "https://share.yourbrand.com/alex01",
            "share_code": "alex01",
            "rewards": [
                {
                    "reward_id": "bf67905b4e1b41daf39c30f1",
                    "state": "FULFILLED",
                    "face_value": 20,
                    "face_value_type": "PERCENT_OFF",
                    "coupon_code": "RAF12345",
                    "updated_at": "2020-05-29T14:15:02.001000+00:00",
                }
            ],
        }

    async def test_a_late_older_state_does_not_replace_a_newer_one(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        # Extole does not deliver in order: SENT (newer) arrives before FULFILLED (older),
        # then an EARNED without coupon code arrives last.
        await post_signed(client, extole, bodies.REWARD_SENT)
        await post_signed(client, extole, bodies.REWARD_FULFILLED)
        await post_signed(
            client,
            extole,
            bodies.reward(
                bodies.REWARD_FULFILLED_RAW,
                type="reward_earned",
                event_id="earned-1",
                event_time="2020-05-29T14:00:00.000Z",
            ),
        )
        response = await client.get(
            f"/v1/content/{extole.id}/1036950001", headers=content_headers(extole)
        )
        [reward] = response.json()["rewards"]
        assert (reward["state"], reward["coupon_code"]) == ("SENT", "RAF12345")

    async def test_etag_answers_304_when_unchanged(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        await post_signed(client, extole, bodies.SHARE_LINK_CREATED)
        url = f"/v1/content/{extole.id}/USER-12345"
        first = await client.get(url, headers=content_headers(extole))
        again = await client.get(
            url, headers={**content_headers(extole), "If-None-Match": first.headers["etag"]}
        )
        assert (again.status_code, again.content) == (304, b"")

        await post_signed(client, extole, {**bodies.SHARE_LINK_CREATED, "share_code": "alex02"})
        changed = await client.get(
            url, headers={**content_headers(extole), "If-None-Match": first.headers["etag"]}
        )
        assert changed.status_code == 200
        assert changed.json()["share_code"] == "alex02"

    async def test_wrong_token_unknown_user_and_unknown_connection(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        await post_signed(client, extole, bodies.SHARE_LINK_CREATED)
        url = f"/v1/content/{extole.id}/USER-12345"
        other = await make_connection(session, await make_tenant(session))

        assert (await client.get(url)).status_code == 401
        wrong = await client.get(url, headers=content_headers(other))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")
        assert (
            await client.get(url, headers={"Authorization": extole.webhook_secret})
        ).status_code == 401

        unknown_user = await client.get(
            f"/v1/content/{extole.id}/nobody", headers=content_headers(extole)
        )
        assert (unknown_user.status_code, unknown_user.json()["error"]["code"]) == (
            404,
            "not_found",
        )
        unknown_connection = await client.get(
            f"/v1/content/{other.id}/USER-12345", headers=content_headers(other)
        )
        assert unknown_connection.status_code == 404


class TestPreview:
    async def test_shows_normalized_event_and_exact_objects_and_stores_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        extole: MadeConnection,
        operator_headers: dict[str, str],
    ) -> None:
        response = await client.post(
            f"/v1/connections/{extole.id}/preview",
            content=bodies.REWARD_FULFILLED_RAW,
            headers=operator_headers,
        )

        assert response.status_code == 200
        preview: dict[str, Any] = response.json()
        assert preview["status"] == "queued"
        assert preview["reason"] is None
        assert preview["normalized"]["kind"] == "reward"
        assert preview["user"] == {
            "external_id": "1036950001",
            "email": None,
            "resolution": "external_id",
        }
        assert preview["braze"] == {
            "attributes": [{"external_id": "1036950001", "email": "summer@example.com"}],
            "events": [
                {
                    "external_id": "1036950001",
                    "name": "extole_reward_fulfilled",
                    "time": "2020-05-29T14:15:02.001Z",
                    "properties": {
                        "email": "summer@example.com",
                        "face_value": 20,
                        "face_value_type": "PERCENT_OFF",
                        "coupon_code": "RAF12345",
                        "reward_id": "bf67905b4e1b41daf39c30f1",
                        "reward_supplier_type": "MANUAL_COUPON",
                    },
                }
            ],
            "purchases": [],
        }
        assert await count_rows(session) == (0, 0, 0)

    async def test_email_only_user_gets_a_resolution_note(
        self, client: httpx.AsyncClient, extole: MadeConnection, operator_headers: dict[str, str]
    ) -> None:
        body = {k: v for k, v in bodies.SHARED.items() if k != "partner_user_id"}
        response = await client.post(
            f"/v1/connections/{extole.id}/preview",
            content=json.dumps(body),
            headers=operator_headers,
        )
        preview = response.json()
        # A new connection's identity mode is `email` (docs/delivery.md, "Identity").
        assert preview["user"]["resolution"] == "email_identifier"
        assert "email identifier" in preview["user"]["note"]
        assert "external_id" not in preview["braze"]["events"][0]

    async def test_filtered_and_rejected_bodies_say_why(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
    ) -> None:
        connection = await make_connection(session, await make_tenant(session))
        url = f"/v1/connections/{connection.id}/preview"
        filtered = (
            await client.post(url, content=bodies.REWARD_EARNED_RAW, headers=operator_headers)
        ).json()
        assert (filtered["status"], filtered["reason"]) == (
            "filtered",
            "reward_state_not_enabled: EARNED",
        )
        assert filtered["braze"] == {"attributes": [], "events": [], "purchases": []}
        rejected = (
            await client.post(url, content=b'{"event":"shared"}', headers=operator_headers)
        ).json()
        assert (rejected["status"], rejected["reason"]) == ("rejected", "no_user_identifier")
        bad = await client.post(url, content=b"{", headers=operator_headers)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_json")

    async def test_tenant_tokens_see_only_their_connections(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        owner, stranger = await make_tenant(session), await make_tenant(session)
        connection = await make_connection(session, owner)
        url = f"/v1/connections/{connection.id}/preview"
        body = json.dumps(bodies.SHARED)

        mine = await client.post(
            url,
            content=body,
            headers={"Authorization": f"Bearer {await make_token(session, owner)}"},
        )
        theirs = await client.post(
            url,
            content=body,
            headers={"Authorization": f"Bearer {await make_token(session, stranger)}"},
        )
        anonymous = await client.post(url, content=body)

        assert mine.json()["status"] == "queued"
        assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "not_found")
        assert anonymous.status_code == 401

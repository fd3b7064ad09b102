"""POST /v1/hooks/{connection_id}: the contract's replies, what is stored, dedupe, races."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.app import Runtime, create_app
from braze_bridge.db.models import Connection, Event, EventBody
from braze_bridge.domain.statuses import ConnectionState, WebhookAuthMode
from braze_bridge.ingest import service
from braze_bridge.security.webhook_auth import sign_hmac_sha256
from tests import extole_bodies as bodies
from tests.conftest import asyncpg_dsn
from tests.factories import BOX, MadeConnection, make_connection, make_tenant, make_token
from tests.integration.admin_support import extole_body
from tests.integration.hooks_helpers import (
    count_rows,
    post_signed,
    raw,
    stored_event,
    stored_operations,
)

ALL_STATES = ["EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED"]


@pytest.fixture
async def extole(session: AsyncSession) -> MadeConnection:
    tenant = await make_tenant(session)
    return await make_connection(session, tenant, settings={"reward_states": ALL_STATES})


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


class TestAccepted:
    async def test_reward_is_stored_with_body_operations_and_normalized_form(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        response = await post_signed(
            client, extole, bodies.REWARD_FULFILLED_RAW, headers={"Cookie": "a=b"}
        )

        assert response.status_code == 200
        reply = response.json()
        assert reply["status"] == "accepted"
        event = await stored_event(session, reply["event_id"])
        assert (event.status, event.kind, event.reason) == ("queued", "reward_fulfilled", None)
        assert (event.dedupe_key, event.source_event_id) == (
            "event:qb3jju459ugjr2aojk6f",
            "qb3jju459ugjr2aojk6f",
        )
        assert event.user_key == "id:1036950001"
        assert event.normalized is not None
        assert event.normalized["state"] == "FULFILLED"
        assert event.normalized["coupon_code"] == "RAF12345"
        assert event.occurred_at == datetime(2020, 5, 29, 14, 15, 2, 1000, tzinfo=UTC)

        stored = await session.get(EventBody, event.id)
        assert stored is not None
        assert stored.body == bodies.REWARD_FULFILLED_RAW
        assert stored.content_type == "application/json"
        assert "x-extole-signature" not in stored.headers
        assert "cookie" not in stored.headers

        operations = await stored_operations(session, reply["event_id"])
        assert [
            (o.position, o.kind, o.status, o.user_key, o.external_id, o.email, o.unknown_user)
            for o in operations
        ] == [
            (
                0,
                "attributes",
                "pending",
                "id:1036950001",
                "1036950001",
                "summer@example.com",
                "email",
            ),
            (1, "events", "pending", "id:1036950001", "1036950001", "summer@example.com", "email"),
        ]
        assert operations[0].payload == {"email": "summer@example.com"}
        assert operations[1].payload["name"] == "extole_reward_fulfilled"
        assert operations[1].payload["properties"]["coupon_code"] == "RAF12345"

    async def test_email_only_user_is_queued_for_resolution(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        body = {k: v for k, v in bodies.SHARED.items() if k != "partner_user_id"}
        reply = (await post_signed(client, extole, body)).json()

        operations = await stored_operations(session, reply["event_id"])
        assert {(o.user_key, o.external_id, o.email) for o in operations} == {
            ("email:april@example.com", None, "april@example.com")
        }
        assert (await stored_event(session, reply["event_id"])).user_key == (
            "email:april@example.com"
        )

    async def test_no_identifier_is_accepted_and_stored_as_rejected(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        response = await post_signed(client, extole, {"event": "shared", "first_name": "X"})

        assert (response.status_code, response.json()["status"]) == (200, "accepted")
        event = await stored_event(session, response.json()["event_id"])
        assert (event.status, event.reason, event.kind) == (
            "rejected",
            "no_user_identifier",
            "shared",
        )
        assert await stored_operations(session, response.json()["event_id"]) == []

    async def test_reward_body_without_a_type_is_queued_as_the_untyped_reward_state(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        """extole/product-docs `technical/platform-integrations/webhooks/reward-webhooks.mdx`:
        "always contains the `reward_id` and the `data` parameters", example without `type`;
        here with the `partner_user_id` a reward body carries."""
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant)  # default settings: FULFILLED
        body = {
            "reward_id": "b600f6fdd06c83f8ffdd6309",
            "partner_user_id": "u-7",
            "data": {"earned_event_value": "100.00", "journey_name": "ADVOCATE"},
        }
        response = await post_signed(client, connection, body)

        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        event = await stored_event(session, response.json()["event_id"])
        assert (event.status, event.reason, event.kind) == ("queued", None, "reward")
        operations = await stored_operations(session, response.json()["event_id"])
        assert [op.payload for op in operations] == [
            {
                "name": "extole_reward_fulfilled",
                "time": operations[0].payload["time"],
                "properties": {"reward_id": "b600f6fdd06c83f8ffdd6309"},
            }
        ]

    async def test_unknown_shape_and_non_object_json_are_stored_as_rejected(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        for body, reason in (
            ({"hello": "world"}, "unknown_shape: no event"),
            ([1, 2, 3], "unknown_shape: body is a JSON array"),
        ):
            response = await post_signed(client, extole, body)
            event = await stored_event(session, response.json()["event_id"])
            assert event.status == "rejected"
            assert event.reason is not None
            assert event.reason.startswith(reason)
            assert event.dedupe_key.startswith("sha256:")
            stored = await session.get(EventBody, event.id)
            assert stored is not None
            assert stored.body == raw(body)

    async def test_state_not_enabled_is_filtered(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant)  # default: FULFILLED only
        reply = (await post_signed(client, connection, bodies.REWARD_EARNED_RAW)).json()

        event = await stored_event(session, reply["event_id"])
        assert (event.status, event.reason) == ("filtered", "reward_state_not_enabled: EARNED")
        assert await stored_operations(session, reply["event_id"]) == []

    async def test_paused_connection_still_stores_and_enqueues(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenant = await make_tenant(session)
        paused = await make_connection(session, tenant, state=ConnectionState.PAUSED)
        reply = (await post_signed(client, paused, bodies.SHARED)).json()

        assert reply["status"] == "accepted"
        assert len(await stored_operations(session, reply["event_id"])) == 2

    async def test_operations_wake_the_workers_with_a_notify(
        self, client: httpx.AsyncClient, extole: MadeConnection, database_url: str
    ) -> None:
        listener = await asyncpg.connect(asyncpg_dsn(database_url))
        received: asyncio.Queue[str] = asyncio.Queue()
        await listener.add_listener(
            "braze_bridge_outbox", lambda *args: received.put_nowait(args[3])
        )
        try:
            await post_signed(client, extole, bodies.SHARED)
            assert await asyncio.wait_for(received.get(), timeout=5) == str(extole.id)
        finally:
            await listener.close()


class TestDedupe:
    @pytest.mark.parametrize("name", sorted(bodies.ALL_DOCUMENTED))
    async def test_redelivery_answers_duplicate_and_adds_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection, name: str
    ) -> None:
        body = bodies.ALL_DOCUMENTED[name]
        first = (await post_signed(client, extole, body)).json()
        before = await count_rows(session)

        again = await post_signed(client, extole, body)

        assert again.status_code == 200
        assert again.json() == {"status": "duplicate", "event_id": first["event_id"]}
        assert await count_rows(session) == before

    async def test_reward_without_event_id_dedupes_on_reward_and_state(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        body = {k: v for k, v in bodies.REWARD_SENT.items() if k != "event_id"}
        first = (await post_signed(client, extole, body)).json()
        # Same reward and state, bytes differ (a field Extole re-rendered): still a duplicate.
        second = (await post_signed(client, extole, {**body, "message": "again"})).json()
        other_state = (
            await post_signed(client, extole, {**body, "type": "reward_redeemed"})
        ).json()

        assert second == {"status": "duplicate", "event_id": first["event_id"]}
        assert other_state["status"] == "accepted"
        event = await stored_event(session, first["event_id"])
        assert event.dedupe_key == "reward:bf67905b4e1b41daf39c30f1:reward_sent"

    async def test_same_event_id_on_two_connections_is_two_events(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        tenant = await make_tenant(session)
        other = await make_connection(session, tenant)
        a = (await post_signed(client, extole, bodies.SHARED)).json()
        b = (await post_signed(client, other, bodies.SHARED)).json()
        assert (a["status"], b["status"]) == ("accepted", "accepted")
        assert a["event_id"] != b["event_id"]

    async def test_many_concurrent_deliveries_store_exactly_one_event(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        replies = await asyncio.gather(
            *(post_signed(client, extole, bodies.REWARD_FULFILLED_RAW) for _ in range(40))
        )

        assert {r.status_code for r in replies} == {200}
        statuses = [r.json()["status"] for r in replies]
        assert statuses.count("accepted") == 1
        assert statuses.count("duplicate") == 39
        assert len({r.json()["event_id"] for r in replies}) == 1
        assert await count_rows(session) == (1, 1, 2)


class TestRefusals:
    async def test_unknown_malformed_and_deleted_connections_are_404(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        await session.execute(
            update(Connection)
            .where(Connection.id == extole.id)
            .values(deleted_at=datetime.now(UTC))
        )
        await session.commit()
        for path in (f"/v1/hooks/{uuid.uuid4()}", "/v1/hooks/not-a-uuid", f"/v1/hooks/{extole.id}"):
            response = await client.post(
                path, content=b"{}", headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 404
            assert error(response)["code"] == "not_found"
        assert await count_rows(session) == (0, 0, 0)

    async def test_bad_signature_is_401_and_stores_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        reserialized = json.dumps(json.loads(bodies.REWARD_EARNED_RAW), indent=1).encode()
        response = await client.post(
            f"/v1/hooks/{extole.id}",
            content=bodies.REWARD_EARNED_RAW,
            headers={
                "Content-Type": "application/json",
                "X-Extole-Signature": sign_hmac_sha256(extole.webhook_secret, reserialized),
            },
        )
        assert response.status_code == 401
        assert error(response) == {
            "code": "unauthorized",
            "message": "X-Extole-Signature does not match the body",
            "details": None,
        }
        missing = await client.post(
            f"/v1/hooks/{extole.id}", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert error(missing)["message"] == "missing X-Extole-Signature header"
        assert await count_rows(session) == (0, 0, 0)

    async def test_sha1_signature_is_401_saying_how_to_configure_hs256(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        """extole/product-docs `technical/platform-integrations/webhooks/webhook-creation.mdx`:
        the Java sample signs HmacSHA256 hex, the Ruby sample `'sha1=' + HMAC-SHA1`."""
        body = bodies.REWARD_EARNED_RAW
        sha1 = hmac.new(extole.webhook_secret.encode(), body, hashlib.sha1).hexdigest()
        response = await client.post(
            f"/v1/hooks/{extole.id}",
            content=body,
            headers={"Content-Type": "application/json", "X-Extole-Signature": f"sha1={sha1}"},
        )
        assert response.status_code == 401
        assert error(response) == {
            "code": "unauthorized",
            "message": "X-Extole-Signature is a sha1= signature; SHA-1 is not accepted. In "
            "Extole's Security Center use a Webhook client key with algorithm HS256 "
            "(HMAC-SHA256, hex) whose value is this connection's webhook_secret",
            "details": None,
        }
        assert sha1 not in response.text
        assert await count_rows(session) == (0, 0, 0)

    async def test_prefixed_upper_case_signature_is_accepted(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        signature = "sha256=" + sign_hmac_sha256(extole.webhook_secret, bodies.REWARD_EARNED_RAW)
        response = await client.post(
            f"/v1/hooks/{extole.id}",
            content=bodies.REWARD_EARNED_RAW,
            headers={"Content-Type": "application/json", "X-Extole-Signature": signature.upper()},
        )
        assert response.json()["status"] == "accepted"

    async def test_too_large_by_header_and_while_streaming(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        big = b'{"pad":"' + b"x" * 1_048_576 + b'"}'
        response = await post_signed(client, extole, big)
        assert response.status_code == 413
        assert error(response) == {
            "code": "payload_too_large",
            "message": "body is larger than 1048576 bytes",
            "details": {"max_body_bytes": 1048576},
        }

        async def chunks() -> Any:  # no Content-Length: the limit applies while reading
            for _ in range(20):
                yield b"x" * 65536

        streamed = await client.post(
            f"/v1/hooks/{extole.id}",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert await count_rows(session) == (0, 0, 0)

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", ""]
    )
    async def test_non_json_content_type_is_415(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        extole: MadeConnection,
        content_type: str,
    ) -> None:
        response = await post_signed(
            client, extole, bodies.SHARED, headers={"Content-Type": content_type}
        )
        assert response.status_code == 415
        assert error(response)["code"] == "unsupported_media_type"
        assert await count_rows(session) == (0, 0, 0)

    async def test_json_suffix_types_are_accepted(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        response = await post_signed(
            client,
            extole,
            bodies.SHARED,
            headers={"Content-Type": "application/vnd.extole+json; charset=utf-8"},
        )
        assert response.json()["status"] == "accepted"

    @pytest.mark.parametrize(
        ("body", "details"),
        [
            (b'{"event": "shared",\n  "email": }', {"line": 2, "column": 12, "position": 31}),
            (b"", {"line": 1, "column": 1, "position": 0}),
            (b'{"a": NaN}', None),
            (b'{"a": "\xff"}', {"line": 1, "column": 8, "position": 7}),
        ],
    )
    async def test_invalid_json_is_400_with_the_position(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        extole: MadeConnection,
        body: bytes,
        details: dict[str, int] | None,
    ) -> None:
        response = await post_signed(client, extole, body)
        assert response.status_code == 400
        assert error(response)["code"] == "invalid_json"
        assert error(response)["details"] == details
        assert await count_rows(session) == (0, 0, 0)

    async def test_auth_is_checked_before_content_type_and_json(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        response = await client.post(
            f"/v1/hooks/{extole.id}", content=b"not json", headers={"Content-Type": "text/plain"}
        )
        assert response.status_code == 401


class TestAuthModes:
    @pytest.mark.parametrize("mode", list(WebhookAuthMode))
    async def test_each_mode_good_and_bad(
        self, client: httpx.AsyncClient, session: AsyncSession, mode: WebhookAuthMode
    ) -> None:
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant, auth_mode=mode)
        body = json.dumps(bodies.SHARED).encode()

        def headers(secret: str) -> dict[str, str]:
            return {
                WebhookAuthMode.HMAC_SHA256: {"X-Extole-Signature": sign_hmac_sha256(secret, body)},
                WebhookAuthMode.BEARER: {"Authorization": f"Bearer {secret}"},
                WebhookAuthMode.BASIC: {
                    "Authorization": "Basic "
                    + base64.b64encode(f"extole:{secret}".encode()).decode()
                },
                WebhookAuthMode.JWT_HS256: {
                    "Authorization": "Bearer " + jwt.encode({"iss": "antavo"}, secret, "HS256")
                },
            }[mode]

        url = f"/v1/hooks/{connection.id}"
        json_type = {"Content-Type": "application/json"}
        bad = await client.post(
            url,
            content=body,
            headers={**json_type, **headers("whsec_wrong-0123456789abcdef0123456789")},
        )
        good = await client.post(
            url, content=body, headers={**json_type, **headers(connection.webhook_secret)}
        )
        assert bad.status_code == 401
        assert good.json()["status"] == "accepted"
        stored = await session.get(EventBody, uuid.UUID(good.json()["event_id"]))
        assert stored is not None
        assert "authorization" not in stored.headers

    async def test_extole_http_basic_key_alone_on_a_connection_made_by_the_admin_api(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        """Extole's HTTP_Basic client key sends `Authorization:Basic <base64EncodedKey>`, the
        key alone (extole/product-docs `technical/platform-integrations/webhooks/index.mdx`)."""
        tenant = await make_tenant(session)
        token = await make_token(session, tenant)
        created = await client.post(
            "/v1/connections",
            json=extole_body(webhook_auth={"mode": "basic"}),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        key = created.json()["webhook_secret"]
        body = json.dumps(bodies.SHARED).encode()

        response = await client.post(
            f"/v1/hooks/{created.json()['id']}",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(key.encode()).decode(),
            },
        )

        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        stored = await session.get(EventBody, uuid.UUID(response.json()["event_id"]))
        assert stored is not None
        assert stored.body == body

    async def test_previous_secret_works_only_during_the_grace_period(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenant = await make_tenant(session)
        old = "whsec_previous-0123456789abcdef"
        connection = await make_connection(
            session,
            tenant,
            previous_webhook_secret_enc=BOX.encrypt(old),
            previous_secret_expires_at=datetime.now(UTC) + timedelta(hours=24),
        )
        assert (await post_signed(client, connection, bodies.SHARED, secret=old)).status_code == 200

        await session.execute(
            update(Connection)
            .where(Connection.id == connection.id)
            .values(previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
        late = await post_signed(client, connection, bodies.CONVERTED, secret=old)
        assert late.status_code == 401


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "event",
                    "type",
                    "name",
                    "email",
                    "partner_user_id",
                    "reward_id",
                    "data",
                    "value",
                    "event_id",
                    "face_value",
                    "share_link",
                    "event_time",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
kind_names = st.sampled_from(
    ["shared", "reward_earned", "Share Link Created", "opted_out", "converted", "STEP", ""]
)
extole_like = st.fixed_dictionaries(
    {"event": kind_names | st.text(max_size=10)},
    optional={
        "email": st.text(max_size=20) | st.just("a@b.co"),
        "partner_user_id": st.text(max_size=12) | st.integers(),
        "reward_id": st.text(max_size=8),
        "face_value": st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
        "event_time": st.text(max_size=30),
        "data": json_values,
    },
)


class TestArbitraryBodies:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=json_values | extole_like)
    async def test_any_json_is_stored_or_cleanly_refused_never_a_500(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection, body: Any
    ) -> None:
        content = json.dumps(body).encode()
        response = await post_signed(client, extole, content)

        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["status"] in {"accepted", "duplicate"}
        event = await session.get(Event, uuid.UUID(reply["event_id"]), populate_existing=True)
        assert event is not None
        assert event.status in {"queued", "filtered", "rejected"}
        if reply["status"] == "accepted":
            stored = await session.get(EventBody, event.id)
            assert stored is not None
            assert stored.body == content

    async def test_a_bug_while_accepting_answers_500_in_the_contract_shape(
        self,
        client: httpx.AsyncClient,
        extole: MadeConnection,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Webhooks are answered before FastAPI's routing; a bug there must look the same as
        # anywhere else: the contract's error body, no internals.
        async def broken(**_: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(service, "accept_webhook", broken)
        response = await post_signed(client, extole, bodies.REWARD_FULFILLED_RAW)

        assert response.status_code == 500
        assert response.json() == {
            "error": {
                "code": "internal_error",
                "message": "internal error; the request was not completed",
                "details": None,
            }
        }

    async def test_a_number_beyond_double_range_is_stored_not_a_500(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        # Valid JSON that Python reads as infinity, which jsonb cannot hold.
        content = bodies.REWARD_FULFILLED_RAW.replace(b'"face_value":20', b'"face_value":1e400')
        response = await post_signed(client, extole, content)
        assert response.status_code == 200, response.text
        event = await stored_event(session, response.json()["event_id"])
        assert event.status == "queued"
        stored = await session.get(EventBody, event.id)
        assert stored is not None
        assert stored.body == content

    async def test_nul_characters_and_lone_surrogates_outside_ids_are_stored(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        content = (
            b'{"event": "conv\\u0000erted", "partner_user_id": "u-1", "first_name": "A\\ud800",'
            b' "x\\u0000": "\\u0000"}'
        )
        response = await post_signed(client, extole, content)
        assert response.status_code == 200
        event = await stored_event(session, response.json()["event_id"])
        assert event.status == "queued"
        stored = await session.get(EventBody, event.id)
        assert stored is not None
        assert stored.body == content
        assert event.user_key == "id:u-1"
        operations = await stored_operations(session, response.json()["event_id"])
        assert {op.user_key for op in operations} == {"id:u-1"}

    async def test_an_id_holding_a_lone_surrogate_is_rejected_not_rewritten(
        self, client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
    ) -> None:
        content = b'{"event": "converted", "partner_user_id": "u\\ud800"}'
        response = await post_signed(client, extole, content)
        assert response.status_code == 200
        event = await stored_event(session, response.json()["event_id"])
        assert (event.status, event.reason) == (
            "rejected",
            "invalid_user_identifier: partner_user_id holds a character Braze cannot receive"
            " (U+D800)",
        )
        assert await stored_operations(session, response.json()["event_id"]) == []


class TestServedBeforeRouting:
    """Webhooks are answered by `hooks.serve_webhook` ahead of FastAPI's routing (api/hooks.py
    says why); the route registered for the endpoint only documents it."""

    async def test_openapi_documents_the_endpoint_its_body_and_answers(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()

        operation = document["paths"]["/v1/hooks/{connection_id}"]["post"]
        assert operation["summary"] == "Receive Webhook"
        assert operation["requestBody"]["required"] is True
        assert "application/json" in operation["requestBody"]["content"]
        assert [p["name"] for p in operation["parameters"]] == ["connection_id"]
        replies = operation["responses"]
        assert replies["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WebhookReply"
        }
        for code in ("400", "401", "404", "408", "413", "415"):
            schema = replies[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, code

    async def test_app_middleware_sees_every_request_except_webhooks(
        self, runtime: Runtime, extole: MadeConnection
    ) -> None:
        seen: list[str] = []
        app = create_app(runtime)

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            seen.append(request.url.path)
            return await call_next(request)

        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            hook = await post_signed(c, extole, bodies.REWARD_FULFILLED_RAW)
            probe = await c.get("/healthz")

        assert hook.status_code == 200
        assert hook.json()["status"] == "accepted"
        assert probe.status_code == 200
        assert seen == ["/healthz"]

    async def test_other_methods_on_the_webhook_path_go_through_the_router(
        self, client: httpx.AsyncClient, extole: MadeConnection
    ) -> None:
        response = await client.get(f"/v1/hooks/{extole.id}")

        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"

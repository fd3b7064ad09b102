"""Antavo through `POST /v1/hooks/{id}`: JWT auth, the body shapes, changed_only wiring.

The webhook route and the JWT verifier come from the Extole-ingest branch; until it is merged
these tests skip themselves (they are the acceptance checks of the merge).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Event
from braze_bridge.db.models import Operation as OperationRow
from braze_bridge.domain.statuses import Source, WebhookAuthMode
from tests.delivery_support import drain, make_worker, sandbox_client
from tests.factories import MadeConnection, make_connection, make_tenant

MEMBER = "280e674c"
SETTINGS: dict[str, Any] = {
    "field_mappings": [
        {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
        {"loyalty_field": "tier", "braze_attribute": "loyalty_tier", "type": "string"},
    ],
    "sync_mode": "changed_only",
    "event_name_prefix": "antavo_",
    "checkout_as_purchase": True,
    "purchase": {"default_currency": "EUR"},
}


@pytest.fixture
async def connection(session: AsyncSession) -> MadeConnection:
    tenant = await make_tenant(session)
    return await make_connection(
        session,
        tenant,
        source=Source.ANTAVO,
        auth_mode=WebhookAuthMode.JWT_HS256,
        settings=SETTINGS,
        braze_app_id="antavo-app",
    )


def token(secret: str, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"iss": "antavo", "iat": now, "exp": now + 300, **claims}, secret, "HS256")


def unsigned_token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'iss': 'antavo'})}."


async def post(
    client: httpx.AsyncClient, connection: MadeConnection, body: Any, bearer: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return await client.post(
        f"/v1/hooks/{connection.id}", content=json.dumps(body), headers=headers
    )


async def stored_events(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Event)) or 0)


async def payloads(session: AsyncSession, event_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await session.execute(
        select(OperationRow.kind, OperationRow.payload)
        .where(OperationRow.event_id == event_id)
        .order_by(OperationRow.position)
    )
    return [(str(row.kind), row.payload) for row in rows]


TRACK = {
    "type": "track",
    "event": "point_add",
    "userId": MEMBER,
    "timestamp": "2024-11-26T15:15:49Z",
    "properties": {"points": 5000},
}


class TestJwt:
    async def test_a_token_signed_with_the_secret_is_accepted(
        self, client: httpx.AsyncClient, connection: MadeConnection
    ) -> None:
        response = await post(client, connection, TRACK, token(connection.webhook_secret))
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"

    @pytest.mark.parametrize("case", ["expired", "wrong_key", "alg_none", "missing", "garbage"])
    async def test_bad_tokens_are_refused_and_nothing_is_stored(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        session: AsyncSession,
        case: str,
    ) -> None:
        bearer = {
            "expired": token(connection.webhook_secret, exp=int(time.time()) - 60),
            "wrong_key": token("not-the-secret-" + connection.webhook_secret),
            "alg_none": unsigned_token(),
            "missing": None,
            "garbage": "abc.def.ghi",
        }[case]
        response = await post(client, connection, TRACK, bearer)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert connection.webhook_secret not in response.text
        assert await stored_events(session) == 0


class TestBodies:
    async def secured(
        self, client: httpx.AsyncClient, connection: MadeConnection, body: Any
    ) -> str:
        response = await post(client, connection, body, token(connection.webhook_secret))
        assert response.status_code == 200, response.text
        return str(response.json()["event_id"])

    async def test_identify_track_document_checkout_and_sync_become_braze_objects(
        self, client: httpx.AsyncClient, connection: MadeConnection, session: AsyncSession
    ) -> None:
        identify = {"type": "identify", "userId": MEMBER, "traits": {"score": "1100", "x": 1}}
        document = {
            "_id": "ev-1",
            "customer": MEMBER,
            "action": "opt_in",
            "created_at": 1732634149,
            "data": {"channel": "web"},
        }
        checkout = {
            "customer": MEMBER,
            "action": "checkout",
            "data": {"transaction_id": "T-1", "total": 20},
        }
        sync = {"type": "sync", "userId": MEMBER, "attributes": {"last_store": "Budapest"}}

        assert await payloads(session, await self.secured(client, connection, identify)) == [
            ("attributes", {"loyalty_points": 1100})
        ]
        assert await payloads(session, await self.secured(client, connection, TRACK)) == [
            (
                "events",
                {
                    "name": "antavo_point_add",
                    "time": "2024-11-26T15:15:49Z",
                    "properties": {"points": 5000},
                    "app_id": "antavo-app",
                },
            )
        ]
        assert await payloads(session, await self.secured(client, connection, document)) == [
            (
                "events",
                {
                    "name": "antavo_opt_in",
                    "time": "2024-11-26T15:15:49Z",
                    "properties": {"channel": "web"},
                    "app_id": "antavo-app",
                },
            )
        ]
        checkout_id = await self.secured(client, connection, checkout)
        [(kind, purchase)] = await payloads(session, checkout_id)
        assert kind == "purchases"
        assert purchase["product_id"] == "checkout"
        assert (purchase["currency"], purchase["price"], purchase["app_id"]) == (
            "EUR",
            20.0,
            "antavo-app",
        )
        assert await payloads(session, await self.secured(client, connection, sync)) == [
            ("attributes", {"last_store": "Budapest"})
        ]

    async def test_a_resent_checkout_is_a_duplicate_not_a_second_purchase(
        self, client: httpx.AsyncClient, connection: MadeConnection
    ) -> None:
        checkout = {
            "customer": MEMBER,
            "action": "checkout",
            "data": {"transaction_id": "T-9", "total": 20},
        }
        first = await post(client, connection, checkout, token(connection.webhook_secret))
        again = await post(
            client, connection, {**checkout, "created_at": 1}, token(connection.webhook_secret)
        )
        assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}

    async def test_changed_only_does_not_resend_a_value_already_queued(
        self, client: httpx.AsyncClient, connection: MadeConnection, session: AsyncSession
    ) -> None:
        first = {
            "type": "identify",
            "userId": MEMBER,
            "messageId": "m1",
            "traits": {"score": 10, "tier": "Gold"},
        }
        second = {**first, "messageId": "m2", "traits": {"score": 20, "tier": "Gold"}}
        await self.secured(client, connection, first)
        second_id = await self.secured(client, connection, second)
        assert await payloads(session, second_id) == [("attributes", {"loyalty_points": 20})]

    async def test_an_unknown_shape_is_stored_as_rejected(
        self, client: httpx.AsyncClient, connection: MadeConnection, session: AsyncSession
    ) -> None:
        event_id = await self.secured(client, connection, {"hello": "world"})
        event = await session.get(Event, event_id)
        assert event is not None
        assert event.status == "rejected"
        assert event.reason is not None
        assert event.reason.startswith("unknown body shape")


class TestAttributeValuesBrazeWouldLose:
    """What reaches Braze's /users/track, and the note that says what was left out and why."""

    async def delivered(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
        body: Any,
    ) -> list[dict[str, Any]]:
        response = await post(client, connection, body, token(connection.webhook_secret))
        assert response.status_code == 200, response.text
        http, sandbox = sandbox_client()
        async with http:
            await drain(make_worker(sessionmaker, http))
        return [r["body"] for r in sandbox.received if r["endpoint"] == "/users/track"]

    async def notes(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        headers: dict[str, str],
        body: Any,
    ) -> list[str]:
        response = await client.post(
            f"/v1/connections/{connection.id}/preview", content=json.dumps(body), headers=headers
        )
        assert response.status_code == 200, response.text
        notes: list[str] = response.json()["notes"]
        return notes

    async def test_an_object_with_a_space_in_a_key_is_not_sent_and_the_note_says_why(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
        operator_headers: dict[str, str],
    ) -> None:
        """braze-inc/braze-docs
        `_docs/_user_guide/data/custom_data/custom_attributes/nested_custom_attribute_support.md`:
        "Key names cannot contain spaces"; Braze answers 201 and drops the nested updates.
        """
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {
                "prefs": {"lang": "en", "fav colour": "red"},
                "rewards": [{"id": "r1", "meta": {"given by": "shop"}}],
                "last_store": "Budapest",
            },
            "types": {"prefs": "object", "rewards": "object_array"},
        }
        [sent] = await self.delivered(client, connection, sessionmaker, body)
        assert sent["attributes"] == [{"external_id": MEMBER, "last_store": "Budapest"}]
        assert await self.notes(client, connection, operator_headers, body) == [
            "prefs not sent: 'fav colour': Braze does not accept spaces in object keys "
            "(type object)",
            "rewards not sent: 0.meta.'given by': Braze does not accept spaces in object keys "
            "(type object_array)",
        ]

    async def test_a_key_with_a_space_cannot_cost_another_members_nested_update(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md` ("How does
        /users/track handle invalid nested custom attributes?"): one invalid nested value drops
        every nested update of the request. Both members travel in one request; the sandbox
        drops like Braze, so only the mapping's refusal keeps the second member's object."""
        bodies = [
            {
                "type": "sync",
                "userId": member,
                "attributes": {"prefs": prefs, "tier": "gold"},
                "types": {"prefs": "object"},
            }
            for member, prefs in (("m-space", {"fav colour": "red"}), ("m-ok", {"lang": "en"}))
        ]
        for body in bodies:
            response = await post(client, connection, body, token(connection.webhook_secret))
            assert response.json()["status"] == "accepted", response.text
        http, sandbox = sandbox_client()
        async with http:
            await drain(make_worker(sessionmaker, http))
            kept = (await http.get("/_sandbox/users/m-ok")).json()["custom_attributes"]

        [sent] = [r for r in sandbox.received if r["endpoint"] == "/users/track"]
        assert sent["body"]["attributes"] == [
            {"external_id": "m-space", "tier": "gold"},
            {"external_id": "m-ok", "prefs": {"lang": "en"}, "tier": "gold"},
        ]
        assert "sandbox_note" not in sent
        assert kept == {"prefs": {"lang": "en"}, "tier": "gold"}

    async def test_what_the_mapping_left_out_stays_on_the_event_after_delivery(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
        operator_headers: dict[str, str],
    ) -> None:
        """braze-inc/braze-docs
        `_docs/_user_guide/data/activation/custom_data/custom_attributes/nested_custom_attribute_support.md`
        ("Key names cannot contain spaces") and `_docs/_api/objects_filters/user_attributes_object.md`
        (strings up to 255 characters): the event is delivered without what Braze would lose,
        and its detail says what was left out or cut, and why."""
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {"prefs": {"fav colour": "red"}, "about": "t" * 300, "city": "Pécs"},
            "types": {"prefs": "object"},
        }
        response = await post(client, connection, body, token(connection.webhook_secret))
        event_id = response.json()["event_id"]
        queued = await client.get(f"/v1/events/{event_id}", headers=operator_headers)
        http, _ = sandbox_client()
        async with http:
            await drain(make_worker(sessionmaker, http))
        delivered = await client.get(f"/v1/events/{event_id}", headers=operator_headers)

        notes = [
            "prefs not sent: 'fav colour': Braze does not accept spaces in object keys "
            "(type object)",
            "about: cut from 300 to 255 characters",
        ]
        assert (queued.json()["status"], queued.json()["notes"]) == ("queued", notes)
        assert (delivered.json()["status"], delivered.json()["notes"]) == ("delivered", notes)
        [sent] = [obj["sent_object"] for obj in delivered.json()["objects"]]
        assert sent == {"external_id": MEMBER, "about": "t" * 255, "city": "Pécs"}

    async def test_country_and_zone_names_and_a_never_expiring_date_are_sent_as_received(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`: country
        names are mapped by Braze on a best effort, "Eastern Time (US & Canada)" is a time zone,
        and years above 3000 are stored as strings.
        """
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {
                "country": "Australia",
                "time_zone": "Eastern Time (US & Canada)",
                "points_expire": "9999-12-31",
            },
        }
        [sent] = await self.delivered(client, connection, sessionmaker, body)
        assert sent["attributes"] == [
            {
                "external_id": MEMBER,
                "country": "Australia",
                "time_zone": "Eastern Time (US & Canada)",
                "points_expire": "9999-12-31",
            }
        ]

    async def test_a_share_link_over_255_characters_is_skipped_not_cut(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
        operator_headers: dict[str, str],
    ) -> None:
        """Braze string values are at most 255 characters (braze-inc/braze-docs
        `_docs/_api/objects_filters/user_attributes_object.md`); a cut link would be broken.
        """
        link = "https://refer.example.com/s/280e674c?" + "utm_source=antavo&" * 15
        long_text = "t" * 300
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {"share_link": link, "about": long_text},
        }
        [sent] = await self.delivered(client, connection, sessionmaker, body)
        assert sent["attributes"] == [{"external_id": MEMBER, "about": "t" * 255}]
        assert await self.notes(client, connection, operator_headers, body) == [
            f"share_link not sent: a link of {len(link)} characters; Braze takes at most 255 "
            "and a cut link would be broken (type string)",
            "about: cut from 300 to 255 characters",
        ]

    async def test_a_checkout_in_a_currency_braze_does_not_log_sends_no_purchase(
        self,
        client: httpx.AsyncClient,
        connection: MadeConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
        session: AsyncSession,
    ) -> None:
        """braze-inc/braze-docs `_docs/_developer_guide/analytics/logging_purchases.md`: a
        purchase in a currency outside Braze's list is not logged (the list has VEF, not VES).
        """
        body = {
            "customer": MEMBER,
            "action": "checkout",
            "data": {"transaction_id": "T-VES", "total": 120, "currency": "VES"},
        }
        response = await post(client, connection, body, token(connection.webhook_secret))
        assert response.json()["status"] == "accepted"
        event = await session.get(Event, response.json()["event_id"])
        assert event is not None
        assert (event.status, event.reason) == (
            "rejected",
            "checkout currency 'VES' is not supported by Braze: it does not log purchases in "
            "that currency",
        )
        assert await payloads(session, event.id) == []
        http, sandbox = sandbox_client()
        async with http:
            await drain(make_worker(sessionmaker, http))
        assert list(sandbox.received) == []

    async def test_merge_objects_reaches_braze_with_the_nested_object(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """braze-inc/braze-docs
        `_docs/_user_guide/data/custom_data/custom_attributes/nested_custom_attribute_support.md`:
        "You must set `_merge_objects` to `true`, or your objects will be overwritten."
        """
        merging = await make_connection(
            session,
            await make_tenant(session),
            source=Source.ANTAVO,
            auth_mode=WebhookAuthMode.JWT_HS256,
            settings={"merge_objects": True},
        )
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {"prefs": {"lang": "en"}},
            "types": {"prefs": "object"},
        }
        [sent] = await self.delivered(client, merging, sessionmaker, body)
        assert sent["attributes"] == [
            {"external_id": MEMBER, "prefs": {"lang": "en"}, "_merge_objects": True}
        ]


COUPON_MAPPINGS: list[dict[str, Any]] = [
    {
        "loyalty_field": "coupons_issued",
        "braze_attribute": "coupons",
        "type": "object_array",
        "array_operation": "add",
    },
    {
        "loyalty_field": "coupons_expired",
        "braze_attribute": "coupons",
        "type": "object_array",
        "array_operation": "remove",
        "identifier_key": "code",
    },
    {
        "loyalty_field": "coupons_redeemed",
        "braze_attribute": "coupons",
        "type": "object_array",
        "array_operation": "update",
        "identifier_key": "code",
    },
    {"loyalty_field": "prefs", "braze_attribute": "prefs", "type": "object"},
]


class TestArrayOfObjectsOperations:
    """braze-inc/braze-docs
    `_docs/_user_guide/data/activation/custom_data/custom_attributes/array_of_objects.md`:
    `$add`, `$remove` and `$update` by `$identifier_key` / `$identifier_value`; `$update` needs
    `_merge_objects: true` or the matched objects are overwritten."""

    async def test_a_partial_change_of_an_array_keeps_the_objects_it_leaves_out(
        self,
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
            settings={"field_mappings": COUPON_MAPPINGS},
        )
        body = {
            "type": "identify",
            "userId": MEMBER,
            "traits": {
                "coupons_issued": [{"code": "C3", "value": 15, "state": "issued"}],
                "coupons_expired": ["C1"],
                "coupons_redeemed": [{"code": "C2", "state": "redeemed"}, {"state": "lost"}],
                "prefs": {"lang": "en"},
            },
        }
        held = [
            {"code": "C1", "value": 5, "state": "issued"},
            {"code": "C2", "value": 10, "state": "issued"},
        ]
        http, sandbox = sandbox_client()
        async with http:
            seeded = await http.post(
                "/users/track",
                json={"attributes": [{"external_id": MEMBER, "coupons": held}]},
                headers={"Authorization": "Bearer seed"},
            )
            assert seeded.status_code == 201
            response = await post(client, connection, body, token(connection.webhook_secret))
            assert response.json()["status"] == "accepted", response.text
            await drain(make_worker(sessionmaker, http))
            profile = (await http.get(f"/_sandbox/users/{MEMBER}")).json()

        sent = [r["body"] for r in sandbox.received if r["endpoint"] == "/users/track"][1:]
        # The plain object is overwritten as always; the array's operations travel with
        # _merge_objects (their $update needs it) in an object of their own, so the flag does
        # not turn that overwrite into a merge.
        assert sent == [
            {"attributes": [{"external_id": MEMBER, "prefs": {"lang": "en"}}]},
            {
                "attributes": [
                    {
                        "external_id": MEMBER,
                        "coupons": {
                            "$add": [{"code": "C3", "value": 15, "state": "issued"}],
                            "$remove": [{"$identifier_key": "code", "$identifier_value": "C1"}],
                            "$update": [
                                {
                                    "$identifier_key": "code",
                                    "$identifier_value": "C2",
                                    "$new_object": {"state": "redeemed"},
                                }
                            ],
                        },
                        "_merge_objects": True,
                    }
                ]
            },
        ]
        assert profile["custom_attributes"]["coupons"] == [
            {"code": "C2", "value": 10, "state": "redeemed"},
            {"code": "C3", "value": 15, "state": "issued"},
        ]
        detail = await client.get(
            f"/v1/events/{response.json()['event_id']}", headers=operator_headers
        )
        assert detail.json()["status"] == "delivered"
        assert detail.json()["notes"] == [
            "coupons (from coupons_redeemed): item 1 left out: no text or number 'code'"
        ]

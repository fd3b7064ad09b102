"""/v1/connections: create, read, list, patch, delete, rotate, pause/resume, audit, secrets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime
from braze_bridge.db.models import Connection
from braze_bridge.domain.statuses import ConnectionState
from braze_bridge.security.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY, AppStarter
from tests.factories import make_connection
from tests.integration.admin_support import (
    API_KEY,
    BRAZE,
    TenantWithToken,
    antavo_body,
    audit_rows,
    error_of,
    extole_body,
    fields_of,
    load_connection,
)

pytestmark = pytest.mark.rollback

BOX = SecretBox(TEST_SECRET_KEY)
NEW_KEY = "9f8e7d6c-5b4a-3210-fedc-ba9876543210"


_MAPPING = "settings.field_mappings.0."
_ARRAY_MAPPING = {
    "loyalty_field": "coupons",
    "braze_attribute": "coupons",
    "type": "object_array",
    "array_operation": "add",
}


def _mapping(**fields: Any) -> dict[str, Any]:
    """Antavo settings with one array-of-objects field mapping."""
    return {"field_mappings": [{**_ARRAY_MAPPING, **fields}]}


async def connection_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Connection)) or 0)


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def created_extole(client: httpx.AsyncClient, tenant_a: TenantWithToken) -> dict[str, Any]:
    """Tenant A's Extole connection as its creation answered (the one time secrets are shown)."""
    return await create(client, tenant_a.headers, extole_body())


class TestCreate:
    async def test_extole_connection_with_defaults_and_shown_once_secrets(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        body = await create(client, tenant_a.headers, extole_body())

        assert body["tenant_id"] == str(tenant_a.id)
        assert (body["name"], body["source"], body["state"], body["version"]) == (
            "Acme referral → Braze prod",
            "extole",
            "active",
            1,
        )
        assert body["braze"] == {"rest_endpoint": BRAZE, "api_key_last4": "6789", "app_id": None}
        assert body["webhook_auth"] == {
            "mode": "hmac_sha256",
            "username": None,
            "previous_secret_expires_at": None,
        }
        assert body["settings"] == {
            "events": {
                "share_link_created": True,
                "shared": True,
                "outcomes": ["*"],
                "subscribed": True,
                "unsubscribed": True,
            },
            "reward_states": ["FULFILLED", "EARNED"],
            "untyped_reward_state": "FULFILLED",
            "external_id_source": "partner_user_id",
            "identity": "email",
            "subscription_group_id": None,
            "global_email_unsubscribe": False,
            "event_names": {},
            "privacy": {"delete_in_braze": False},
        }
        assert body["webhook_url"] == f"http://127.0.0.1:8000/v1/hooks/{body['id']}"
        assert body["webhook_secret"].startswith("whsec_")
        assert body["content_token"].startswith("bbc_")
        assert "api_key" not in body["braze"]
        row = await load_connection(sessionmaker, body["id"])
        assert BOX.decrypt(row.webhook_secret_enc) == body["webhook_secret"]
        assert BOX.decrypt(row.content_token_enc or "") == body["content_token"]
        assert [
            (a.action, a.actor_token_id is not None)
            for a in await audit_rows(sessionmaker, body["id"])
        ] == [("create", True)]

    async def test_antavo_defaults_to_jwt_and_keeps_app_id(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        body = await create(
            client,
            tenant_a.headers,
            antavo_body(
                braze={
                    "rest_endpoint": "https://rest.fra-02.braze.eu",
                    "api_key": API_KEY,
                    "app_id": "app-123",
                }
            ),
        )

        assert body["webhook_auth"]["mode"] == "jwt_hs256"
        assert body["braze"]["app_id"] == "app-123"
        settings = body["settings"]
        assert settings["field_mappings"] == [
            {
                "loyalty_field": "score",
                "braze_attribute": "loyalty_points",
                "type": "integer",
                "array_operation": "replace",
                "identifier_key": None,
            }
        ]
        assert (settings["sync_mode"], settings["event_name_prefix"], settings["events"]) == (
            "all_mapped",
            "",
            ["*"],
        )
        assert settings["checkout_as_purchase"] is False

    async def test_basic_auth_extole_has_no_default_username_antavo_has_its_source(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        """Extole's HTTP_Basic key sends the key alone (extole/product-docs
        `technical/platform-integrations/webhooks/index.mdx`), so no username is stored."""
        antavo = await create(client, tenant_a.headers, antavo_body(webhook_auth={"mode": "basic"}))
        default = await create(
            client, tenant_a.headers, extole_body(webhook_auth={"mode": "basic"})
        )
        named = await create(
            client,
            tenant_a.headers,
            extole_body(webhook_auth={"mode": "basic", "username": "acme-hooks"}),
        )
        assert default["webhook_auth"]["username"] is None
        assert named["webhook_auth"]["username"] == "acme-hooks"
        assert antavo["webhook_auth"]["username"] == "antavo"

    async def test_username_without_basic_mode_is_422(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        response = await client.post(
            "/v1/connections",
            json=extole_body(webhook_auth={"mode": "bearer", "username": "x"}),
            headers=tenant_a.headers,
        )
        assert (response.status_code, fields_of(response)) == (422, ["webhook_auth.username"])

    async def test_operator_must_name_the_tenant(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        missing = await client.post("/v1/connections", json=extole_body(), headers=operator_headers)
        unknown = await client.post(
            "/v1/connections", json=extole_body(uuid.uuid4()), headers=operator_headers
        )
        given = await client.post(
            "/v1/connections", json=extole_body(tenant_a.id), headers=operator_headers
        )

        assert (missing.status_code, fields_of(missing)) == (422, ["tenant_id"])
        assert (unknown.status_code, fields_of(unknown)) == (404, ["tenant_id"])
        assert (given.status_code, given.json()["tenant_id"]) == (201, str(tenant_a.id))
        assert await connection_count(sessionmaker) == 1

    async def test_tenant_token_naming_another_tenant_is_404_and_stores_nothing(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        tenant_b: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            "/v1/connections", json=extole_body(tenant_b.id), headers=tenant_a.headers
        )
        own = await client.post(
            "/v1/connections", json=extole_body(tenant_a.id), headers=tenant_a.headers
        )

        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
        assert own.status_code == 201
        assert await connection_count(sessionmaker) == 1

    @pytest.mark.parametrize(
        "endpoint",
        [
            "http://rest.iad-01.braze.com",
            "https://evil.example.com",
            "https://rest.iad-01.braze.com.evil.example.com",
            "https://rest.iad-01.braze.com/users/track",
            "https://rest.iad-01.braze.com:8443",
            "https://user:pw@rest.iad-01.braze.com",
            "https://169.254.169.254",
            "https://localhost",
            "rest.iad-01.braze.com",
            "https://rest.iad-01.braze.com?x=1",
        ],
    )
    async def test_non_braze_endpoints_are_422_and_store_nothing(
        self,
        endpoint: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            "/v1/connections",
            json=extole_body(braze={"rest_endpoint": endpoint, "api_key": API_KEY}),
            headers=tenant_a.headers,
        )

        assert response.status_code == 422
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == ["braze.rest_endpoint"]
        assert error["details"][0]["type"] == "braze_endpoint"
        assert await connection_count(sessionmaker) == 0

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("https://rest.iad-05.braze.com/", "https://rest.iad-05.braze.com"),
            ("https://REST.US-10.braze.com", "https://rest.us-10.braze.com"),
            (" https://rest.fra-02.braze.eu ", "https://rest.fra-02.braze.eu"),
            ("https://rest.au-01.braze.com:443", "https://rest.au-01.braze.com"),
            ("https://rest.jp-01.braze.com", "https://rest.jp-01.braze.com"),
        ],
    )
    async def test_braze_endpoints_are_normalised(
        self, given: str, stored: str, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        body = await create(
            client,
            tenant_a.headers,
            extole_body(braze={"rest_endpoint": given, "api_key": API_KEY}),
        )
        assert body["braze"]["rest_endpoint"] == stored

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"surprise": 1}, "surprise"),
            (
                {"braze": {"rest_endpoint": BRAZE, "api_key": API_KEY, "region": "us"}},
                "braze.region",
            ),
            ({"webhook_auth": {"mode": "hmac_sha256", "algo": "md5"}}, "webhook_auth.algo"),
            ({"webhook_auth": {"mode": "oauth"}}, "webhook_auth.mode"),
            ({"source": "shopify"}, "source"),
            ({"name": "  "}, "name"),
            ({"braze": {"rest_endpoint": BRAZE, "api_key": '"' + API_KEY + '"'}}, "braze.api_key"),
            ({"braze": {"rest_endpoint": BRAZE, "api_key": "short"}}, "braze.api_key"),
            ({"braze": {"rest_endpoint": BRAZE}}, "braze.api_key"),
            ({"settings": {"colour": "blue"}}, "settings.colour"),
            ({"settings": {"reward_states": ["FULFILLED", "BOGUS"]}}, "settings.reward_states.1"),
            ({"settings": {"events": {"shared": "maybe"}}}, "settings.events.shared"),
            ({"settings": {"unknown_user": "create"}}, "settings.unknown_user"),
            ({"settings": {"identity": "guess"}}, "settings.identity"),
            ({"limits": {"track_rate_limit": 0}}, "limits.track_rate_limit"),
        ],
    )
    async def test_bad_extole_input_is_422_naming_the_field(
        self,
        overrides: dict[str, Any],
        field: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            "/v1/connections", json=extole_body(**overrides), headers=tenant_a.headers
        )

        assert response.status_code == 422, response.text
        assert fields_of(response) == [field]
        assert field in error_of(response)["message"]
        assert API_KEY not in response.text
        assert await connection_count(sessionmaker) == 0

    @pytest.mark.parametrize(
        ("bad_settings", "field"),
        [
            (
                {
                    "field_mappings": [
                        {"loyalty_field": "score", "braze_attribute": "p", "type": "money"}
                    ]
                },
                "settings.field_mappings.0.type",
            ),
            (
                {"field_mappings": [{"loyalty_field": "score", "braze_attribute": "$bad"}]},
                "settings.field_mappings.0.braze_attribute",
            ),
            ({"sync_mode": "sometimes"}, "settings.sync_mode"),
            ({"reward_states": ["FULFILLED"]}, "settings.reward_states"),
            (_mapping(array_operation="upsert"), "settings.field_mappings.0.array_operation"),
            (_mapping(type="array", array_operation="add"), _MAPPING + "array_operation"),
            (_mapping(array_operation="update"), _MAPPING + "identifier_key"),
            (
                _mapping(array_operation="remove", identifier_key="coupon id"),
                _MAPPING + "identifier_key",
            ),
            (_mapping(array_operation="remove", identifier_key="a.b"), _MAPPING + "identifier_key"),
            (_mapping(identifier_key="code"), _MAPPING + "identifier_key"),
            (
                {"field_mappings": [_ARRAY_MAPPING, {**_ARRAY_MAPPING, "loyalty_field": "other"}]},
                "settings.field_mappings",
            ),
        ],
    )
    async def test_bad_antavo_settings_are_422_naming_the_field(
        self,
        bad_settings: dict[str, Any],
        field: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """Array operations: braze-inc/braze-docs `_docs/_user_guide/data/activation/custom_data/
        custom_attributes/array_of_objects.md` (on arrays of objects, by identifier key);
        nested key rules in `nested_custom_attribute_support.md` (no spaces, '.' or '$')."""
        before = await connection_count(sessionmaker)
        response = await client.post(
            "/v1/connections", json=antavo_body(settings=bad_settings), headers=tenant_a.headers
        )
        assert (response.status_code, fields_of(response)) == (422, [field])
        assert await connection_count(sessionmaker) == before

    async def test_every_service_level_problem_is_reported_at_once(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        response = await client.post(
            "/v1/connections",
            json=extole_body(
                braze={"rest_endpoint": "https://evil.example.com", "api_key": API_KEY},
                settings={"reward_states": ["NOPE"], "colour": 1},
            ),
            headers=tenant_a.headers,
        )
        assert response.status_code == 422
        assert sorted(fields_of(response)) == [
            "braze.rest_endpoint",
            "settings.colour",
            "settings.reward_states.0",
        ]

    async def test_malformed_json_and_missing_body_use_the_error_shape(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        broken = await client.post(
            "/v1/connections",
            content=b'{"name": ',
            headers={**tenant_a.headers, "Content-Type": "application/json"},
        )
        empty = await client.post("/v1/connections", headers=tenant_a.headers)
        assert (broken.status_code, empty.status_code) == (422, 422)
        assert error_of(broken)["code"] == error_of(empty)["code"] == "validation_error"

    async def test_the_track_object_cap_is_stored_and_the_former_flag_still_read(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        fifty = await create(
            client, tenant_a.headers, extole_body(limits={"track_object_cap": "combined_50"})
        )
        legacy = await create(
            client, tenant_a.headers, extole_body(limits={"legacy_track_limits": True})
        )
        assert fifty["limits"]["track_object_cap"] == "combined_50"
        assert legacy["limits"]["track_object_cap"] == "per_array_75"
        assert "legacy_track_limits" not in legacy["limits"]
        row = await load_connection(sessionmaker, legacy["id"])
        assert row.track_object_cap == "per_array_75"

    async def test_limits_are_stored_and_shown(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        body = await create(
            client,
            tenant_a.headers,
            extole_body(limits={"track_rate_limit": 500, "track_rate_window_seconds": 60}),
        )
        assert body["limits"] == {
            "track_rate_limit": 500,
            "track_rate_window_seconds": 60,
            "export_rate_limit": None,
            "export_rate_window_seconds": None,
            "export_rate_preset": None,
            "track_object_cap": "combined_75",
            "max_batch_wait_ms": 500,
        }
        row = await load_connection(sessionmaker, body["id"])
        assert (row.track_rate_limit, row.track_rate_window_seconds) == (500, 60)

    async def test_the_batch_budget_is_stored_changed_and_checked(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        at_once = await create(
            client, tenant_a.headers, extole_body(limits={"max_batch_wait_ms": 0})
        )
        assert at_once["limits"]["max_batch_wait_ms"] == 0
        changed = await client.patch(
            f"/v1/connections/{at_once['id']}",
            json={"limits": {"max_batch_wait_ms": 2000}},
            headers=tenant_a.headers,
        )
        assert changed.status_code == 200
        assert changed.json()["limits"]["max_batch_wait_ms"] == 2000
        assert (await load_connection(sessionmaker, at_once["id"])).max_batch_wait_ms == 2000
        for bad in (-1, 60_001, "soon", None):
            refused = await client.post(
                "/v1/connections",
                json=extole_body(limits={"max_batch_wait_ms": bad}),
                headers=tenant_a.headers,
            )
            assert (refused.status_code, fields_of(refused)) == (
                422,
                ["limits.max_batch_wait_ms"],
            ), bad
        kept = await load_connection(sessionmaker, at_once["id"])
        assert (kept.max_batch_wait_ms, kept.version) == (2000, 2)

    @pytest.mark.parametrize(
        ("preset", "budget"),
        [
            ("onboarded_before_2024_08_22", (2500, 60)),
            ("onboarded_from_2024_08_22", (250, 60)),
            ("raised_40_per_second", (40, 1)),
        ],
    )
    async def test_an_export_rate_preset_is_stored_as_its_budget_and_shown_by_name(
        self,
        preset: str,
        budget: tuple[int, int],
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """braze-inc/braze-docs `_includes/rate_limits.md` ("users export ids"): 250 requests a
        minute for workspaces onboarded on or after 2024-08-22, 2,500 before; 40 a second once
        Braze raised it."""
        created = await create(
            client, tenant_a.headers, extole_body(limits={"export_rate_preset": preset})
        )
        read = await client.get(f"/v1/connections/{created['id']}", headers=tenant_a.headers)

        for shown in (created["limits"], read.json()["limits"]):
            assert shown["export_rate_preset"] == preset
            assert (shown["export_rate_limit"], shown["export_rate_window_seconds"]) == budget
        row = await load_connection(sessionmaker, created["id"])
        assert (row.export_rate_limit, row.export_rate_window_seconds) == budget

    @pytest.mark.parametrize(
        "limits",
        [
            {"export_rate_preset": "onboarded_2023"},
            {"export_rate_preset": 2500},
            {"export_rate_preset": "onboarded_before_2024_08_22", "export_rate_limit": 100},
            {"export_rate_window_seconds": 30, "export_rate_preset": "raised_40_per_second"},
        ],
    )
    async def test_a_bad_export_rate_preset_is_422_naming_it_and_stores_nothing(
        self,
        limits: dict[str, Any],
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        before = await connection_count(sessionmaker)
        response = await client.post(
            "/v1/connections", json=extole_body(limits=limits), headers=tenant_a.headers
        )

        assert (response.status_code, fields_of(response)) == (
            422,
            ["limits.export_rate_preset"],
        )
        assert await connection_count(sessionmaker) == before

    async def test_patching_an_export_rate_preset_replaces_and_null_restores_the_default(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await create(
            client, tenant_a.headers, extole_body(limits={"export_rate_limit": 900})
        )
        url = f"/v1/connections/{created['id']}"
        older = await client.patch(
            url,
            json={"limits": {"export_rate_preset": "onboarded_before_2024_08_22"}},
            headers=tenant_a.headers,
        )
        cleared = await client.patch(
            url, json={"limits": {"export_rate_preset": None}}, headers=tenant_a.headers
        )
        refused = await client.patch(
            url,
            json={"limits": {"export_rate_preset": "raised_40_per_second", "export_rate_limit": 5}},
            headers=tenant_a.headers,
        )

        assert created["limits"]["export_rate_preset"] is None  # a custom budget
        assert older.json()["limits"]["export_rate_preset"] == "onboarded_before_2024_08_22"
        assert older.json()["limits"]["export_rate_limit"] == 2500
        assert older.json()["version"] == 2
        limits = cleared.json()["limits"]
        assert (limits["export_rate_limit"], limits["export_rate_window_seconds"]) == (None, None)
        assert limits["export_rate_preset"] is None
        assert (refused.status_code, fields_of(refused)) == (422, ["limits.export_rate_preset"])
        after = await client.get(url, headers=tenant_a.headers)
        assert after.json()["version"] == 3


class TestAnyUrlSwitch:
    @pytest.fixture
    async def any_url_client(
        self, runtime: Runtime, start_app: AppStarter
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = runtime.settings.model_copy(update={"allow_any_braze_url": True})
        tiered = Runtime(settings, runtime.database_url, runtime.secret_key, False)
        async with start_app(tiered) as application:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                yield c

    async def test_sandbox_url_is_accepted_only_with_the_switch(
        self,
        client: httpx.AsyncClient,
        any_url_client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
    ) -> None:
        body = extole_body(braze={"rest_endpoint": "http://127.0.0.1:9000/", "api_key": API_KEY})
        refused = await client.post("/v1/connections", json=body, headers=tenant_a.headers)
        allowed = await any_url_client.post("/v1/connections", json=body, headers=tenant_a.headers)

        assert refused.status_code == 422
        assert allowed.status_code == 201
        assert allowed.json()["braze"]["rest_endpoint"] == "http://127.0.0.1:9000"


class TestRead:
    async def test_reads_never_carry_secrets(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        created_extole: dict[str, Any],
    ) -> None:
        one = await client.get(f"/v1/connections/{created_extole['id']}", headers=tenant_a.headers)
        many = await client.get("/v1/connections", headers=tenant_a.headers)

        expected = {
            k: v for k, v in created_extole.items() if k not in ("webhook_secret", "content_token")
        }
        assert one.json() == expected
        assert many.json() == {"items": [expected], "next_cursor": None}
        for text in (one.text, many.text):
            for secret in (
                API_KEY,
                created_extole["webhook_secret"],
                created_extole["content_token"],
            ):
                assert secret not in text

    async def test_list_is_scoped_filtered_and_paginated(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        tenant_a: TenantWithToken,
        tenant_b: TenantWithToken,
    ) -> None:
        a1 = await create(client, tenant_a.headers, extole_body())
        a2 = await create(client, tenant_a.headers, antavo_body())
        b1 = await create(client, tenant_b.headers, extole_body())

        async def ids(headers: dict[str, str], query: str = "") -> list[str]:
            response = await client.get(f"/v1/connections{query}", headers=headers)
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["items"]]

        assert await ids(tenant_a.headers) == [a1["id"], a2["id"]]
        assert await ids(tenant_b.headers) == [b1["id"]]
        assert await ids(operator_headers) == [a1["id"], a2["id"], b1["id"]]
        assert await ids(operator_headers, f"?tenant_id={tenant_b.id}") == [b1["id"]]
        assert await ids(operator_headers, "?source=antavo") == [a2["id"]]
        assert await ids(tenant_b.headers, f"?tenant_id={tenant_a.id}") == []

        first = (await client.get("/v1/connections?limit=2", headers=operator_headers)).json()
        assert [i["id"] for i in first["items"]] == [a1["id"], a2["id"]]
        rest = (
            await client.get(
                f"/v1/connections?limit=2&cursor={first['next_cursor']}", headers=operator_headers
            )
        ).json()
        assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([b1["id"]], None)

    @pytest.mark.parametrize(
        ("query", "field"),
        [("?cursor=%%%", "cursor"), ("?limit=0", "query.limit"), ("?state=broken", "query.state")],
    )
    async def test_bad_list_parameters_are_422(
        self, query: str, field: str, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        response = await client.get(f"/v1/connections{query}", headers=tenant_a.headers)
        assert (response.status_code, fields_of(response)) == (422, [field])

    async def test_unknown_and_malformed_ids_are_404(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        for path in (f"/v1/connections/{uuid.uuid4()}", "/v1/connections/12"):
            response = await client.get(path, headers=tenant_a.headers)
            assert (response.status_code, error_of(response)["code"]) == (404, "not_found")

    async def test_wrong_method_is_405_in_the_error_shape(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        response = await client.put("/v1/connections", headers=tenant_a.headers)
        assert (response.status_code, error_of(response)["code"]) == (405, "method_not_allowed")


class TestSecretsAtRest:
    async def test_encrypted_columns_differ_from_plaintext_and_decrypt_back(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        row = await load_connection(sessionmaker, created_extole["id"])

        pairs = [
            (row.braze_api_key_enc, API_KEY),
            (row.webhook_secret_enc, created_extole["webhook_secret"]),
            (row.content_token_enc or "", created_extole["content_token"]),
        ]
        for ciphertext, plaintext in pairs:
            assert plaintext not in ciphertext
            assert ciphertext != plaintext
            assert BOX.decrypt(ciphertext) == plaintext
        assert row.braze_api_key_last4 == API_KEY[-4:]
        with pytest.raises(Exception, match="cannot decrypt"):
            SecretBox("another-key").decrypt(row.braze_api_key_enc)


class TestPatch:
    async def test_only_the_api_key_changes_and_is_audited_without_values(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.patch(
            f"/v1/connections/{created_extole['id']}",
            json={"braze": {"api_key": NEW_KEY}},
            headers=tenant_a.headers,
        )

        assert response.status_code == 200
        body = response.json()
        assert body["braze"] == {"rest_endpoint": BRAZE, "api_key_last4": "3210", "app_id": None}
        assert body["version"] == 2
        assert body["settings"] == created_extole["settings"]
        assert body["name"] == created_extole["name"]
        assert NEW_KEY not in response.text
        row = await load_connection(sessionmaker, created_extole["id"])
        assert BOX.decrypt(row.braze_api_key_enc) == NEW_KEY
        assert BOX.decrypt(row.webhook_secret_enc) == created_extole["webhook_secret"]
        audits = await audit_rows(sessionmaker, created_extole["id"])
        assert [(a.action, a.fields) for a in audits] == [
            ("create", []),
            ("update", ["braze.api_key"]),
        ]
        audit = await client.get(
            f"/v1/connections/{created_extole['id']}/audit", headers=tenant_a.headers
        )
        assert [e["fields"] for e in audit.json()["items"]] == [["braze.api_key"], []]
        assert NEW_KEY not in audit.text
        assert API_KEY not in audit.text

    async def test_settings_merge_then_validate_whole(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        created = await create(
            client,
            tenant_a.headers,
            extole_body(
                settings={"reward_states": ["EARNED"], "event_names": {"shared": "x_shared"}}
            ),
        )
        response = await client.patch(
            f"/v1/connections/{created['id']}",
            json={"settings": {"events": {"shared": False}, "event_names": {"shared": None}}},
            headers=tenant_a.headers,
        )

        settings = response.json()["settings"]
        assert settings["events"]["shared"] is False
        assert settings["events"]["share_link_created"] is True
        assert settings["reward_states"] == ["EARNED"]
        assert settings["event_names"] == {}
        audits = await audit_rows(sessionmaker, created["id"])
        assert audits[-1].fields == ["settings.event_names.shared", "settings.events.shared"]

    async def test_invalid_settings_patch_is_422_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.patch(
            f"/v1/connections/{created_extole['id']}",
            json={"name": "renamed", "settings": {"reward_states": ["FULFILLED", "LOST"]}},
            headers=tenant_a.headers,
        )

        assert (response.status_code, fields_of(response)) == (422, ["settings.reward_states.1"])
        after = (
            await client.get(f"/v1/connections/{created_extole['id']}", headers=tenant_a.headers)
        ).json()
        assert (after["name"], after["version"], after["settings"]) == (
            created_extole["name"],
            1,
            created_extole["settings"],
        )
        assert len(await audit_rows(sessionmaker, created_extole["id"])) == 1

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"name": None}, "name"),
            ({"source": "antavo"}, "source"),
            ({"tenant_id": str(uuid.uuid4())}, "tenant_id"),
            ({"braze": {"api_key": None}}, "braze.api_key"),
            ({"braze": {"rest_endpoint": "https://evil.example.com"}}, "braze.rest_endpoint"),
            ({"braze": {"secret": "x"}}, "braze.secret"),
            ({"webhook_auth": {"mode": None}}, "webhook_auth.mode"),
            ({"webhook_auth": {"username": "u"}}, "webhook_auth.username"),
            ({"settings": {"events": {"sharred": True}}}, "settings.events.sharred"),
            ({"limits": {"track_object_cap": None}}, "limits.track_object_cap"),
            ({"limits": {"track_object_cap": "combined_60"}}, "limits.track_object_cap"),
            ({"limits": {"max_batch_wait_ms": None}}, "limits.max_batch_wait_ms"),
            ({"limits": {"max_batch_wait_ms": 60_001}}, "limits.max_batch_wait_ms"),
        ],
    )
    async def test_bad_patch_is_422_naming_the_field(
        self,
        patch: dict[str, Any],
        field: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.patch(
            f"/v1/connections/{created_extole['id']}", json=patch, headers=tenant_a.headers
        )

        assert (response.status_code, fields_of(response)) == (422, [field])
        row = await load_connection(sessionmaker, created_extole["id"])
        assert (row.version, row.name, row.braze_rest_endpoint) == (
            1,
            created_extole["name"],
            BRAZE,
        )

    async def test_noop_patch_changes_nothing(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.patch(
            f"/v1/connections/{created_extole['id']}",
            json={"name": created_extole["name"], "braze": {"api_key": API_KEY}, "settings": {}},
            headers=tenant_a.headers,
        )
        assert (response.status_code, response.json()["version"]) == (200, 1)
        assert response.json()["updated_at"] == created_extole["updated_at"]
        assert len(await audit_rows(sessionmaker, created_extole["id"])) == 1

    @pytest.mark.parametrize(
        ("patch", "state_after"),
        [
            ({"braze": {"api_key": NEW_KEY}}, "active"),
            ({"braze": {"rest_endpoint": "https://rest.iad-02.braze.com"}}, "active"),
            ({"name": "just a rename"}, "auth_error"),
            ({"settings": {"unknown_user": "skip"}}, "auth_error"),
        ],
    )
    async def test_new_endpoint_or_key_lifts_an_auth_error_hold(
        self,
        patch: dict[str, Any],
        state_after: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        made = await make_connection(session, tenant_a.tenant, state=ConnectionState.AUTH_ERROR)
        response = await client.patch(
            f"/v1/connections/{made.id}", json=patch, headers=tenant_a.headers
        )

        assert response.status_code == 200
        assert (response.json()["state"], response.json()["version"]) == (state_after, 2)
        audits = await audit_rows(sessionmaker, made.id)
        assert ("state" in audits[-1].fields) == (state_after == "active")

    async def test_switching_auth_modes_sets_and_clears_the_basic_username(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        created_extole: dict[str, Any],
    ) -> None:
        url = f"/v1/connections/{created_extole['id']}"

        basic = await client.patch(
            url, json={"webhook_auth": {"mode": "basic"}}, headers=tenant_a.headers
        )
        renamed = await client.patch(
            url, json={"webhook_auth": {"username": "hooks"}}, headers=tenant_a.headers
        )
        kept = await client.patch(url, json={"name": "n2"}, headers=tenant_a.headers)
        bearer = await client.patch(
            url, json={"webhook_auth": {"mode": "bearer"}}, headers=tenant_a.headers
        )

        assert basic.json()["webhook_auth"]["username"] is None
        assert renamed.json()["webhook_auth"] == {
            "mode": "basic",
            "username": "hooks",
            "previous_secret_expires_at": None,
        }
        assert kept.json()["webhook_auth"]["username"] == "hooks"
        assert bearer.json()["webhook_auth"] == {
            "mode": "bearer",
            "username": None,
            "previous_secret_expires_at": None,
        }

    async def test_limits_and_app_id_can_be_set_and_cleared(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await create(client, tenant_a.headers, antavo_body())
        url = f"/v1/connections/{created['id']}"
        set_ = await client.patch(
            url,
            json={
                "braze": {"app_id": "app-9"},
                "limits": {"export_rate_limit": 200, "track_object_cap": "combined_50"},
            },
            headers=tenant_a.headers,
        )
        cleared = await client.patch(
            url,
            json={"braze": {"app_id": None}, "limits": {"export_rate_limit": None}},
            headers=tenant_a.headers,
        )

        assert set_.json()["braze"]["app_id"] == "app-9"
        assert set_.json()["limits"]["export_rate_limit"] == 200
        assert cleared.json()["braze"]["app_id"] is None
        assert cleared.json()["limits"]["export_rate_limit"] is None
        assert cleared.json()["limits"]["track_object_cap"] == "combined_50"
        assert cleared.json()["version"] == 3


class TestDelete:
    async def test_deleted_connection_answers_404_everywhere(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        url = f"/v1/connections/{created_extole['id']}"

        deleted = await client.delete(url, headers=tenant_a.headers)

        assert (deleted.status_code, deleted.content) == (204, b"")
        for method, path in [
            ("GET", url),
            ("PATCH", url),
            ("DELETE", url),
            ("POST", f"{url}/pause"),
            ("POST", f"{url}/rotate-secret"),
            ("GET", f"{url}/audit"),
        ]:
            kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
            response = await client.request(method, path, headers=tenant_a.headers, **kwargs)
            assert response.status_code == 404, (method, path)
        listed = await client.get("/v1/connections", headers=tenant_a.headers)
        assert listed.json()["items"] == []
        row = await load_connection(sessionmaker, created_extole["id"])
        assert row.deleted_at is not None
        assert [a.action for a in await audit_rows(sessionmaker, created_extole["id"])] == [
            "create",
            "delete",
        ]


class TestRotation:
    async def test_rotate_secret_keeps_the_old_one_for_24_hours(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        before = datetime.now(UTC)

        response = await client.post(
            f"/v1/connections/{created_extole['id']}/rotate-secret", headers=tenant_a.headers
        )

        assert response.status_code == 200
        body = response.json()
        new_secret = body["webhook_secret"]
        assert new_secret.startswith("whsec_")
        assert new_secret != created_extole["webhook_secret"]
        expires = datetime.fromisoformat(body["webhook_auth"]["previous_secret_expires_at"])
        assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
        assert body["version"] == 2
        row = await load_connection(sessionmaker, created_extole["id"])
        assert BOX.decrypt(row.webhook_secret_enc) == new_secret
        assert (
            BOX.decrypt(row.previous_webhook_secret_enc or "") == created_extole["webhook_secret"]
        )
        assert row.previous_secret_expires_at == expires
        assert (await audit_rows(sessionmaker, created_extole["id"]))[-1].fields == [
            "webhook_auth.secret"
        ]
        read = await client.get(f"/v1/connections/{created_extole['id']}", headers=tenant_a.headers)
        assert new_secret not in read.text
        assert "webhook_secret" not in read.json()

    async def test_rotating_twice_retires_the_oldest_secret(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        url = f"/v1/connections/{created_extole['id']}/rotate-secret"
        second = (await client.post(url, headers=tenant_a.headers)).json()["webhook_secret"]
        third = (await client.post(url, headers=tenant_a.headers)).json()["webhook_secret"]

        row = await load_connection(sessionmaker, created_extole["id"])
        assert BOX.decrypt(row.webhook_secret_enc) == third
        assert BOX.decrypt(row.previous_webhook_secret_enc or "") == second

    async def test_zero_grace_retires_the_old_secret_at_once(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.post(
            f"/v1/connections/{created_extole['id']}/rotate-secret",
            json={"grace_seconds": 0},
            headers=tenant_a.headers,
        )
        too_long = await client.post(
            f"/v1/connections/{created_extole['id']}/rotate-secret",
            json={"grace_seconds": 86_401},
            headers=tenant_a.headers,
        )

        assert response.json()["webhook_auth"]["previous_secret_expires_at"] is None
        row = await load_connection(sessionmaker, created_extole["id"])
        assert row.previous_webhook_secret_enc is None
        assert (too_long.status_code, fields_of(too_long)) == (422, ["grace_seconds"])
        assert BOX.decrypt(row.webhook_secret_enc) == response.json()["webhook_secret"]

    async def test_rotate_content_token_replaces_it_at_once(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        response = await client.post(
            f"/v1/connections/{created_extole['id']}/rotate-content-token", headers=tenant_a.headers
        )

        token = response.json()["content_token"]
        assert (response.status_code, token.startswith("bbc_")) == (200, True)
        assert token != created_extole["content_token"]
        row = await load_connection(sessionmaker, created_extole["id"])
        assert BOX.decrypt(row.content_token_enc or "") == token
        assert BOX.decrypt(row.webhook_secret_enc) == created_extole["webhook_secret"]
        assert (await audit_rows(sessionmaker, created_extole["id"]))[
            -1
        ].action == "rotate_content_token"


class TestPauseResume:
    async def test_pause_then_resume(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
        created_extole: dict[str, Any],
    ) -> None:
        url = f"/v1/connections/{created_extole['id']}"

        paused = await client.post(f"{url}/pause", headers=tenant_a.headers)
        paused_again = await client.post(f"{url}/pause", headers=tenant_a.headers)
        resumed = await client.post(f"{url}/resume", headers=tenant_a.headers)

        assert (paused.json()["state"], paused.json()["version"]) == ("paused", 2)
        assert (paused_again.json()["state"], paused_again.json()["version"]) == ("paused", 2)
        assert (resumed.json()["state"], resumed.json()["version"]) == ("active", 3)
        assert [a.action for a in await audit_rows(sessionmaker, created_extole["id"])] == [
            "create",
            "pause",
            "resume",
        ]

    async def test_resume_lifts_an_auth_error(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken, session: AsyncSession
    ) -> None:
        made = await make_connection(session, tenant_a.tenant, state=ConnectionState.AUTH_ERROR)
        response = await client.post(f"/v1/connections/{made.id}/resume", headers=tenant_a.headers)
        assert response.json()["state"] == "active"


class TestSecretsStayOutOfLogs:
    async def test_no_secret_reaches_a_log_line(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        with structlog.testing.capture_logs() as captured:
            created = await create(client, tenant_a.headers, extole_body())
            url = f"/v1/connections/{created['id']}"
            await client.patch(url, json={"braze": {"api_key": NEW_KEY}}, headers=tenant_a.headers)
            rotated = (await client.post(f"{url}/rotate-secret", headers=tenant_a.headers)).json()
            token = (
                await client.post(f"{url}/rotate-content-token", headers=tenant_a.headers)
            ).json()
            await client.post(
                "/v1/connections",
                json=extole_body(
                    braze={"rest_endpoint": "https://x.example.com", "api_key": API_KEY}
                ),
                headers=tenant_a.headers,
            )
        out = capsys.readouterr()
        logged = repr(captured) + out.out + out.err
        events = [entry["event"] for entry in captured]
        assert "admin.connection_created" in events
        assert "admin.webhook_secret_rotated" in events
        for secret in (
            API_KEY,
            NEW_KEY,
            created["webhook_secret"],
            created["content_token"],
            rotated["webhook_secret"],
            token["content_token"],
            tenant_a.token,
        ):
            assert secret not in logged

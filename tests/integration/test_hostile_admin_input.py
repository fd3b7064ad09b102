"""Hostile input on the admin API answers 4xx in the contract's shape and stores nothing.

Found by probing the admin API with hostile text (NUL bytes, lone surrogates) in every field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime
from braze_bridge.db.models import (
    ApiToken,
    Connection,
    ConnectionAudit,
    Event,
    ReplayJob,
    Tenant,
)
from tests.conftest import AppStarter
from tests.integration.admin_support import (
    API_KEY,
    BRAZE,
    TenantWithToken,
    antavo_body,
    error_of,
    extole_body,
    load_connection,
)

pytestmark = pytest.mark.rollback

BROKEN_URLS = [
    "https://rest.iad-01.braze.com: evil",
    "https://rest.iad-01.braze.com:abc",
    "https://rest.iad-01.braze.com:-1",
    "https://rest.iad-01.braze.com:99999",
    "https://[::1",
    "https://[rest.iad-01.braze.com]",
    "https://rest.iad-01.braze.com\r\nHost: evil",
]


async def connection_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Connection)) or 0)


@pytest.fixture(params=[False, True], ids=["strict", "allow-any-url"])
async def any_client(
    request: Any, runtime: Runtime, start_app: AppStarter
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL unset and set."""
    settings = runtime.settings.model_copy(update={"allow_any_braze_url": request.param})
    tiered = Runtime(settings, runtime.database_url, runtime.secret_key, False)
    async with start_app(tiered) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


def assert_endpoint_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {
            "field": "braze.rest_endpoint",
            "message": error["details"][0]["message"],
            "type": "braze_endpoint",
        }
    ]
    assert "evil" not in error["details"][0]["message"]


class TestBrokenEndpointUrls:
    @pytest.mark.parametrize("endpoint", BROKEN_URLS)
    async def test_create_is_422_and_stores_nothing(
        self,
        endpoint: str,
        any_client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await any_client.post(
            "/v1/connections",
            json=extole_body(braze={"rest_endpoint": endpoint, "api_key": API_KEY}),
            headers=tenant_a.headers,
        )

        assert_endpoint_refused(response)
        assert await connection_count(sessionmaker) == 0

    @pytest.mark.parametrize("endpoint", BROKEN_URLS)
    async def test_patch_is_422_and_changes_nothing(
        self,
        endpoint: str,
        any_client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        created = await any_client.post(
            "/v1/connections", json=extole_body(), headers=tenant_a.headers
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]

        response = await any_client.patch(
            f"/v1/connections/{cid}",
            json={"braze": {"rest_endpoint": endpoint}},
            headers=tenant_a.headers,
        )

        assert_endpoint_refused(response)
        row = await load_connection(sessionmaker, cid)
        assert (row.version, row.braze_rest_endpoint) == (1, BRAZE)


# --- U+0000 and unpaired surrogates (review probe 4) -------------------------------------------

NUL = "a\u0000b"
LONE = "a\ud800b"
MESSAGE = "must not contain U+0000 (NUL) or an unpaired UTF-16 surrogate"


def as_json(body: Any) -> bytes:
    """The body as a client sends it: `\\u0000` / `\\ud800` escapes, which decode to the string."""
    return json.dumps(body, ensure_ascii=True).encode()


async def stored_state(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Everything a refused request could have written."""
    async with sessionmaker() as s:
        counts = {
            model.__name__: int(await s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Tenant, ApiToken, Connection, ConnectionAudit, Event, ReplayJob)
        }
        rows = await s.execute(
            select(Connection.id, Connection.version, Connection.name, Connection.settings)
        )
        counts["connections"] = sorted((str(r[0]), r[1], r[2], repr(r[3])) for r in rows)
        names = await s.scalars(select(Tenant.name).order_by(Tenant.name))
        counts["tenant_names"] = list(names)
        return counts


@dataclass
class Probe:
    method: str
    path: str  # {cid} = an Extole connection, {aid} = an Antavo one, {tid} = the tenant
    field: str
    body: Any = None
    params: dict[str, str] | None = None
    operator: bool = False
    content_token: bool = False


PROBES = {
    "events-user": Probe("GET", "/v1/events", "query.user", params={"user": NUL}),
    "events-kind": Probe("GET", "/v1/events", "query.kind", params={"kind": NUL}),
    "stream-user": Probe("GET", "/v1/events/stream", "query.user", params={"user": NUL}),
    "bulk-replay-user": Probe("POST", "/v1/events/replay", "user", body={"user": NUL}),
    "bulk-replay-kind": Probe("POST", "/v1/events/replay", "kind", body={"kind": LONE}),
    "tenant-name": Probe(
        "POST", "/v1/tenants", "name", body={"slug": "nul-t", "name": NUL}, operator=True
    ),
    "tenant-name-surrogate": Probe(
        "POST", "/v1/tenants", "name", body={"slug": "sur-t", "name": LONE}, operator=True
    ),
    "token-name": Probe("POST", "/v1/tenants/{tid}/tokens", "name", body={"name": NUL}),
    "connection-name": Probe("POST", "/v1/connections", "name", body=extole_body(name=NUL)),
    "event-names": Probe(
        "POST",
        "/v1/connections",
        "settings.event_names.reward",
        body=extole_body(settings={"event_names": {"reward": NUL}}),
    ),
    "event-names-key": Probe(
        "POST",
        "/v1/connections",
        "settings.event_names.a\\u0000b",
        body=extole_body(settings={"event_names": {NUL: "reward"}}),
    ),
    "app-id": Probe(
        "POST",
        "/v1/connections",
        "braze.app_id",
        body=extole_body(braze={"rest_endpoint": BRAZE, "api_key": API_KEY, "app_id": NUL}),
    ),
    "basic-username": Probe(
        "POST",
        "/v1/connections",
        "webhook_auth.username",
        body=extole_body(webhook_auth={"mode": "basic", "username": NUL}),
    ),
    "antavo-prefix": Probe(
        "POST",
        "/v1/connections",
        "settings.event_name_prefix",
        body=antavo_body(settings={"event_name_prefix": NUL}),
    ),
    "api-key-surrogate": Probe(
        "POST",
        "/v1/connections",
        "braze.api_key",
        body=extole_body(braze={"rest_endpoint": BRAZE, "api_key": API_KEY + LONE}),
    ),
    "api-key-nul": Probe(
        "POST",
        "/v1/connections",
        "braze.api_key",
        body=extole_body(braze={"rest_endpoint": BRAZE, "api_key": API_KEY + NUL}),
    ),
    "patch-name": Probe("PATCH", "/v1/connections/{cid}", "name", body={"name": NUL}),
    "patch-merge-key": Probe(
        "PATCH",
        "/v1/connections/{cid}",
        "settings.event_names.a\\u0000b",
        body={"settings": {"event_names": {NUL: "reward"}}},
    ),
    "patch-antavo-prefix": Probe(
        "PATCH",
        "/v1/connections/{aid}",
        "settings.event_name_prefix",
        body={"settings": {"event_name_prefix": LONE}},
    ),
    "preview-surrogate": Probe(
        "POST",
        "/v1/connections/{cid}/preview",
        "partner_user_id",
        body={"type": "REWARD", "partner_user_id": LONE},
    ),
    "preview-nul": Probe(
        "POST",
        "/v1/connections/{cid}/preview",
        "partner_user_id",
        body={"type": "REWARD", "partner_user_id": NUL},
    ),
    "content-external-id": Probe(
        "GET", "/v1/content/{cid}/a%00b", "path.external_id", content_token=True
    ),
}


class TestNulAndLoneSurrogates:
    @pytest.mark.parametrize(
        "probe",
        [
            # Content reads through the app's engine, which sees committed rows only.
            pytest.param(probe, id=name, marks=pytest.mark.fresh_database)
            if probe.content_token
            else pytest.param(probe, id=name)
            for name, probe in PROBES.items()
        ],
    )
    async def test_is_422_naming_the_field_and_stores_nothing(
        self,
        probe: Probe,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        operator_headers: dict[str, str],
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        extole = await client.post("/v1/connections", json=extole_body(), headers=tenant_a.headers)
        antavo = await client.post("/v1/connections", json=antavo_body(), headers=tenant_a.headers)
        assert (extole.status_code, antavo.status_code) == (201, 201)
        path = probe.path.format(cid=extole.json()["id"], aid=antavo.json()["id"], tid=tenant_a.id)
        headers = dict(operator_headers if probe.operator else tenant_a.headers)
        if probe.content_token:
            headers = {"Authorization": f"Bearer {extole.json()['content_token']}"}
        if probe.body is not None:
            headers["Content-Type"] = "application/json"
        before = await stored_state(sessionmaker)

        response = await client.request(
            probe.method,
            path,
            params=probe.params,
            content=None if probe.body is None else as_json(probe.body),
            headers=headers,
        )

        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": {
                "code": "validation_error",
                "message": f"invalid request: {probe.field}",
                "details": [
                    {"field": probe.field, "message": MESSAGE, "type": "invalid_character"}
                ],
            }
        }
        assert await stored_state(sessionmaker) == before

    async def test_a_refused_request_still_needs_a_token_first(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/events", params={"user": NUL})
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"

    async def test_paired_surrogates_and_other_text_are_fine(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        """An emoji (a valid surrogate pair in JSON) is ordinary text."""
        body = as_json(extole_body(name="Acme \U0001f600 → Braze"))
        response = await client.post(
            "/v1/connections",
            content=body,
            headers={**tenant_a.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "Acme \U0001f600 → Braze"


class TestGraceSecondsIsAnInteger:
    """Review probe 15 (ST201): `false` was taken as 0 and retired the old secret at once."""

    @pytest.mark.parametrize("grace", [False, True, "60", 1.5])
    async def test_non_integer_is_422_and_the_secret_is_unchanged(
        self,
        grace: Any,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        created = await client.post("/v1/connections", json=extole_body(), headers=tenant_a.headers)
        cid = created.json()["id"]
        before = await load_connection(sessionmaker, cid)

        response = await client.post(
            f"/v1/connections/{cid}/rotate-secret",
            json={"grace_seconds": grace},
            headers=tenant_a.headers,
        )

        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == ["grace_seconds"]
        after = await load_connection(sessionmaker, cid)
        assert (after.version, after.webhook_secret_enc, after.previous_webhook_secret_enc) == (
            before.version,
            before.webhook_secret_enc,
            before.previous_webhook_secret_enc,
        )

    async def test_an_integer_still_works(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        created = await client.post("/v1/connections", json=extole_body(), headers=tenant_a.headers)
        response = await client.post(
            f"/v1/connections/{created.json()['id']}/rotate-secret",
            json={"grace_seconds": 0},
            headers=tenant_a.headers,
        )
        assert response.status_code == 200, response.text


class TestStreamIsolation:
    """Review probe 14: the stream answered 200 (empty) where the list endpoint answers 404."""

    @pytest.mark.parametrize("whose", ["other-tenant", "unknown"])
    async def test_foreign_connection_id_is_404_like_the_list(
        self,
        whose: str,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        tenant_b: TenantWithToken,
    ) -> None:
        if whose == "other-tenant":
            theirs = await client.post(
                "/v1/connections", json=extole_body(), headers=tenant_b.headers
            )
            assert theirs.status_code == 201
            cid = theirs.json()["id"]
        else:
            cid = str(uuid.uuid4())

        listed = await client.get(
            "/v1/events", params={"connection_id": cid}, headers=tenant_a.headers
        )
        streamed = await client.get(
            "/v1/events/stream", params={"connection_id": cid}, headers=tenant_a.headers
        )

        expected = {
            "error": {"code": "not_found", "message": f"no connection {cid}", "details": None}
        }
        assert (listed.status_code, listed.json()) == (404, expected)
        assert (streamed.status_code, streamed.json()) == (404, expected)

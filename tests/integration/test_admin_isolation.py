"""Tenant isolation and authentication across every admin route.

Tenant B's token on tenant A's objects answers 404 in the error shape, exactly like an id
that does not exist, and A's row is left as it was; operator-only routes answer 403 to tenant
tokens; every route answers 401 without a valid token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import ApiToken, ConnectionAudit
from tests.factories import MadeConnection, make_connection, make_token
from tests.integration.admin_support import (
    BRAZE,
    TenantWithToken,
    error_of,
    load_connection,
)

pytestmark = pytest.mark.rollback

# (method, path under /v1/connections/{id}, JSON body or None)
CONNECTION_ROUTES = [
    ("GET", "", None),
    ("PATCH", "", {"name": "hijacked", "braze": {"api_key": "attacker-key-123456"}}),
    ("DELETE", "", None),
    ("POST", "/test", None),
    ("POST", "/rotate-secret", None),
    ("POST", "/rotate-content-token", None),
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("GET", "/audit", None),
    ("POST", "/users/forget", {"external_id": "user-1"}),
]
ROUTE_IDS = [f"{method} {suffix or '/'}" for method, suffix, _ in CONNECTION_ROUTES]


@pytest.fixture
def braze() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BRAZE, assert_all_called=False) as router:
        router.post("/users/track").respond(201, json={"message": "success"})
        router.post("/users/export/ids").respond(201, json={"users": [], "message": "success"})
        yield router


@pytest.fixture
async def a_connection(session: AsyncSession, tenant_a: TenantWithToken) -> MadeConnection:
    return await make_connection(session, tenant_a.tenant)


async def snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], made: MadeConnection
) -> dict[str, Any]:
    row = await load_connection(sessionmaker, made.id)
    async with sessionmaker() as s:
        audits = await s.scalar(
            select(func.count()).where(ConnectionAudit.connection_id == made.id)
        )
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    return {**values, "audits": audits}


@pytest.mark.parametrize(("method", "suffix", "body"), CONNECTION_ROUTES, ids=ROUTE_IDS)
async def test_another_tenants_connection_answers_404_and_stays_unchanged(
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    client: httpx.AsyncClient,
    tenant_b: TenantWithToken,
    a_connection: MadeConnection,
    sessionmaker: async_sessionmaker[AsyncSession],
    braze: respx.MockRouter,
) -> None:
    before = await snapshot(sessionmaker, a_connection)
    url = f"/v1/connections/{a_connection.id}{suffix}"

    foreign = await client.request(method, url, json=body, headers=tenant_b.headers)
    missing = await client.request(
        method, f"/v1/connections/{uuid.uuid4()}{suffix}", json=body, headers=tenant_b.headers
    )

    assert foreign.status_code == 404
    error = error_of(foreign)
    assert error["code"] == "not_found"
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    assert a_connection.row.name not in foreign.text
    assert await snapshot(sessionmaker, a_connection) == before
    assert not braze.calls


@pytest.mark.parametrize(("method", "suffix", "body"), CONNECTION_ROUTES, ids=ROUTE_IDS)
async def test_owner_and_operator_reach_every_connection_route(
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    operator_headers: dict[str, str],
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    for headers in (tenant_a.headers, operator_headers):
        made = await make_connection(session, tenant_a.tenant)
        response = await client.request(
            method, f"/v1/connections/{made.id}{suffix}", json=body, headers=headers
        )
        assert response.status_code in (200, 204), response.text


@pytest.mark.parametrize(("method", "suffix", "body"), CONNECTION_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer bbt_not-a-real-token", "Token abc", "Bearer "]
)
async def test_connection_routes_need_a_valid_token(
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    authorization: str | None,
    client: httpx.AsyncClient,
    a_connection: MadeConnection,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    before = await snapshot(sessionmaker, a_connection)
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.request(
        method, f"/v1/connections/{a_connection.id}{suffix}", json=body, headers=headers
    )
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthorized")
    assert await snapshot(sessionmaker, a_connection) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/connections"),
        ("POST", "/v1/connections"),
        ("GET", "/v1/tenants"),
        ("POST", "/v1/tenants"),
        ("GET", "/v1/tenants/{tenant}"),
        ("POST", "/v1/tenants/{tenant}/tokens"),
        ("GET", "/v1/tenants/{tenant}/tokens"),
        ("DELETE", "/v1/tenants/{tenant}/tokens/{token}"),
    ],
)
async def test_collection_and_tenant_routes_need_a_token(
    method: str, path: str, client: httpx.AsyncClient, tenant_a: TenantWithToken
) -> None:
    url = path.format(tenant=tenant_a.id, token=uuid.uuid4())
    response = await client.request(method, url, json={"name": "x", "slug": "x"})
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthorized")


async def test_revoked_token_loses_access_to_connections(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    a_connection: MadeConnection,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    spare = await make_token(session, tenant_a.tenant)
    async with sessionmaker() as s:
        spare_id = await s.scalar(
            select(ApiToken.id).where(
                ApiToken.prefix == spare[:8], ApiToken.tenant_id == tenant_a.id
            )
        )
    revoked = await client.delete(
        f"/v1/tenants/{tenant_a.id}/tokens/{spare_id}", headers=tenant_a.headers
    )
    response = await client.get(
        f"/v1/connections/{a_connection.id}", headers={"Authorization": f"Bearer {spare}"}
    )
    assert revoked.status_code == 204
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tenants/{other}"),
        ("POST", "/v1/tenants/{other}/tokens"),
        ("GET", "/v1/tenants/{other}/tokens"),
        ("DELETE", "/v1/tenants/{other}/tokens/{token}"),
    ],
)
async def test_another_tenants_tenant_routes_answer_404(
    method: str,
    path: str,
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    tenant_b: TenantWithToken,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        token_id = await s.scalar(select(ApiToken.id).where(ApiToken.tenant_id == tenant_a.id))
        tokens_before = await s.scalar(select(func.count()).select_from(ApiToken))
    url = path.format(other=tenant_a.id, token=token_id)

    response = await client.request(method, url, json={"name": "x"}, headers=tenant_b.headers)

    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
    assert "acme" not in response.text
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(ApiToken)) == tokens_before
    assert (await client.get("/v1/tenants", headers=tenant_a.headers)).status_code == 200


async def test_operator_only_route_is_403_for_tenant_tokens(
    client: httpx.AsyncClient, tenant_a: TenantWithToken, operator_headers: dict[str, str]
) -> None:
    body = {"slug": "newco", "name": "NewCo"}
    refused = await client.post("/v1/tenants", json=body, headers=tenant_a.headers)
    allowed = await client.post("/v1/tenants", json=body, headers=operator_headers)

    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    assert allowed.status_code == 201

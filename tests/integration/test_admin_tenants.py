"""/v1/tenants and tenant tokens: who may create, list, read, issue and revoke."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import ApiToken, Tenant
from braze_bridge.security.tokens import hash_token
from tests.integration.admin_support import (
    TenantWithToken,
    error_of,
    fields_of,
)

pytestmark = pytest.mark.rollback


async def tenant_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Tenant)) or 0)


class TestCreateTenant:
    async def test_operator_creates_a_tenant(
        self, client: httpx.AsyncClient, operator_headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/v1/tenants",
            json={"slug": "Initech", "name": "Initech Inc."},
            headers=operator_headers,
        )

        assert response.status_code == 201
        body = response.json()
        assert (body["slug"], body["name"]) == ("initech", "Initech Inc.")
        uuid.UUID(body["id"])
        read = await client.get(f"/v1/tenants/{body['id']}", headers=operator_headers)
        assert read.json() == body

    async def test_name_defaults_to_the_slug(
        self, client: httpx.AsyncClient, operator_headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/v1/tenants", json={"slug": "hooli"}, headers=operator_headers
        )
        assert (response.status_code, response.json()["name"]) == (201, "hooli")

    async def test_duplicate_slug_is_409_and_keeps_the_first(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        first = await client.post(
            "/v1/tenants", json={"slug": "acme", "name": "First"}, headers=operator_headers
        )
        second = await client.post(
            "/v1/tenants", json={"slug": "acme", "name": "Second"}, headers=operator_headers
        )

        assert second.status_code == 409
        error = error_of(second)
        assert error["code"] == "conflict"
        assert error["details"] == [{"field": "slug", "message": "already taken", "type": "unique"}]
        assert (
            await client.get(f"/v1/tenants/{first.json()['id']}", headers=operator_headers)
        ).json()["name"] == "First"
        assert await tenant_count(sessionmaker) == 1

    async def test_bad_slug_and_unknown_field_are_422_naming_each(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            "/v1/tenants", json={"slug": "-bad slug-", "plan": "gold"}, headers=operator_headers
        )

        assert response.status_code == 422
        assert error_of(response)["code"] == "validation_error"
        assert sorted(fields_of(response)) == ["plan", "slug"]
        assert await tenant_count(sessionmaker) == 0

    async def test_tenant_token_may_not_create_tenants(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post("/v1/tenants", json={"slug": "evil"}, headers=tenant_a.headers)

        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"
        assert await tenant_count(sessionmaker) == 1


class TestReadTenants:
    async def test_operator_lists_every_tenant_by_slug(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        tenant_a: TenantWithToken,
        tenant_b: TenantWithToken,
    ) -> None:
        response = await client.get("/v1/tenants", headers=operator_headers)
        assert [t["slug"] for t in response.json()["items"]] == ["acme", "globex"]

    async def test_tenant_token_lists_only_its_own_tenant(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken, tenant_b: TenantWithToken
    ) -> None:
        response = await client.get("/v1/tenants", headers=tenant_b.headers)
        assert [t["id"] for t in response.json()["items"]] == [str(tenant_b.id)]

    async def test_another_tenants_id_answers_404_like_a_missing_one(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken, tenant_b: TenantWithToken
    ) -> None:
        other = await client.get(f"/v1/tenants/{tenant_a.id}", headers=tenant_b.headers)
        missing = await client.get(f"/v1/tenants/{uuid.uuid4()}", headers=tenant_b.headers)
        malformed = await client.get("/v1/tenants/not-a-uuid", headers=tenant_b.headers)

        assert [r.status_code for r in (other, missing, malformed)] == [404, 404, 404]
        assert {error_of(r)["code"] for r in (other, missing, malformed)} == {"not_found"}
        assert "acme" not in other.text


class TestTokens:
    async def test_operator_issues_a_tenant_token_that_works_and_is_stored_hashed(
        self,
        client: httpx.AsyncClient,
        operator_headers: dict[str, str],
        tenant_a: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            f"/v1/tenants/{tenant_a.id}/tokens",
            json={"name": "terraform"},
            headers=operator_headers,
        )

        assert response.status_code == 201
        body = response.json()
        token = body["token"]
        assert token.startswith("bbt_")
        assert len(token) > 40
        assert (body["name"], body["tenant_id"], body["prefix"]) == (
            "terraform",
            str(tenant_a.id),
            token[:8],
        )
        async with sessionmaker() as s:
            row = await s.get(ApiToken, uuid.UUID(body["id"]))
        assert row is not None
        assert row.token_hash == hash_token(token)
        assert token.encode() not in row.token_hash
        mine = await client.get("/v1/tenants", headers={"Authorization": f"Bearer {token}"})
        assert [t["id"] for t in mine.json()["items"]] == [str(tenant_a.id)]

    async def test_tenant_token_issues_tokens_for_its_own_tenant_only(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken, tenant_b: TenantWithToken
    ) -> None:
        own = await client.post(
            f"/v1/tenants/{tenant_a.id}/tokens", json={"name": "ci"}, headers=tenant_a.headers
        )
        other = await client.post(
            f"/v1/tenants/{tenant_b.id}/tokens", json={"name": "ci"}, headers=tenant_a.headers
        )

        assert own.status_code == 201
        assert other.status_code == 404
        assert error_of(other)["code"] == "not_found"
        listed = await client.get(f"/v1/tenants/{tenant_b.id}/tokens", headers=tenant_b.headers)
        assert [t["name"] for t in listed.json()["items"]] == ["test"]

    async def test_token_name_is_required(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        response = await client.post(
            f"/v1/tenants/{tenant_a.id}/tokens", json={}, headers=tenant_a.headers
        )
        assert (response.status_code, fields_of(response)) == (422, ["name"])

    # Listed in creation order: inside one transaction every row has the same now().
    @pytest.mark.fresh_database
    async def test_list_never_shows_token_values(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        issued = await client.post(
            f"/v1/tenants/{tenant_a.id}/tokens", json={"name": "ci"}, headers=tenant_a.headers
        )
        listed = await client.get(f"/v1/tenants/{tenant_a.id}/tokens", headers=tenant_a.headers)

        assert listed.status_code == 200
        assert [t["name"] for t in listed.json()["items"]] == ["test", "ci"]
        assert issued.json()["token"] not in listed.text
        assert tenant_a.token not in listed.text
        assert all("token" not in item for item in listed.json()["items"])

    async def test_list_shows_when_a_token_was_last_used(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken, operator_headers: dict[str, str]
    ) -> None:
        issued = (
            await client.post(
                f"/v1/tenants/{tenant_a.id}/tokens", json={"name": "ci"}, headers=operator_headers
            )
        ).json()
        assert issued["last_used_at"] is None

        await client.get("/v1/tenants", headers={"Authorization": f"Bearer {issued['token']}"})

        listed = await client.get(f"/v1/tenants/{tenant_a.id}/tokens", headers=operator_headers)
        used = {t["name"]: t["last_used_at"] for t in listed.json()["items"]}
        assert used["ci"] is not None
        assert used["test"] is None

    async def test_revoked_token_answers_401_from_then_on(
        self, client: httpx.AsyncClient, tenant_a: TenantWithToken
    ) -> None:
        issued = (
            await client.post(
                f"/v1/tenants/{tenant_a.id}/tokens", json={"name": "ci"}, headers=tenant_a.headers
            )
        ).json()
        headers = {"Authorization": f"Bearer {issued['token']}"}
        assert (await client.get("/v1/tenants", headers=headers)).status_code == 200

        revoked = await client.delete(
            f"/v1/tenants/{tenant_a.id}/tokens/{issued['id']}", headers=tenant_a.headers
        )
        again = await client.delete(
            f"/v1/tenants/{tenant_a.id}/tokens/{issued['id']}", headers=tenant_a.headers
        )

        assert (revoked.status_code, revoked.content) == (204, b"")
        assert again.status_code == 404
        after = await client.get("/v1/tenants", headers=headers)
        assert after.status_code == 401
        assert error_of(after)["code"] == "unauthorized"
        assert (await client.get("/v1/tenants", headers=tenant_a.headers)).status_code == 200

    async def test_cannot_revoke_another_tenants_token(
        self,
        client: httpx.AsyncClient,
        tenant_a: TenantWithToken,
        tenant_b: TenantWithToken,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        async with sessionmaker() as s:
            b_token_id = await s.scalar(
                select(ApiToken.id).where(ApiToken.tenant_id == tenant_b.id)
            )
        via_own_tenant = await client.delete(
            f"/v1/tenants/{tenant_a.id}/tokens/{b_token_id}", headers=tenant_a.headers
        )
        via_other_tenant = await client.delete(
            f"/v1/tenants/{tenant_b.id}/tokens/{b_token_id}", headers=tenant_a.headers
        )

        assert (via_own_tenant.status_code, via_other_tenant.status_code) == (404, 404)
        assert (await client.get("/v1/tenants", headers=tenant_b.headers)).status_code == 200


class TestAuthentication:
    async def test_missing_malformed_and_unknown_tokens_are_401(
        self, client: httpx.AsyncClient
    ) -> None:
        answers = [
            await client.get("/v1/tenants"),
            await client.get("/v1/tenants", headers={"Authorization": "Basic abc"}),
            await client.get("/v1/tenants", headers={"Authorization": "Bearer bbt_nope"}),
        ]
        assert [r.status_code for r in answers] == [401, 401, 401]
        assert {error_of(r)["code"] for r in answers} == {"unauthorized"}

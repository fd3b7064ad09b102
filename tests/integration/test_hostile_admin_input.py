"""Hostile input on the admin API answers 4xx in the contract's shape and stores nothing.

Evidence: /work/shared/reviews/security-reliability.md probes 4, 5, 14 and 15.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime, create_app
from braze_bridge.db.models import Connection
from tests.integration.admin_support import (
    API_KEY,
    BRAZE,
    TenantWithToken,
    error_of,
    extole_body,
    load_connection,
)

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
async def any_client(request: Any, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The API with BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL unset and set."""
    settings = runtime.settings.model_copy(update={"allow_any_braze_url": request.param})
    application = create_app(Runtime(settings, runtime.database_url, runtime.secret_key, False))
    async with LifespanManager(application):
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

"""Migration 0002_extole_settings_names: existing Extole connections keep their Braze event name and Basic auth works."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import migrate
from braze_bridge.domain.statuses import Source, WebhookAuthMode
from tests import extole_bodies as bodies
from tests.conftest import asyncpg_dsn
from tests.factories import make_connection, make_tenant
from tests.integration.hooks_helpers import post_signed, stored_operations

BEFORE = "0001_baseline"


@pytest.fixture
async def driver(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


async def stored_settings(driver: asyncpg.Connection, connection_id: uuid.UUID) -> Any:
    text = await driver.fetchval(
        "SELECT settings::text FROM connections WHERE id = $1", connection_id
    )
    return json.loads(text)


async def test_existing_extole_connections_keep_the_old_share_link_event_name(
    database_url: str,
    driver: asyncpg.Connection,
    session: AsyncSession,
    client: httpx.AsyncClient,
) -> None:
    tenant = await make_tenant(session)
    plain = await make_connection(session, tenant, settings={"reward_states": ["EARNED"]})
    old_key = await make_connection(
        session, tenant, settings={"event_names": {"extole_created_share_link": "my_link"}}
    )
    own = await make_connection(
        session, tenant, settings={"event_names": {"share_link_created": "link_made"}}
    )
    antavo = await make_connection(session, tenant, source=Source.ANTAVO)
    await asyncio.to_thread(migrate.downgrade, database_url, BEFORE)

    await asyncio.to_thread(migrate.upgrade, database_url, "head")

    # `identity` is migration 0003_identity_modes's: connections from before keep the lookup.
    kept = {"identity": "lookup_then_alias"}
    assert await stored_settings(driver, plain.id) == {
        "reward_states": ["EARNED"],
        "event_names": {"share_link_created": "extole_created_share_link"},
        **kept,
    }
    assert await stored_settings(driver, old_key.id) == {
        "event_names": {"extole_created_share_link": "my_link", "share_link_created": "my_link"},
        **kept,
    }
    assert await stored_settings(driver, own.id) == {
        "event_names": {"share_link_created": "link_made"},
        **kept,
    }
    assert await stored_settings(driver, antavo.id) == {}
    response = await post_signed(client, plain, bodies.SHARE_LINK_CREATED)
    assert response.status_code == 200
    operations = await stored_operations(session, response.json()["event_id"])
    assert operations[1].payload["name"] == "extole_created_share_link"


async def test_extole_basic_connection_with_the_old_default_username_accepts_the_key_alone(
    database_url: str,
    driver: asyncpg.Connection,
    session: AsyncSession,
    client: httpx.AsyncClient,
) -> None:
    """Extole's HTTP_Basic key sends `Authorization:Basic <base64EncodedKey>` (extole/product-docs
    `technical/platform-integrations/webhooks/index.mdx`); before that migration such a connection had the
    username `extole` and answered 401."""
    tenant = await make_tenant(session)
    basic = await make_connection(session, tenant, auth_mode=WebhookAuthMode.BASIC)
    await asyncio.to_thread(migrate.downgrade, database_url, BEFORE)
    assert (
        await driver.fetchval("SELECT webhook_username FROM connections WHERE id = $1", basic.id)
        == "extole"
    )

    await asyncio.to_thread(migrate.upgrade, database_url, "head")

    response = await client.post(
        f"/v1/hooks/{basic.id}",
        content=json.dumps(bodies.SHARED).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(basic.webhook_secret.encode()).decode(),
        },
    )
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"

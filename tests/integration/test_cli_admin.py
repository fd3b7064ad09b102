"""`braze-bridge tenants create` and `tokens create`: the admin use cases, from the shell."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from braze_bridge.cli import app
from braze_bridge.security.tokens import hash_token
from tests.conftest import TEST_SECRET_KEY, asyncpg_dsn


def invoke(database_url: str, *args: str) -> Result:
    env = {"BRAZE_BRIDGE_DATABASE_URL": database_url, "BRAZE_BRIDGE_SECRET_KEY": TEST_SECRET_KEY}
    return CliRunner().invoke(app, list(args), env=env)


def fetch(database_url: str, query: str, *params: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await connection.fetch(query, *params)
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def test_tenants_create_prints_the_id_and_refuses_a_taken_slug(url: str) -> None:
    created = invoke(url, "tenants", "create", "acme", "--name", "Acme Inc")
    again = invoke(url, "tenants", "create", "acme")

    assert created.exit_code == 0, created.output
    tenant_id = uuid.UUID(created.stdout.strip())
    assert again.exit_code == 2
    assert "a tenant with slug 'acme' already exists" in again.output
    rows = fetch(url, "SELECT id, slug, name FROM tenants")
    assert [(r["id"], r["slug"], r["name"]) for r in rows] == [(tenant_id, "acme", "Acme Inc")]


def test_tokens_create_stores_only_the_hash_of_the_printed_token(url: str) -> None:
    tenant_id = uuid.UUID(invoke(url, "tenants", "create", "acme").stdout.strip())

    tenant = invoke(url, "tokens", "create", "--tenant", "acme", "--name", "ci")
    operator = invoke(url, "tokens", "create", "--operator")

    assert tenant.exit_code == 0, tenant.output
    assert operator.exit_code == 0, operator.output
    tenant_token, operator_token = tenant.stdout.strip(), operator.stdout.strip()
    assert tenant_token.startswith("bbt_")
    assert operator_token.startswith("bbo_")
    rows = fetch(url, "SELECT tenant_id, name, token_hash FROM api_tokens ORDER BY created_at")
    stored = [(r["tenant_id"], r["name"], bytes(r["token_hash"])) for r in rows]
    assert (tenant_id, "ci", hash_token(tenant_token)) in stored
    assert (None, "cli", hash_token(operator_token)) in stored


def test_tokens_create_for_an_unknown_tenant_exits_2_and_stores_nothing(url: str) -> None:
    before = fetch(url, "SELECT count(*) AS n FROM api_tokens")[0]["n"]

    result = invoke(url, "tokens", "create", "--tenant", "nope")
    both = invoke(url, "tokens", "create", "--tenant", "nope", "--operator")

    assert result.exit_code == 2
    assert "no tenant with slug 'nope'" in result.output
    assert both.exit_code == 2
    assert "give exactly one of --tenant SLUG or --operator" in both.output
    assert fetch(url, "SELECT count(*) AS n FROM api_tokens")[0]["n"] == before

"""Service foundation: migrations, readiness, bootstrap token, enum storage."""

from __future__ import annotations

import asyncio
import re
from enum import StrEnum

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from asgi_lifespan import LifespanManager
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime, create_app
from braze_bridge.db import migrate
from braze_bridge.db.models import ApiToken, Base
from braze_bridge.domain import statuses
from tests.conftest import OPERATOR_TOKEN


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        return {row[0] for row in rows}


class TestMigrations:
    async def test_down_to_base_and_back_up_to_head(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        model_tables = set(Base.metadata.tables)
        assert model_tables <= await table_names(engine)

        await asyncio.to_thread(migrate.downgrade, database_url, "base")
        assert await table_names(engine) == {"alembic_version"}

        await asyncio.to_thread(migrate.upgrade, database_url, "head")
        assert model_tables <= await table_names(engine)

    async def test_models_and_migrations_describe_the_same_schema(
        self, engine: AsyncEngine
    ) -> None:
        def diff(sync_conn: Connection) -> list[object]:
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []


class TestReadiness:
    async def test_ready_at_head(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "revision": migrate.head_revision()}

    async def test_not_ready_when_migrations_are_behind(
        self, client: httpx.AsyncClient, database_url: str
    ) -> None:
        await asyncio.to_thread(migrate.downgrade, database_url, "base")

        response = await client.get("/readyz")

        assert response.status_code == 503
        body = response.json()["error"]
        assert body["code"] == "not_ready"
        assert body["details"] == {
            "database_revision": None,
            "head_revision": migrate.head_revision(),
        }

    async def test_healthz_answers_without_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_unknown_path_and_wrong_method_use_the_error_shape(
        self, client: httpx.AsyncClient
    ) -> None:
        missing = await client.get("/v1/nothing-here")
        wrong = await client.delete("/healthz")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"


class TestBootstrapToken:
    async def test_restarts_keep_exactly_one_operator_token_with_that_value(
        self, runtime: Runtime, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        for _ in range(3):
            async with LifespanManager(create_app(runtime)):
                pass

        async with sessionmaker() as session:
            rows = (await session.scalars(select(ApiToken))).all()
        assert len(rows) == 1
        assert rows[0].tenant_id is None
        assert rows[0].is_bootstrap
        assert OPERATOR_TOKEN not in {rows[0].prefix, rows[0].token_hash.hex()}
        assert rows[0].prefix == OPERATOR_TOKEN[:8]


# Every contract enum stored in a column, and the column whose CHECK lists its words.
CHECKED_ENUMS: dict[type[StrEnum], tuple[str, str]] = {
    statuses.Source: ("connections", "source"),
    statuses.ConnectionState: ("connections", "state"),
    statuses.WebhookAuthMode: ("connections", "webhook_auth_mode"),
    statuses.EventStatus: ("events", "status"),
    statuses.OperationStatus: ("operations", "status"),
    statuses.ObjectKind: ("operations", "kind"),
    statuses.IdentityStatus: ("identities", "status"),
    statuses.ReplayStatus: ("replay_jobs", "status"),
    statuses.AlertKind: ("alerts", "kind"),
    statuses.AlertCondition: ("alert_webhooks", "condition"),
    statuses.AlertStatus: ("alerts", "status"),
}
# Never stored under a CHECK: health is computed on read; an attempt's per-object outcome is
# kept as diagnosis text.
UNCHECKED_ENUMS = {statuses.HealthStatus, statuses.AttemptOutcome}


def test_every_enum_of_the_contract_is_checked_or_named_unchecked() -> None:
    defined = {
        value
        for value in vars(statuses).values()
        if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
    }
    assert defined == set(CHECKED_ENUMS) | UNCHECKED_ENUMS


@pytest.mark.parametrize(("enum", "place"), list(CHECKED_ENUMS.items()), ids=lambda v: str(v))
async def test_database_accepts_exactly_the_contract_words(
    enum: type[StrEnum], place: tuple[str, str], session: AsyncSession
) -> None:
    table, column = place
    definitions = (
        await session.scalars(
            text(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "JOIN pg_class t ON t.oid = c.conrelid "
                "WHERE t.relname = :table AND c.contype = 'c'"
            ),
            {"table": table},
        )
    ).all()
    [definition] = [d for d in definitions if f"(({column})::text" in d]
    assert set(re.findall(r"'([^']*)'::character varying", definition)) == {m.value for m in enum}


async def test_an_unexpected_error_answers_500_in_the_contract_shape(runtime: Runtime) -> None:
    application = create_app(runtime)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in response.text

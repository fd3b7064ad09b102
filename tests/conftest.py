"""Real PostgreSQL for every test: a template migrated once, a fresh clone per test.

The server is `BRAZE_BRIDGE_TEST_DATABASE_URL` when set (CI), else an embedded one started for
the session. Cloning (~0.1 s) gives each test its own database, so code that opens its own
connections (workers, group commit, LISTEN/NOTIFY) is isolated too.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime, create_app
from braze_bridge.config import Settings
from braze_bridge.db import migrate
from braze_bridge.db.embedded import EmbeddedPostgres
from braze_bridge.db.engine import create_engine, create_sessionmaker

TEST_SECRET_KEY = "test-secret-key-not-for-production"
OPERATOR_TOKEN = "bbo_test-operator-token"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a database on the test server (used to create and drop other databases)."""
    given = os.environ.get("BRAZE_BRIDGE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bb-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def template_database(pg_server_url: str) -> AsyncIterator[str]:
    """A database migrated to head, cloned by every test; dropped with its clones at the end."""
    name = f"bb_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(asyncpg_dsn(pg_server_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await asyncio.to_thread(migrate.upgrade, with_database(pg_server_url, name))
    yield name
    admin = await asyncpg.connect(asyncpg_dsn(pg_server_url))
    try:
        for db in [*_created_clones, name]:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await admin.close()


_created_clones: list[str] = []


async def clone_database(pg_server_url: str, template: str) -> str:
    name = f"bb_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(pg_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    _created_clones.append(name)
    return with_database(pg_server_url, name)


@pytest.fixture
async def database_url(pg_server_url: str, template_database: str) -> str:
    """A fresh, migrated database of this test's own."""
    return await clone_database(pg_server_url, template_database)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        bootstrap_token=OPERATOR_TOKEN,
        allow_any_braze_url=False,
    )


@pytest.fixture
def runtime(settings: Settings, database_url: str) -> Runtime:
    return Runtime(settings, database_url, TEST_SECRET_KEY, embedded=False)


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[FastAPI]:
    application = create_app(runtime)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def terminate_other_backends(session: AsyncSession) -> None:
    """What a Postgres restart or a dropped network path does to every other connection."""
    await session.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    )
    await session.commit()

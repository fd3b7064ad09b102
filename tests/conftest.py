"""Real PostgreSQL for every test, in two tiers.

- **fresh database** (the default): a clone of a template migrated once, dropped when the
  test ends. Code that opens its own connections (workers, group commit, LISTEN/NOTIFY,
  subprocesses) sees the test's rows only here.
- **rollback** (`pytestmark = pytest.mark.rollback`): one database per session; each test
  runs inside a transaction on one connection, rolled back at teardown. The app under test
  gets a session factory bound to that connection (`join_transaction_mode="create_savepoint"`,
  so a service's commit releases a savepoint). For admin, ops and API-read tests only: the
  lifespan's own engine, group committers and lookup see committed rows, never the test's,
  and `now()` is the transaction's start. So whatever ingests a webhook, delivers, reads
  through `context.engine` (content, preview), listens for NOTIFY or compares `now()` with
  rows the test made stays fresh: mark that test `@pytest.mark.fresh_database` or have it ask
  for the `fresh_database` fixture.

The server is `BRAZE_BRIDGE_TEST_DATABASE_URL` when set (CI), else an embedded one started for
the session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime, create_app
from braze_bridge.config import Settings
from braze_bridge.db import migrate
from braze_bridge.db.embedded import EmbeddedPostgres
from braze_bridge.db.engine import create_engine, create_sessionmaker
from tests.support.databases import (
    DatabaseDropper,
    asyncpg_dsn,
    drop_statement,
    server_execute,
    with_database,
)
from tests.support.state import restore_global_state

pytest_plugins = ["tests.support.tenancy"]

__all__ = [
    "OPERATOR_TOKEN",
    "TEST_SECRET_KEY",
    "AppStarter",
    "asyncpg_dsn",
    "terminate_other_backends",
]

TEST_SECRET_KEY = "test-secret-key-not-for-production"
OPERATOR_TOKEN = "bbo_test-operator-token"
ROLLBACK_MARK = "rollback"


def in_rollback_tier(request: pytest.FixtureRequest) -> bool:
    """Marked `rollback`, and neither marked `fresh_database` nor asking for that fixture."""
    node = request.node
    return (
        node.get_closest_marker(ROLLBACK_MARK) is not None
        and node.get_closest_marker("fresh_database") is None
        and "fresh_database" not in request.fixturenames
    )


@pytest.fixture(autouse=True)
def _global_state() -> Iterator[None]:
    """Logging and metrics are process-wide; what a test changes is put back after it."""
    with restore_global_state():
        yield


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


# Session fixtures are synchronous (each runs its own short event loop), so no test has to
# share an event loop with the session.
@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A database migrated to head once per session; the fresh tier clones it."""
    name = f"bb_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(server_execute(pg_server_url, f'CREATE DATABASE "{name}"'))
    try:
        migrate.upgrade(with_database(pg_server_url, name))
        yield name
    finally:
        asyncio.run(server_execute(pg_server_url, drop_statement(name)))


@pytest.fixture(scope="session")
def rollback_database(pg_server_url: str, template_database: str) -> Iterator[str]:
    """The rollback tier's one database; nothing a test writes in it is ever committed."""
    name = f"bb_rb_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    create = f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'
    asyncio.run(server_execute(pg_server_url, create))
    try:
        yield with_database(pg_server_url, name)
    finally:
        asyncio.run(server_execute(pg_server_url, drop_statement(name)))


@pytest.fixture(scope="session")
def database_dropper(pg_server_url: str) -> Iterator[DatabaseDropper]:
    dropper = DatabaseDropper(pg_server_url)
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture
async def fresh_database(
    pg_server_url: str, template_database: str, database_dropper: DatabaseDropper
) -> AsyncIterator[str]:
    """A migrated database of this test's own, dropped (with any open connection) at teardown."""
    name = f"bb_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await server_execute(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield with_database(pg_server_url, name)
    finally:
        database_dropper.drop(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """This test's database: its own clone, or the rollback tier's shared one."""
    name = "rollback_database" if in_rollback_tier(request) else "fresh_database"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def rollback_connection(rollback_database: str) -> AsyncIterator[AsyncConnection]:
    """One connection inside a transaction that is rolled back when the test ends."""
    eng = create_engine(rollback_database, pool_size=1)
    try:
        async with eng.connect() as conn:
            outer = await conn.begin()
            try:
                yield conn
            finally:
                await outer.rollback()
    finally:
        await eng.dispose()


@pytest.fixture
async def engine(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[AsyncEngine]:
    if in_rollback_tier(request):
        pytest.fail(
            "`engine` commits outside the test's transaction; in a `rollback` module use "
            "`session`/`sessionmaker`, or ask for `fresh_database`"
        )
    eng = create_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(request: pytest.FixtureRequest) -> async_sessionmaker[AsyncSession]:
    if in_rollback_tier(request):
        conn: AsyncConnection = request.getfixturevalue("rollback_connection")
        return async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
    eng: AsyncEngine = request.getfixturevalue("engine")
    return create_sessionmaker(eng)


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
def request_sessionmaker(request: pytest.FixtureRequest) -> async_sessionmaker[AsyncSession] | None:
    """The rollback tier's bound factory for the app's requests; None in the fresh tier."""
    if not in_rollback_tier(request):
        return None
    bound: async_sessionmaker[AsyncSession] = request.getfixturevalue("sessionmaker")
    return bound


AppStarter = Callable[[Runtime], AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def start_app(request_sessionmaker: async_sessionmaker[AsyncSession] | None) -> AppStarter:
    """`async with start_app(runtime) as app:` the app with its lifespan, on this test's tier."""

    @asynccontextmanager
    async def start(runtime: Runtime) -> AsyncIterator[FastAPI]:
        application = create_app(runtime)
        async with LifespanManager(application):
            if request_sessionmaker is not None:
                # Requests run on the test's connection, inside its transaction.
                context = application.state.context
                application.state.context = dataclasses.replace(
                    context, sessionmaker=request_sessionmaker
                )
            yield application

    return start


@pytest.fixture
async def app(runtime: Runtime, start_app: AppStarter) -> AsyncIterator[FastAPI]:
    async with start_app(runtime) as application:
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

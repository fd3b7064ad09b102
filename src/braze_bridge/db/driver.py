"""The one way hot statements reach Postgres: named SQL from `db/sql/*.sql`, run on asyncpg.

The rule: admin CRUD and cold reads use the ORM or Core; every hot statement (ingest batch,
claim, settle, roll-up, attempts, rate buckets, connection reads for ingest and delivery,
identities, user values) is a named query in `db/sql/`, under a `-- name: xyz` header, run
here with `$n` parameters on the session's own asyncpg connection (same transaction).
asyncpg prepares and caches each statement; SQLAlchemy's per-row parameter and result
handling is skipped. No `text()` in repositories: a statement is Core or named SQL.

Public repository functions take an `AsyncSession`. Only the two held-connection paths (group
commit, connection lookup) pass an `asyncpg.Connection`, through functions suffixed `_on_driver`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# A line `-- include: xyz` inside a query is replaced by the named part `xyz` (a shared CTE).
_INCLUDE = re.compile(r"^-- include: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """`-- name: xyz` starts a query; it runs to the next header. Comments stay in the text."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


@cache
def queries() -> Mapping[str, str]:
    """Every named query of the package, loaded once."""
    found: dict[str, str] = {}
    for resource in sorted(files("braze_bridge.db.sql").iterdir(), key=lambda r: r.name):
        if resource.name.endswith(".sql"):
            for name, sql in parse_queries(resource.read_text(encoding="utf-8")).items():
                if name in found:
                    raise ValueError(f"query {name!r} defined twice ({resource.name})")
                found[name] = sql
    return {name: _INCLUDE.sub(lambda m: found[m.group(1)], sql) for name, sql in found.items()}


def query(name: str) -> str:
    return queries()[name]


async def driver_of(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `conn`, inside `conn`'s transaction.

    SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement it runs;
    a statement sent straight to the driver before that would run outside the transaction.
    """
    raw = await conn.get_raw_connection()
    driver = cast(asyncpg.Connection, raw.driver_connection)
    if not driver.is_in_transaction():  # SQLAlchemy begins (or autobegins) here
        await conn.exec_driver_sql("SELECT 1")
    return driver


async def session_driver(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction."""
    return await driver_of(await session.connection())


async def fetch(session: AsyncSession, name: str, *args: Any) -> list[asyncpg.Record]:
    return await fetch_on_driver(await session_driver(session), name, *args)


async def fetchrow(session: AsyncSession, name: str, *args: Any) -> asyncpg.Record | None:
    driver = await session_driver(session)
    return await driver.fetchrow(query(name), *args)


async def fetchval(session: AsyncSession, name: str, *args: Any) -> Any:
    driver = await session_driver(session)
    return await driver.fetchval(query(name), *args)


async def execute(session: AsyncSession, name: str, *args: Any) -> int:
    """Run a statement; the number of rows it changed."""
    driver = await session_driver(session)
    return rowcount(await driver.execute(query(name), *args))


async def fetch_on_driver(
    driver: asyncpg.Connection, name: str, *args: Any
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await driver.fetch(query(name), *args)
    return rows


def rowcount(status: str) -> int:
    """asyncpg's command tag (`UPDATE 3`, `INSERT 0 2`) as a row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class HeldConnection:
    """One pooled connection kept checked out by a long-lived task; replaced when it breaks.

    For the ingest hot paths (group commit, connection lookups): checking a connection out per
    use costs SQLAlchemy's liveness ping (BEGIN; ; ROLLBACK) every time. The holder drives the
    asyncpg connection directly, transactions included, and closes it with `release()`.
    """

    def __init__(self, engine: AsyncEngine, settings: Mapping[str, str] | None = None) -> None:
        """`settings`: server settings for as long as the connection is held (reset after)."""
        self._engine = engine
        self._settings = dict(settings or {})
        self._conn: AsyncConnection | None = None
        self._driver: asyncpg.Connection | None = None

    async def driver(self) -> asyncpg.Connection:
        if self._driver is None:
            conn = await self._engine.connect()
            try:
                raw = await conn.get_raw_connection()
                driver = cast(asyncpg.Connection, raw.driver_connection)
                for name, value in self._settings.items():
                    await driver.execute("SELECT set_config($1, $2, false)", name, value)
            except BaseException:
                await conn.close()
                raise
            self._conn, self._driver = conn, driver
        return self._driver

    async def discard_if_broken(self) -> bool:
        """Drop a connection that died (server restart, network); True if it did."""
        if self._driver is None or not self._driver.is_closed():
            return False
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.invalidate()
            await conn.close()
        return True

    async def release(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn, self._driver = None, None
        if conn is None:
            return
        try:
            if self._settings and driver is not None and not driver.is_closed():
                await driver.execute("RESET ALL")  # back to the pool as it came
        finally:
            await conn.close()

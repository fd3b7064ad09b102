"""The asyncpg connection under SQLAlchemy, for the hot paths (ingest writes, the outbox).

SQLAlchemy's per-row parameter and result handling costs several microseconds a row; ingest
batches and outbox rounds move hundreds of rows, so they talk to asyncpg directly: same
connection, same transaction, statements prepared and cached by asyncpg.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession


async def connection_driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `conn`, inside `conn`'s transaction.

    SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement it runs;
    a statement sent straight to the driver before that would run outside the transaction.
    """
    raw = await conn.get_raw_connection()
    driver = cast(asyncpg.Connection, raw.driver_connection)
    if not driver.is_in_transaction():  # SQLAlchemy begins (or autobegins) here
        await conn.exec_driver_sql("SELECT 1")
    return driver


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction."""
    return await connection_driver(await session.connection())


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

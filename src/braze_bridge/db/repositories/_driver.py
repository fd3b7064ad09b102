"""The asyncpg connection under SQLAlchemy, for the hot paths (ingest writes, the outbox).

SQLAlchemy's per-row parameter and result handling costs several microseconds a row; ingest
batches and outbox rounds move hundreds of rows, so they talk to asyncpg directly: same
connection, same transaction, statements prepared and cached by asyncpg.
"""

from __future__ import annotations

from typing import cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


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

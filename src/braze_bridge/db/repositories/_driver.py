"""The asyncpg connection under a SQLAlchemy session, for the delivery hot path.

SQLAlchemy's result handling costs several microseconds per row; the outbox statements move
hundreds of rows per round, so they talk to asyncpg directly (same connection, same
transaction, prepared statements cached by asyncpg).
"""

from __future__ import annotations

from typing import cast

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_BEGIN = text("SELECT 1")


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction.

    SQLAlchemy's asyncpg adapter opens its transaction lazily on the first statement; running
    one through the session first guarantees raw statements never run in autocommit.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = cast(asyncpg.Connection, raw.driver_connection)
    if not driver.is_in_transaction():
        await session.execute(_BEGIN)
    return driver

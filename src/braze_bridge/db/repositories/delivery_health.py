"""The connection row's health facts a delivery round writes: its last error, its dead count.

The auth and rate-limit holds (repositories/connections.py) write their own messages.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.domain.statuses import ConnectionState


async def record_error(session: AsyncSession, connection_id: uuid.UUID, message: str) -> None:
    await driver.execute(session, "record_connection_error", connection_id, message)


async def clear_error(session: AsyncSession, connection_id: uuid.UUID) -> None:
    await driver.execute(
        session, "clear_connection_error", connection_id, ConnectionState.ACTIVE.value
    )


async def count_dead(session: AsyncSession, connection_id: uuid.UUID, dead: int) -> None:
    await driver.execute(session, "count_dead_objects", connection_id, dead)

"""What Braze holds per user and attribute, for Antavo `changed_only` (design: docs/antavo.md).

Two tables: `user_values` holds the last value Braze *accepted*; `user_values_pending` holds
every value enqueued but not yet settled, one row per (operation, attribute). The mapping
compares against the newest pending value, else the accepted one, so A → B → A in flight still
ends with A in Braze; settling moves a row to `user_values` (accepted) or drops it (failed), so
a failed delivery never counts as sent and the next event resends the value.

Call order (the lead wires these in):
  ingest, inside its transaction:  load_known_values → map → insert operations → record_enqueued
  worker settle, in its transaction: record_accepted(delivered ids) / record_failed(terminal ids)
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.db.models import DataPointSavings, PendingUserValue, UserValue

# First key of the two-key advisory lock: "Antv". Keeps our locks apart from anyone else's.
_LOCK_NAMESPACE = 0x416E7476
_SAVINGS_SLOTS = 16


def _user_lock_key(connection_id: uuid.UUID, user_key: str) -> int:
    # A 32-bit key: a collision only makes two users wait for each other, never a wrong answer.
    return zlib.crc32(f"{connection_id}:{user_key}".encode()) - 2**31


async def load_known_values(
    session: AsyncSession, connection_id: uuid.UUID, user_key: str, *, lock: bool = True
) -> dict[str, Any]:
    """Per Braze attribute: the newest value enqueued and unsettled, else the last accepted.

    With `lock` (ingest), takes a transaction-scoped advisory lock on (connection, user) first,
    so two webhooks for one member are compared and enqueued one after the other; the lock is
    released by the caller's commit. Needs READ COMMITTED (Postgres's default). `lock=False` is
    for read-only callers such as preview.
    """
    if lock:
        await session.execute(
            select(
                func.pg_advisory_xact_lock(_LOCK_NAMESPACE, _user_lock_key(connection_id, user_key))
            )
        )
    rows = await driver.fetch(session, "known_user_values", connection_id, user_key)
    return {row["attribute"]: row["value"] for row in rows}


async def record_enqueued(
    session: AsyncSession,
    connection_id: uuid.UUID,
    user_key: str,
    operations: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    data_points_saved: int = 0,
) -> int:
    """Remember the values just enqueued: `(operation id, attributes payload)` per attribute
    operation the mapping produced (payload keys starting with `_` are request flags, skipped).

    Also adds `data_points_saved` (from `Mapped.data_points_saved`) to the connection's count.
    Returns the number of pending values recorded.
    """
    rows = [
        {
            "operation_id": operation_id,
            "attribute": attribute,
            "connection_id": connection_id,
            "user_key": user_key,
            "value": value,
        }
        for operation_id, payload in operations
        for attribute, value in payload.items()
        if not attribute.startswith("_")
    ]
    if rows:
        await session.execute(insert(PendingUserValue), rows)
    if data_points_saved > 0:
        slot = zlib.crc32(user_key.encode()) % _SAVINGS_SLOTS
        statement = insert(DataPointSavings).values(
            connection_id=connection_id, slot=slot, saved=data_points_saved
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[DataPointSavings.connection_id, DataPointSavings.slot],
                set_={
                    "saved": DataPointSavings.saved + statement.excluded.saved,
                    "updated_at": func.now(),
                },
            )
        )
    return len(rows)


async def record_accepted(session: AsyncSession, operation_ids: Sequence[int]) -> int:
    """Braze accepted these operations: their values become the recorded ones. Returns how many
    attribute values were recorded. Operations without pending values are ignored, so the worker
    may pass every delivered id of any connection."""
    if not operation_ids:
        return 0
    return await driver.execute(session, "promote_user_values", list(operation_ids))


async def record_failed(session: AsyncSession, operation_ids: Sequence[int]) -> int:
    """These operations ended without Braze applying them (failed, dead, skipped): forget their
    pending values, so the comparison falls back to what Braze has and the next event resends.
    Not for retries: an operation that will be retried keeps its pending values."""
    if not operation_ids:
        return 0
    result = await session.execute(
        delete(PendingUserValue).where(PendingUserValue.operation_id.in_(list(operation_ids)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def data_points_saved(session: AsyncSession, connection_id: uuid.UUID) -> int:
    """Attribute writes `changed_only` has left out for this connection so far."""
    total = await session.scalar(
        select(func.coalesce(func.sum(DataPointSavings.saved), 0)).where(
            DataPointSavings.connection_id == connection_id
        )
    )
    return int(total or 0)


async def forget_user_values(
    session: AsyncSession, connection_id: uuid.UUID, user_key: str | None = None
) -> int:
    """Drop recorded accepted values (one user, or the whole connection) so the next event
    sends every mapped field again: for a switch into `changed_only`, or after Braze profiles
    were changed by something else. Pending values stay: their operations are still in flight."""
    statement = delete(UserValue).where(UserValue.connection_id == connection_id)
    if user_key is not None:
        statement = statement.where(UserValue.user_key == user_key)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)

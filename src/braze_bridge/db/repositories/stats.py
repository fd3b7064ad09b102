"""Hourly traffic figures of a connection and their rollup (`connection_stats_hourly`).

Named SQL in `db/sql/stats.sql`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.domain.ids import uuid7_floor

HOUR = timedelta(hours=1)


@dataclass(slots=True)
class HourCounts:
    hour: datetime
    received: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    answers_2xx: int = 0
    answers_4xx: int = 0
    answers_429: int = 0
    answers_5xx: int = 0
    answers_network: int = 0


COUNT_NAMES = tuple(f.name for f in fields(HourCounts) if f.name != "hour")


async def count_hours(
    session: AsyncSession, connection_id: uuid.UUID, hours: Sequence[datetime]
) -> list[HourCounts]:
    """Count the UTC hours `hours` (ascending, contiguous) from the event and attempt logs."""
    if not hours:
        return []
    counted = {hour: HourCounts(hour) for hour in hours}
    received = await driver.fetch(
        session,
        "stats_received",
        connection_id,
        list(hours),
        [uuid7_floor(hour) for hour in hours],
        [uuid7_floor(hour + HOUR) for hour in hours],
    )
    for row in received:
        counted[row["hour"]].received = int(row["received"])
    attempts = await driver.fetch(
        session, "stats_attempts", connection_id, hours[0], hours[-1] + HOUR
    )
    for row in attempts:
        bucket = counted.get(row["hour"])
        if bucket is None:
            continue
        for name in COUNT_NAMES:
            if name != "received":
                setattr(bucket, name, int(row[name]))
    return [counted[hour] for hour in hours]


async def stored_hours(
    session: AsyncSession, connection_id: uuid.UUID, start: datetime, end: datetime
) -> dict[datetime, HourCounts]:
    rows = await driver.fetch(session, "stats_stored_hours", connection_id, start, end)
    return {
        row["hour"]: HourCounts(row["hour"], *(int(row[name]) for name in COUNT_NAMES))
        for row in rows
    }


async def store_hours(
    session: AsyncSession, connection_id: uuid.UUID, counted: Sequence[HourCounts]
) -> None:
    if not counted:
        return
    await driver.execute(
        session,
        "stats_store_hours",
        connection_id,
        [c.hour for c in counted],
        *([getattr(c, name) for c in counted] for name in COUNT_NAMES),
    )

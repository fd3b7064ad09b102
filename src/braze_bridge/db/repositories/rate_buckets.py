"""Token buckets in Postgres, so every worker on every host shares one budget per workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Take:
    granted: int
    tokens_left: float
    blocked_until: datetime | None
    at: datetime


# Refill by elapsed time, then grant what is there, in one locked row update. The inner
# SELECT ... FOR UPDATE reads the latest committed row after any concurrent taker commits, so
# concurrent takes serialize on the row and never grant more than the bucket held.
TAKE_SQL = text(
    """
UPDATE rate_buckets AS b
SET tokens = s.avail - s.granted, updated_at = s.at,
    capacity = :capacity, refill_per_second = :rate
FROM (
    SELECT r.key, r.at, r.avail, r.blocked_until,
           CASE WHEN r.blocked_until > r.at THEN 0
                ELSE LEAST(:wanted, floor(r.avail))::int END AS granted
    FROM (
        SELECT key, clock_timestamp() AS at, blocked_until,
               LEAST(CAST(:capacity AS float8),
                     tokens + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at))
                              * CAST(:rate AS float8)) AS avail
        FROM rate_buckets WHERE key = :key
        FOR UPDATE
    ) r
) s
WHERE b.key = s.key
RETURNING s.granted, s.avail - s.granted, s.blocked_until, s.at
"""
)

CREATE_SQL = text(
    """
INSERT INTO rate_buckets (key, tokens, capacity, refill_per_second, updated_at)
VALUES (:key, :capacity, :capacity, :rate, clock_timestamp())
ON CONFLICT (key) DO NOTHING
"""
)


async def take_tokens(
    session: AsyncSession, key: str, *, wanted: int, capacity: float, refill_per_second: float
) -> Take:
    """Take up to `wanted` tokens (none while the bucket is blocked by a 429)."""
    params = {"key": key, "wanted": wanted, "capacity": capacity, "rate": refill_per_second}
    row = (await session.execute(TAKE_SQL, params)).first()
    if row is None:
        await session.execute(CREATE_SQL, params)
        row = (await session.execute(TAKE_SQL, params)).one()
    return Take(int(row[0]), float(row[1]), row[2], row[3])


async def block_bucket(session: AsyncSession, key: str, until: datetime) -> None:
    """Braze answered 429: nobody takes from this workspace's bucket before `until`."""
    await session.execute(
        text(
            """
UPDATE rate_buckets
SET blocked_until = GREATEST(COALESCE(blocked_until, :until), :until)
WHERE key = :key
"""
        ),
        {"key": key, "until": until},
    )

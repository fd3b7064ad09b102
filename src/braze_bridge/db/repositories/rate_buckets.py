"""Token buckets in Postgres, so every worker on every host shares one budget per workspace.

Named SQL in `db/sql/rate_buckets.sql`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver


@dataclass(frozen=True, slots=True)
class Take:
    granted: int
    tokens_left: float
    blocked_until: datetime | None
    at: datetime


async def take_tokens(
    session: AsyncSession, key: str, *, wanted: int, capacity: float, refill_per_second: float
) -> Take:
    """Take up to `wanted` tokens (none while the bucket is blocked by a 429)."""
    capacity, rate = float(capacity), float(refill_per_second)
    row = await driver.fetchrow(session, "take_tokens", key, wanted, capacity, rate)
    if row is None:
        await driver.execute(session, "create_bucket", key, capacity, rate)
        row = await driver.fetchrow(session, "take_tokens", key, wanted, capacity, rate)
        assert row is not None  # noqa: S101 - the bucket exists now
    return Take(int(row[0]), float(row[1]), row[2], row[3])


async def block_bucket(session: AsyncSession, key: str, until: datetime) -> None:
    """Braze answered 429: nobody takes from this workspace's bucket before `until`."""
    await driver.execute(session, "block_bucket", key, until)

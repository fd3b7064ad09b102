"""Braze-aware rate limits: one token bucket per Braze workspace and endpoint, in Postgres.

A workspace is the connection's REST endpoint + API key, so two connections (or tenants) that
share a key share its budget, and every worker on every host draws from the same bucket. A
library bucket (aiolimiter and friends) keeps state in process memory, which cannot be shared
across hosts, and pyrate-limiter's Postgres bucket needs psycopg and a second pool next to
asyncpg; hence the hand-written, one-statement bucket in db/repositories/rate_buckets.py.

A 429 is not recorded here but on the connection (`connections.rate_limited_until`), where the
claim and health read it; the bucket's own block is the pacing pause an accepted answer asks
for when its `X-RateLimit-Remaining` is 0.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.braze.models import DEFAULT_EXPORT_RATE_PRESET, EXPORT_RATE_PRESETS
from braze_bridge.db.repositories import rate_buckets
from braze_bridge.db.repositories.connections import DeliveryConnection

# Braze defaults (braze-inc/braze-docs `_docs/_api/api_limits.md`): /users/track burst limit
# 3,000 requests per 3 seconds (accounts with data points in their pricing); /users/export/ids
# as for workspaces onboarded on or after 2024-08-22 (250 a minute). A connection's `limits` (numbers, or an export preset stored as its numbers)
# replace them.
DEFAULT_TRACK_LIMIT, DEFAULT_TRACK_WINDOW = 3000, 3
DEFAULT_EXPORT_LIMIT, DEFAULT_EXPORT_WINDOW = EXPORT_RATE_PRESETS[DEFAULT_EXPORT_RATE_PRESET]
# /users/identify shares one budget with /users/alias/new, /users/merge, /users/delete and
# /users/alias/update: 20,000 requests a minute (braze-inc/braze-docs `_docs/_api/api_limits.md`,
# `_docs/_api/endpoints/user_data/post_user_identify.md`, "Rate limit").
DEFAULT_USERS_ADMIN_LIMIT, DEFAULT_USERS_ADMIN_WINDOW = 20_000, 60


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    capacity: float
    refill_per_second: float


def _workspace(connection: DeliveryConnection, api_key: str) -> str:
    # The key itself never reaches the database: a digest names the workspace.
    digest = hashlib.sha256(f"{connection.rest_endpoint}\0{api_key}".encode()).hexdigest()
    return digest[:40]


def track_bucket(connection: DeliveryConnection, api_key: str) -> Bucket:
    limit = connection.track_rate_limit or DEFAULT_TRACK_LIMIT
    window = connection.track_rate_window_seconds or DEFAULT_TRACK_WINDOW
    return Bucket(f"track:{_workspace(connection, api_key)}", float(limit), limit / window)


def export_bucket(connection: DeliveryConnection, api_key: str) -> Bucket:
    limit = connection.export_rate_limit or DEFAULT_EXPORT_LIMIT
    window = connection.export_rate_window_seconds or DEFAULT_EXPORT_WINDOW
    return Bucket(f"export:{_workspace(connection, api_key)}", float(limit), limit / window)


def users_admin_bucket(connection: DeliveryConnection, api_key: str) -> Bucket:
    """Braze's shared identify / alias / merge / delete budget of the workspace."""
    limit, window = DEFAULT_USERS_ADMIN_LIMIT, DEFAULT_USERS_ADMIN_WINDOW
    return Bucket(f"users-admin:{_workspace(connection, api_key)}", float(limit), limit / window)


@dataclass(frozen=True, slots=True)
class Permit:
    """`granted` tokens now; when fewer than asked, `retry_in` says when to ask again."""

    granted: int
    retry_in: float


class RateLimiter:
    """Takes tokens from shared buckets, waiting in-process only for short gaps."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_inline_wait: float = 2.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.max_inline_wait = max_inline_wait

    async def take(self, bucket: Bucket, wanted: int) -> Permit:
        """One attempt: tokens granted now, and how long until the next one."""
        async with self._sessionmaker.begin() as session:
            take = await rate_buckets.take_tokens(
                session,
                bucket.key,
                wanted=wanted,
                capacity=bucket.capacity,
                refill_per_second=bucket.refill_per_second,
            )
        if take.granted >= wanted:
            return Permit(take.granted, 0.0)
        waits = [max(0.0, (1.0 - take.tokens_left) / bucket.refill_per_second)]
        if take.blocked_until is not None and take.blocked_until > take.at:
            waits.append((take.blocked_until - take.at).total_seconds())
        return Permit(take.granted, max(waits))

    async def acquire(
        self, bucket: Bucket, wanted: int, stop: asyncio.Event | None = None
    ) -> Permit:
        """Collect up to `wanted` tokens, sleeping through waits shorter than `max_inline_wait`.

        Returns fewer than `wanted` when the next token is further away than that; the caller
        puts the rest of its work back in the queue for `retry_in` seconds instead of holding it.
        """
        granted = 0
        while True:
            permit = await self.take(bucket, wanted - granted)
            granted += permit.granted
            if granted >= wanted:
                return Permit(granted, 0.0)
            if permit.retry_in > self.max_inline_wait or (stop is not None and stop.is_set()):
                return Permit(granted, permit.retry_in)
            metrics.rate_limit_wait(permit.retry_in)
            await asyncio.sleep(max(permit.retry_in, 0.001))

    async def block(self, bucket: Bucket, until: datetime) -> None:
        """Braze said the workspace's window is spent: nobody takes from it before `until`."""
        async with self._sessionmaker.begin() as session:
            await rate_buckets.block_bucket(session, bucket.key, until)

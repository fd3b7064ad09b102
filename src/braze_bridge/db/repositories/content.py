"""The Connected Content projection: per-user share link, share code and recent rewards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from braze_bridge.db.models import ContentProfile
from braze_bridge.db.repositories.events import clean_text, jsonb_safe, jsonb_text
from braze_bridge.domain.content import ContentUpdate, merge_rewards

# Run on the asyncpg connection (like events.store_events): one statement per step whatever the
# batch size, keys passed as one array per column.
_CREATE_PROFILES_SQL = """
INSERT INTO content_profiles (connection_id, external_id, rewards)
SELECT connection_id, external_id, '[]'::jsonb
FROM unnest($1::uuid[], $2::text[]) AS k(connection_id, external_id)
ON CONFLICT DO NOTHING
"""

_LOCK_PROFILES_SQL = """
SELECT p.connection_id, p.external_id, p.share_link, p.share_code, p.rewards::text AS rewards
FROM content_profiles AS p
JOIN unnest($1::uuid[], $2::text[]) AS k(connection_id, external_id)
  ON p.connection_id = k.connection_id AND p.external_id = k.external_id
ORDER BY p.connection_id, p.external_id
FOR UPDATE OF p
"""

_UPDATE_PROFILES_SQL = """
UPDATE content_profiles AS p
SET share_link = u.share_link, share_code = u.share_code, rewards = u.rewards::jsonb,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS u(connection_id, external_id, share_link, share_code, rewards)
WHERE p.connection_id = u.connection_id AND p.external_id = u.external_id
"""


@dataclass(frozen=True, slots=True)
class ContentView:
    share_link: str | None
    share_code: str | None
    rewards: list[dict[str, Any]]
    updated_at: datetime


async def apply_content_updates(
    driver: asyncpg.Connection, updates: Sequence[tuple[uuid.UUID, ContentUpdate]]
) -> None:
    """Fold updates into profiles inside the transaction open on `driver`.

    Rows are created first, then locked in key order and merged, so concurrent batches that
    touch one user serialise on its row instead of overwriting each other's merge.
    """
    if not updates:
        return
    keys = sorted(
        {(connection_id, clean_text(u.external_id, 1024)) for connection_id, u in updates},
        key=lambda k: (str(k[0]), k[1]),
    )
    key_columns = [[c for c, _ in keys], [e for _, e in keys]]
    await driver.execute(_CREATE_PROFILES_SQL, *key_columns)
    rows = await driver.fetch(_LOCK_PROFILES_SQL, *key_columns)
    profiles = {
        (row["connection_id"], row["external_id"]): {
            "share_link": row["share_link"],
            "share_code": row["share_code"],
            # jsonb text is valid UTF-8 JSON, which orjson reads several times faster.
            "rewards": list(orjson.loads(row["rewards"]) or []),
        }
        for row in rows
    }
    for connection_id, change in updates:
        profile = profiles[(connection_id, clean_text(change.external_id, 1024))]
        if change.share_link is not None:
            profile["share_link"] = change.share_link
        if change.share_code is not None:
            profile["share_code"] = change.share_code
        if change.reward is not None:
            profile["rewards"] = merge_rewards(profile["rewards"], change.reward)
    written = [
        (
            connection_id,
            external_id,
            jsonb_safe(profile["share_link"]),
            clean_text(profile["share_code"], 255) if profile["share_code"] else None,
            jsonb_text(profile["rewards"]),
        )
        for (connection_id, external_id), profile in profiles.items()
    ]
    await driver.execute(
        _UPDATE_PROFILES_SQL, *[list(column) for column in zip(*written, strict=True)]
    )


async def get_content(
    conn: AsyncConnection, connection_id: uuid.UUID, external_id: str
) -> ContentView | None:
    row = (
        await conn.execute(
            select(
                ContentProfile.share_link,
                ContentProfile.share_code,
                ContentProfile.rewards,
                ContentProfile.updated_at,
            ).where(
                ContentProfile.connection_id == connection_id,
                ContentProfile.external_id == external_id,
            )
        )
    ).first()
    if row is None:
        return None
    return ContentView(row.share_link, row.share_code, list(row.rewards or []), row.updated_at)

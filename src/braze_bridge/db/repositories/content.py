"""Reading the Connected Content projection: per-user share link, share code, recent rewards.

Ingest writes it in the same statement as the events (`events.store_events`); the reward merge
is the SQL function `braze_bridge_merge_rewards` (migration 0002)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from braze_bridge.db.models import ContentProfile


@dataclass(frozen=True, slots=True)
class ContentView:
    share_link: str | None
    share_code: str | None
    rewards: list[dict[str, Any]]
    updated_at: datetime


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

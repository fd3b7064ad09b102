"""The Connected Content projection: per-user share link, share code and recent rewards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from braze_bridge.db.models import ContentProfile
from braze_bridge.db.repositories.events import clean_text, jsonb_safe
from braze_bridge.domain.content import ContentUpdate, merge_rewards

# One cached statement run as executemany for every profile a batch touched.
_UPDATE_PROFILE = (
    update(ContentProfile)
    .where(
        ContentProfile.connection_id == bindparam("key_connection_id"),
        ContentProfile.external_id == bindparam("key_external_id"),
    )
    .values(
        share_link=bindparam("share_link"),
        share_code=bindparam("share_code"),
        rewards=bindparam("rewards", type_=ContentProfile.__table__.c.rewards.type),
        updated_at=func.now(),
    )
)


@dataclass(frozen=True, slots=True)
class ContentView:
    share_link: str | None
    share_code: str | None
    rewards: list[dict[str, Any]]
    updated_at: datetime


async def apply_content_updates(
    conn: AsyncConnection, updates: Sequence[tuple[uuid.UUID, ContentUpdate]]
) -> None:
    """Fold updates into profiles inside the caller's transaction.

    Rows are created first, then locked in key order and merged, so concurrent batches that
    touch one user serialise on its row instead of overwriting each other's merge.
    """
    if not updates:
        return
    keys = sorted(
        {(connection_id, clean_text(u.external_id, 1024)) for connection_id, u in updates},
        key=lambda k: (str(k[0]), k[1]),
    )
    await conn.execute(
        insert(ContentProfile).on_conflict_do_nothing(),
        [{"connection_id": c, "external_id": e, "rewards": []} for c, e in keys],
    )
    rows = await conn.execute(
        select(ContentProfile)
        .where(tuple_(ContentProfile.connection_id, ContentProfile.external_id).in_(keys))
        .order_by(ContentProfile.connection_id, ContentProfile.external_id)
        .with_for_update()
    )
    profiles = {
        (row.connection_id, row.external_id): {
            "share_link": row.share_link,
            "share_code": row.share_code,
            "rewards": list(row.rewards or []),
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
    await conn.execute(
        _UPDATE_PROFILE,
        [
            {
                "key_connection_id": connection_id,
                "key_external_id": external_id,
                "share_link": jsonb_safe(profile["share_link"]),
                "share_code": (
                    clean_text(profile["share_code"], 255) if profile["share_code"] else None
                ),
                "rewards": jsonb_safe(profile["rewards"]),
            }
            for (connection_id, external_id), profile in profiles.items()
        ],
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

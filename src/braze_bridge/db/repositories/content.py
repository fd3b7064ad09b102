"""Reading the Connected Content projection: per-user share link, share code, recent rewards.

Ingest writes it in the same statement as the events (`connected_content_projection` in
db/sql/ingest.sql): the share link and code in `content_profiles`, each reward as a row of
`content_rewards`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import ContentProfile, ContentReward
from braze_bridge.domain.content import MAX_REWARDS_KEPT, RewardSnapshot


@dataclass(frozen=True, slots=True)
class ContentView:
    share_link: str | None
    share_code: str | None
    rewards: list[dict[str, Any]]


async def get_content(
    session: AsyncSession, connection_id: uuid.UUID, external_id: str
) -> ContentView | None:
    """The user's profile, newest rewards first (equal times: least recently changed first);
    None when ingest never wrote anything for this user."""
    profile = (
        await session.execute(
            select(ContentProfile.share_link, ContentProfile.share_code).where(
                ContentProfile.connection_id == connection_id,
                ContentProfile.external_id == external_id,
            )
        )
    ).first()
    rewards = (
        await session.execute(
            select(
                ContentReward.reward_id,
                ContentReward.state,
                ContentReward.face_value,
                ContentReward.face_value_type,
                ContentReward.coupon_code,
                ContentReward.updated_at,
            )
            .where(
                ContentReward.connection_id == connection_id,
                ContentReward.external_id == external_id,
            )
            .order_by(ContentReward.updated_at.desc(), ContentReward.seq)
            .limit(MAX_REWARDS_KEPT)
        )
    ).all()
    if profile is None and not rewards:
        return None
    return ContentView(
        profile.share_link if profile else None,
        profile.share_code if profile else None,
        [RewardSnapshot(*row).as_json() for row in rewards],
    )

"""Connected Content projection updates: what one event changes in a user's content profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RewardSnapshot:
    """The latest known state of one reward, as the Connected Content endpoint shows it."""

    reward_id: str
    state: str
    face_value: float | None
    face_value_type: str | None
    coupon_code: str | None
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "reward_id": self.reward_id,
            "state": self.state,
            "face_value": self.face_value,
            "face_value_type": self.face_value_type,
            "coupon_code": self.coupon_code,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ContentUpdate:
    """A change to one user's profile; `at` orders out-of-order deliveries (newest wins)."""

    external_id: str
    at: datetime
    share_link: str | None = None
    share_code: str | None = None
    reward: RewardSnapshot | None = None


# Rewards a profile shows and keeps, newest first. A reward's newest state wins (a late older
# delivery changes nothing; equal times: the later delivery); a state without a coupon keeps
# the known code unless CANCELED/REVOKED. Applied by the ingest statement (events.py).
MAX_REWARDS_KEPT = 20

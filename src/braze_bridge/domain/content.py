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


MAX_REWARDS_KEPT = 20
_NO_COUPON_STATES = frozenset({"CANCELED", "REVOKED"})


def merge_rewards(
    stored: list[dict[str, Any]], snapshot: RewardSnapshot, *, keep: int = MAX_REWARDS_KEPT
) -> list[dict[str, Any]]:
    """Put one reward's newest known state into the list (newest first, at most `keep`).

    Extole does not deliver in order: an older state arriving late does not replace a newer one.
    A state that carries no coupon (EARNED before fulfilment) keeps the code already known, except
    CANCELED/REVOKED, which clear it.
    """
    new = snapshot.as_json()
    merged: list[dict[str, Any]] = []
    for entry in stored:
        if entry.get("reward_id") != snapshot.reward_id:
            merged.append(entry)
            continue
        if str(entry.get("updated_at", "")) > new["updated_at"]:
            new = entry  # what we hold is newer; the late arrival changes nothing
        elif new["coupon_code"] is None and snapshot.state not in _NO_COUPON_STATES:
            new = {**new, "coupon_code": entry.get("coupon_code")}
    merged.append(new)
    merged.sort(key=lambda entry: str(entry.get("updated_at", "")), reverse=True)
    return merged[:keep]

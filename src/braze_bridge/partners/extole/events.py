"""Typed Extole events, one class per kind of docs/extole.md section 6; stored as the event's `normalized`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.partners.extole.payloads import Scalar

RewardState = Literal["EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED"]


class ExtoleEvent(NormalizedEvent):
    """Fields every Extole kind may carry. `user.external_id` is `partner_user_id` as sent."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    funnel: str | None = None
    program: str | None = None


class ShareLinkCreated(ExtoleEvent):
    kind: Literal["share_link_created"] = "share_link_created"
    share_link: str | None = None
    share_code: str | None = None


class Shared(ExtoleEvent):
    kind: Literal["shared"] = "shared"
    share_channel: str | None = None
    share_link: str | None = None


class Outcome(ExtoleEvent):
    """Any other step (e.g. `converted`); `step` is its name without an `extole_` prefix."""

    kind: Literal["outcome"] = "outcome"
    step: str
    fields: dict[str, Scalar] = Field(default_factory=dict)


class Subscribed(ExtoleEvent):
    kind: Literal["subscribed"] = "subscribed"
    list_type: str | None = None


class Unsubscribed(ExtoleEvent):
    kind: Literal["unsubscribed"] = "unsubscribed"
    list_type: str | None = None


class Reward(ExtoleEvent):
    kind: Literal["reward"] = "reward"
    # None: the body names no state (Extole's minimal `{reward_id, data}` body); the mapping
    # reads it from the connection's `untyped_reward_state`.
    state: RewardState | None
    reward_type: str  # the inbound name, e.g. `reward_fulfillment_failed`; `reward` if none
    reward_id: str | None = None
    face_value: int | float | None = None
    face_value_type: str | None = None
    coupon_code: str | None = None  # Extole's `partner_reward_id`
    reward_supplier_type: str | None = None

    def log_kind(self) -> str:
        """`reward_fulfilled` etc.: which state the webhook reported (`reward` when none)."""
        return f"reward_{self.state.lower()}" if self.state else "reward"


AnyExtoleEvent = ShareLinkCreated | Shared | Outcome | Subscribed | Unsubscribed | Reward

"""Extole connection settings (docs/extole.md section 9), validated on create and patch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from braze_bridge.domain.privacy import PrivacySettings

# How the worker addresses a user known only by email (docs/delivery.md, "Identity").
IdentityMode = Literal["email", "lookup_then_alias", "skip"]
# The former `unknown_user` setting, still accepted: what each value meant.
LEGACY_UNKNOWN_USER: dict[str, IdentityMode] = {"alias": "lookup_then_alias", "skip": "skip"}
# The mode as each operation stores it (`operations.unknown_user`, eight characters).
STORED_MODE: dict[IdentityMode, str] = {
    "email": "email",
    "lookup_then_alias": "alias",
    "skip": "skip",
}

RewardState = Literal["EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED"]
BrazeEventName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^$]", strip_whitespace=True)
]


def _default_reward_states() -> list[RewardState]:
    return ["FULFILLED"]


class ExtoleEvents(BaseModel):
    """Which inbound kinds are forwarded; anything off ends as `filtered`."""

    model_config = ConfigDict(extra="forbid")

    share_link_created: bool = True
    shared: bool = True
    outcomes: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["*"]
    )
    subscribed: bool = True
    unsubscribed: bool = True


class ExtoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: ExtoleEvents = Field(default_factory=ExtoleEvents)
    reward_states: list[RewardState] = Field(default_factory=_default_reward_states)
    external_id_source: Literal["partner_user_id", "email_address"] = "partner_user_id"
    # `email` for new connections; connections created before the setting existed were given
    # `lookup_then_alias` (or `skip`) by migration 0003_identity_modes.
    identity: IdentityMode = "email"
    # Former name: `alias` is `lookup_then_alias`, `skip` is `skip`. Read, never stored.
    unknown_user: Literal["alias", "skip"] | None = Field(default=None, exclude=True)
    subscription_group_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)] | None
    ) = None
    # The state of a reward body that names none (Extole's minimal `{reward_id, data}`): the
    # state the Extole webhook's reward filter sends.
    untyped_reward_state: RewardState = "FULFILLED"
    # An Extole unsubscribe also sets Braze's workspace-wide `email_subscribe: "unsubscribed"`.
    global_email_unsubscribe: bool = False
    event_names: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100)], BrazeEventName
    ] = Field(default_factory=dict)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @model_validator(mode="after")
    def _legacy_unknown_user(self) -> ExtoleSettings:
        if self.unknown_user is None:
            return self
        meant = LEGACY_UNKNOWN_USER[self.unknown_user]
        if "identity" in self.model_fields_set and self.identity != meant:
            raise ValueError(
                f"unknown_user {self.unknown_user!r} (the former name of identity) says "
                f"identity {meant!r}, not {self.identity!r}; send identity alone"
            )
        self.identity = meant
        self.unknown_user = None
        return self

    @field_validator("reward_states", mode="before")
    @classmethod
    def _upper_states(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.upper() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("untyped_reward_state", mode="before")
    @classmethod
    def _upper_state(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def event_name(self, default: str, *keys: str) -> str:
        """The Braze event name for a kind: an override under any of `keys`, else `default`."""
        for key in (*keys, default):
            if key in self.event_names:
                return self.event_names[key]
        return default

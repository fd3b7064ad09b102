"""The normalized form of an inbound webhook, common to every partner."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from braze_bridge.domain.operations import UserRef

# Key under which the event log keeps the settings version an event was mapped with; a replay
# re-maps from the raw body when the connection's version has moved on since.
MAPPED_VERSION_KEY = "mapped_connection_version"
# Key under which it keeps what the mapping left out or changed (`Mapped.notes`): the event's
# `reason` says why it ended as it did and is rewritten when its objects settle; these stay.
MAPPING_NOTES_KEY = "mapping_notes"

# The event log's `kind` words (events.kind, the `kind=` filter): each partner's normalized kind,
# except that an Extole reward is logged with its state (`reward_fulfilled`), the name Extole
# gives the webhook. `reward` alone is a reward whose body named no state; as a filter it
# matches every reward. tests/unit/test_event_kinds.py keeps these in step with the partners.
REWARD_STATE_KINDS = (
    "reward_earned",
    "reward_fulfilled",
    "reward_sent",
    "reward_redeemed",
    "reward_failed",
    "reward_canceled",
    "reward_revoked",
)


class EventKind(StrEnum):
    # Extole
    SHARE_LINK_CREATED = "share_link_created"
    SHARED = "shared"
    OUTCOME = "outcome"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    REWARD = "reward"
    REWARD_EARNED = "reward_earned"
    REWARD_FULFILLED = "reward_fulfilled"
    REWARD_SENT = "reward_sent"
    REWARD_REDEEMED = "reward_redeemed"
    REWARD_FAILED = "reward_failed"
    REWARD_CANCELED = "reward_canceled"
    REWARD_REVOKED = "reward_revoked"
    # Antavo
    FIELD_CHANGE = "field_change"
    PROGRAM_EVENT = "program_event"
    CHECKOUT = "checkout"
    SYNC = "sync"


EVENT_KINDS = frozenset(kind.value for kind in EventKind)
# Filter words that stand for several logged kinds.
KIND_FAMILIES: dict[str, tuple[str, ...]] = {"reward": ("reward", *REWARD_STATE_KINDS)}


def kinds_matching(kind: str) -> tuple[str, ...]:
    """The logged kinds a `kind=` filter word selects."""
    return KIND_FAMILIES.get(kind, (kind,))


class NormalizedUser(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: str | None = None
    email: str | None = None

    def ref(self) -> UserRef:
        return UserRef(external_id=self.external_id, email=self.email)


class NormalizedEvent(BaseModel):
    """Base of each partner's typed event classes (one subclass per kind).

    `dedupe_key` None means "hash the raw body" (docs/contract.md section 5); the ingest service does that.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    source_event_id: str | None = None
    dedupe_key: str | None = None
    user: NormalizedUser = NormalizedUser()
    occurred_at: datetime | None = None

    def log_kind(self) -> str:
        """The event log's word for this event (`EVENT_KINDS`); partners refine `kind`."""
        return self.kind

    def as_json(self) -> dict[str, Any]:
        """`model_dump(mode="json")`, straight from the serializer (its wrapper costs ~0.5 µs
        of argument handling, once per stored event)."""
        dumped: dict[str, Any] = self.__pydantic_serializer__.to_python(self, mode="json")
        return dumped

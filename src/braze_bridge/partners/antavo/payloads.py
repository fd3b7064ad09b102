"""Pydantic models of the bodies an Antavo workflow posts (docs/antavo.md, "3. Bodies we accept").

Antavo's "Webhook message" node has no fixed envelope, so we read the shapes Antavo itself uses
elsewhere: Segment-style `identify` (field changes) and `track` (program events), Antavo's own
event document `{customer, action, data}`, and a `sync` body for a workflow's ad-hoc attributes.
Unknown extra keys are allowed: a workflow may template more than we read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from braze_bridge.domain.coercion import BrazeType


def _id_text(value: Any) -> Any:
    """Antavo ids may arrive as numbers; Braze external ids are strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


Identifier = Annotated[str, BeforeValidator(_id_text)]
ActionName = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    # Antavo's event `_id` when the workflow templates it; Segment's `messageId`; or our name.
    event_id: Identifier | None = None
    message_id: Identifier | None = Field(default=None, alias="messageId")
    underscore_id: Identifier | None = Field(default=None, alias="_id")
    timestamp: Any = None

    def antavo_event_id(self) -> str | None:
        for candidate in (self.event_id, self.underscore_id, self.message_id):
            if candidate:
                return candidate
        return None


class IdentifyBody(_Body):
    """A change of loyalty fields: `traits` holds the member's fields (all or the changed ones)."""

    type: Literal["identify"]
    user_id: Identifier | None = Field(default=None, alias="userId")
    traits: dict[str, Any]


class TrackBody(_Body):
    """A program event: `event` is the Antavo action name (`point_add`, `checkout`, ...)."""

    type: Literal["track"]
    user_id: Identifier | None = Field(default=None, alias="userId")
    event: ActionName
    properties: dict[str, Any] = Field(default_factory=dict)


class SyncBody(_Body):
    """A workflow's "sync data" action: ad-hoc attributes, optionally with their Braze types."""

    type: Literal["sync"]
    user_id: Identifier | None = Field(default=None, alias="userId")
    attributes: dict[str, Any]
    types: dict[str, BrazeType] = Field(default_factory=dict)


class CustomerRef(BaseModel):
    """`customer` given as an object rather than the bare member id."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    id: Identifier | None = None
    underscore_id: Identifier | None = Field(default=None, alias="_id")
    email: str | None = None

    def member_id(self) -> str | None:
        return self.id or self.underscore_id


class EventDocument(_Body):
    """Antavo's own event: `{customer, action, data}` plus optional `account` and times."""

    customer: Identifier | CustomerRef
    action: ActionName
    data: dict[str, Any] = Field(default_factory=dict)
    account: Identifier | None = None
    id: Identifier | None = None
    created_at: Any = None

    def antavo_event_id(self) -> str | None:
        return super().antavo_event_id() or self.id or None

    def member_id(self) -> str | None:
        if isinstance(self.customer, CustomerRef):
            return self.customer.member_id()
        return self.customer or None

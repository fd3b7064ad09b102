"""What POST /v1/connections/{id}/preview answers: a webhook body as ingest would map it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from braze_bridge.domain.statuses import EventStatus


class PreviewIdentity(BaseModel):
    external_id: str | None
    email: str | None
    resolution: Literal["external_id", "email_lookup", "email_identifier"] = Field(
        description=(
            "external_id: sent as is; email_lookup: the worker finds the profile first; "
            "email_identifier: sent with Braze's email identifier (identity mode email)"
        )
    )
    note: str | None = Field(
        default=None, description="what happens when Braze has no profile for the email"
    )


class PreviewObjects(BaseModel):
    """The `/users/track` arrays, each object as Braze would receive it."""

    attributes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    purchases: list[dict[str, Any]]


class PreviewRead(BaseModel):
    normalized: dict[str, Any] | None = Field(description="the normalized event; null if none")
    status: EventStatus = Field(description="the status ingest would give the event")
    reason: str | None = Field(description="why it would be filtered or rejected")
    user: PreviewIdentity | None
    braze: PreviewObjects
    notes: list[str] = Field(description="what the mapping left out, and why")

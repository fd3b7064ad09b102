"""What the replay routes read and answer (docs/ops.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from braze_bridge.db.models import ReplayJob
from braze_bridge.db.repositories.event_log import EventFilter
from braze_bridge.domain.events import EventKind
from braze_bridge.domain.statuses import EventStatus, ReplayStatus
from braze_bridge.ops.replay import ReplayResult


class ReplayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: uuid.UUID
    status: EventStatus = Field(description="the event's status after the replay")
    requeued: int = Field(description="Braze objects that will be sent again")
    remapped: bool = Field(description="true when the raw body was mapped again first")

    @classmethod
    def of(cls, result: ReplayResult) -> ReplayRead:
        return cls.model_validate(result)


class ReplayFilter(BaseModel):
    """Which events a bulk replay covers; every given field must match."""

    model_config = ConfigDict(extra="forbid")

    connection_id: uuid.UUID | None = None
    status: EventStatus | None = None
    kind: EventKind | None = None
    user: str | None = Field(default=None, max_length=1024)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _time_range_is_ordered(self) -> ReplayFilter:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def to_filter(self) -> EventFilter:
        return EventFilter(
            connection_id=self.connection_id,
            status=self.status,
            kind=self.kind.value if self.kind is not None else None,
            user=self.user,
            since=self.since,
            until=self.until,
        )


class ReplayJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ReplayStatus
    total: int | None = Field(description="events the filter matched; null until the job starts")
    done: int = Field(description="events processed so far")
    requeued: int = Field(description="Braze objects set to be sent again so far")
    skipped: int = Field(description="events that could not be replayed (see the event log)")
    error: str | None
    filters: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ReplayJob) -> ReplayJobRead:
        return cls.model_validate(job)

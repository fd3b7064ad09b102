"""What the connection health routes answer (docs/ops.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from braze_bridge.domain.statuses import HealthStatus, Source
from braze_bridge.ops.health import ConnectionHealth


class ConnectionHealthRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    connection_id: uuid.UUID
    name: str
    source: Source
    status: HealthStatus
    queue_depth: int = Field(description="Braze objects pending or in flight")
    oldest_pending_age_seconds: float | None = Field(
        description="age of the oldest unsettled object; null when the queue is empty"
    )
    last_error: str | None
    last_error_at: datetime | None
    rate_limited_until: datetime | None
    counts_last_hour: dict[str, int] = Field(
        description="events received in the last hour, by status"
    )
    data_points_saved: int = Field(description="Braze data points not sent by Antavo changed_only")

    @classmethod
    def of(cls, health: ConnectionHealth) -> ConnectionHealthRead:
        return cls.model_validate(health)


class HealthOverview(BaseModel):
    connections: list[ConnectionHealthRead]

"""What GET /v1/connections/{id}/stats answers (docs/contract.md, "Connection stats")."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

from pydantic import BaseModel, Field

from braze_bridge.ops.stats import ConnectionStats


class StatsBucket(BaseModel):
    hour: datetime = Field(description="Start of the UTC hour")
    received: int = Field(description="Webhooks received (stored events, any status)")
    delivered: int = Field(description="Braze objects Braze accepted in this hour")
    failed: int = Field(description="Objects Braze refused for good (not retried)")
    dead: int = Field(description="Objects given up on after the retry horizon")
    answers_2xx: int = Field(description="Braze requests answered 2xx")
    answers_4xx: int = Field(description="Answered 4xx other than 429 (1xx / 3xx count here)")
    answers_429: int = Field(description="Answered 429 (rate limited)")
    answers_5xx: int = Field(description="Answered 5xx")
    answers_network: int = Field(description="No answer: timeout or connection error")


class ConnectionStatsRead(BaseModel):
    connection_id: uuid.UUID
    start: datetime = Field(description="Start of the first bucket")
    end: datetime = Field(description="End of the last bucket (the current hour's end)")
    buckets: list[StatsBucket] = Field(description="One per hour, oldest first")

    @classmethod
    def of(cls, stats: ConnectionStats) -> ConnectionStatsRead:
        return cls(
            connection_id=stats.connection_id,
            start=stats.start,
            end=stats.end,
            buckets=[StatsBucket(**asdict(b)) for b in stats.buckets],
        )

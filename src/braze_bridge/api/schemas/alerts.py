"""What the alert routes take and answer (docs/ops.md, "Alerts")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from braze_bridge.db.models import Alert, AlertWebhook
from braze_bridge.domain.statuses import AlertCondition, AlertKind, AlertStatus


class AlertWebhookSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="https URL receiving Slack-compatible JSON (e.g. a Slack incoming webhook)",
        max_length=2048,
    )


class AlertWebhookRead(BaseModel):
    url: str
    secret_created_at: datetime
    condition: AlertCondition = Field(description="what the last alert announced")
    condition_since: datetime

    @classmethod
    def of(cls, row: AlertWebhook) -> AlertWebhookRead:
        return cls(
            url=row.url,
            secret_created_at=row.secret_created_at,
            condition=row.condition,
            condition_since=row.condition_since,
        )


class AlertWebhookWithSecret(AlertWebhookRead):
    secret: str | None = Field(
        description=(
            "signing secret, shown only in the answer that created or rotated it (null when "
            "a URL change kept the existing one)"
        )
    )


class AlertRead(BaseModel):
    id: int
    kind: AlertKind = Field(description="auth_error, degraded, dead or recovered")
    condition: AlertCondition = Field(description="health the alert announced")
    previous_condition: AlertCondition | None
    text: str = Field(description="the message as Slack shows it")
    status: AlertStatus = Field(description="pending (to send or retry), sent, failed (gave up)")
    attempts: int
    last_status_code: int | None = Field(description="receiver's last HTTP status; null if none")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="next try while pending")
    created_at: datetime
    sent_at: datetime | None
    payload: dict[str, Any] = Field(description="the JSON body sent")

    @classmethod
    def of(cls, row: Alert) -> AlertRead:
        return cls(
            id=row.id,
            kind=row.kind,
            condition=row.condition,
            previous_condition=row.previous_condition,
            text=str(row.payload.get("text", "")),
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if row.status == AlertStatus.PENDING else None,
            created_at=row.created_at,
            sent_at=row.sent_at,
            payload=row.payload,
        )


class AlertList(BaseModel):
    connection_id: uuid.UUID
    webhook: AlertWebhookRead | None = Field(description="null when no alert webhook is set")
    items: list[AlertRead] = Field(description="newest first")

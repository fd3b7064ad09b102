"""Response bodies of /v1/connections (docs/admin-api.md); the request bodies belong to the
use cases that apply them (admin/connection_schemas.py) and are re-exported here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from braze_bridge.admin import connections as service
from braze_bridge.admin.connection_schemas import (
    MAX_BATCH_WAIT_TEXT,
    TRACK_OBJECT_CAP_TEXT,
    BrazeCreate,
    BrazePatch,
    ConnectionCreate,
    ConnectionUpdate,
    Limits,
    LimitsPatch,
    WebhookAuthCreate,
    WebhookAuthPatch,
)
from braze_bridge.admin.connection_test import ConnectionCheckReport
from braze_bridge.admin.forget import ForgetReport, ForgetRequest
from braze_bridge.braze.models import (
    DEFAULT_EXPORT_RATE_PRESET,
    EXPORT_RATE_PRESETS,
    ExportRatePreset,
    TrackObjectCap,
)
from braze_bridge.db.models import Connection, ConnectionAudit
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode

__all__ = [
    "BrazeCreate",
    "BrazePatch",
    "ConnectionCreate",
    "ConnectionUpdate",
    "ForgetRequest",
    "Limits",
    "LimitsPatch",
    "WebhookAuthCreate",
    "WebhookAuthPatch",
]


_DEFAULT_EXPORT_WINDOW = EXPORT_RATE_PRESETS[DEFAULT_EXPORT_RATE_PRESET][1]


class LimitsRead(BaseModel):
    """The budgets in force; null numbers mean Braze's documented defaults."""

    track_rate_limit: int | None = Field(description="/users/track requests per window")
    track_rate_window_seconds: int | None
    export_rate_limit: int | None = Field(description="/users/export/ids requests per window")
    export_rate_window_seconds: int | None
    export_rate_preset: ExportRatePreset | None = Field(
        description="The preset the stored export budget equals; null for the default or a "
        "custom budget"
    )
    track_object_cap: TrackObjectCap = Field(description=TRACK_OBJECT_CAP_TEXT)
    max_batch_wait_ms: int = Field(description=MAX_BATCH_WAIT_TEXT)

    @classmethod
    def of(cls, row: Connection) -> LimitsRead:
        limit, window = row.export_rate_limit, row.export_rate_window_seconds
        stored = None if limit is None else (limit, window or _DEFAULT_EXPORT_WINDOW)
        preset = next((name for name, v in EXPORT_RATE_PRESETS.items() if v == stored), None)
        return cls(
            track_rate_limit=row.track_rate_limit,
            track_rate_window_seconds=row.track_rate_window_seconds,
            export_rate_limit=limit,
            export_rate_window_seconds=window,
            export_rate_preset=cast("ExportRatePreset | None", preset),
            track_object_cap=cast("TrackObjectCap", row.track_object_cap),
            max_batch_wait_ms=row.max_batch_wait_ms,
        )


class BrazeRead(BaseModel):
    rest_endpoint: str
    api_key_last4: str = Field(description="Last 4 characters of the stored key")
    app_id: str | None


class WebhookAuthRead(BaseModel):
    mode: WebhookAuthMode
    username: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret replaced by the last rotation is still accepted"
    )


class ConnectionRead(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    source: Source
    state: ConnectionState
    braze: BrazeRead
    webhook_auth: WebhookAuthRead
    settings: dict[str, Any] = Field(description="Every setting, defaults filled in")
    limits: LimitsRead
    webhook_url: str = Field(description="Where the partner posts webhooks")
    content_url: str = Field(
        description="Connected Content base URL; append /{external_id} (bearer: content token)"
    )
    last_error: str | None
    last_error_at: datetime | None
    version: int = Field(description="Goes up by one with every change")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Connection, base_url: str) -> ConnectionRead:
        return cls(**_read_fields(row, base_url))


def _read_fields(row: Connection, base_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "source": row.source,
        "state": row.state,
        "braze": BrazeRead(
            rest_endpoint=row.braze_rest_endpoint,
            api_key_last4=row.braze_api_key_last4,
            app_id=row.braze_app_id,
        ),
        "webhook_auth": WebhookAuthRead(
            mode=row.webhook_auth_mode,
            username=row.webhook_username,
            previous_secret_expires_at=(
                row.previous_secret_expires_at if row.previous_webhook_secret_enc else None
            ),
        ),
        "settings": service.effective_settings(row.source, row.settings),
        "limits": LimitsRead.of(row),
        "webhook_url": f"{base_url}/v1/hooks/{row.id}",
        "content_url": f"{base_url}/v1/content/{row.id}",
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class ConnectionCreated(ConnectionRead):
    webhook_secret: str = Field(description="Shown once: give it to the partner")
    content_token: str = Field(description="Shown once: bearer token of the content endpoint")

    @classmethod
    def of_created(cls, created: service.CreatedConnection, base_url: str) -> ConnectionCreated:
        return cls(
            **_read_fields(created.row, base_url),
            webhook_secret=created.webhook_secret,
            content_token=created.content_token,
        )


class ConnectionPage(BaseModel):
    items: list[ConnectionRead]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=86_400,
        strict=True,  # `false` / `true` are not 0 / 1 seconds
        description="How long the replaced secret keeps working; 0 retires it at once (leak)",
    )


class WebhookSecretRotated(ConnectionRead):
    webhook_secret: str = Field(description="Shown once")

    @classmethod
    def of_rotated(cls, rotated: service.RotatedSecret, base_url: str) -> WebhookSecretRotated:
        return cls(**_read_fields(rotated.row, base_url), webhook_secret=rotated.secret)


class ContentTokenRotated(ConnectionRead):
    content_token: str = Field(description="Shown once; the previous token stops working now")

    @classmethod
    def of_rotated(cls, rotated: service.RotatedSecret, base_url: str) -> ContentTokenRotated:
        return cls(**_read_fields(rotated.row, base_url), content_token=rotated.secret)


class CheckRead(BaseModel):
    name: str = Field(description="endpoint, api_key, or a Braze permission like users.track")
    ok: bool
    detail: str
    hint: str | None = Field(default=None, description="What to fix when the check failed")


class ConnectionTestRead(BaseModel):
    ok: bool
    checks: list[CheckRead]
    state: ConnectionState = Field(description="The connection's state after the test")

    @classmethod
    def of(cls, report: ConnectionCheckReport) -> ConnectionTestRead:
        return cls(
            ok=report.ok,
            checks=[
                CheckRead(name=c.name, ok=c.ok, detail=c.detail, hint=c.hint) for c in report.checks
            ],
            state=report.state,
        )


class AuditEntry(BaseModel):
    action: str = Field(
        description="create, update, delete, rotate_secret, rotate_content_token, pause, "
        "resume, test_passed, forget"
    )
    fields: list[str] = Field(description="Changed field paths; values are never recorded")
    actor_token_id: uuid.UUID | None
    at: datetime
    counts: dict[str, int] | None = Field(
        default=None, description="`forget`: rows removed or redacted per kind (no identifiers)"
    )

    @classmethod
    def of(cls, row: ConnectionAudit) -> AuditEntry:
        return cls.model_validate(
            {
                "action": row.action,
                "fields": row.fields,
                "actor_token_id": row.actor_token_id,
                "at": row.at,
                "counts": row.counts,
            }
        )


class AuditPage(BaseModel):
    items: list[AuditEntry]


class BrazeDeletionRead(BaseModel):
    requests: int = Field(description="`/users/delete` requests sent (one kind of identifier each)")
    failed: int = Field(description="Requests Braze did not answer with a 2xx")
    statuses: list[int | None] = Field(description="Braze's status per request; null: no answer")


class ForgetResult(BaseModel):
    """What a forget removed, as counts; never the person's identifiers."""

    connection_id: uuid.UUID
    identifiers_linked: int = Field(
        description="External ids and emails found for the person (the one given included)"
    )
    removed: dict[str, int] = Field(description="Rows removed or redacted, per kind")
    braze: BrazeDeletionRead | None = Field(
        description="`/users/delete` outcome; null when `settings.privacy.delete_in_braze` is off"
    )

    @classmethod
    def of(cls, report: ForgetReport) -> ForgetResult:
        braze = report.braze
        return cls(
            connection_id=report.connection_id,
            identifiers_linked=report.identifiers,
            removed=report.counts,
            braze=(
                BrazeDeletionRead(
                    requests=braze.requests, failed=braze.failed, statuses=braze.statuses
                )
                if braze is not None
                else None
            ),
        )
